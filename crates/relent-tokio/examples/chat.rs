//! A chat completion through relent against an OpenAI-compatible endpoint.
//!
//! With `RELENT_BASE_URL` (for example `https://api.openai.com/v1`), `RELENT_KEYS` (one or
//! more API keys, comma-separated) and optionally `RELENT_MODEL`, it calls that endpoint.
//! Without them it starts relent's stub provider in-process, where the first key is dead and
//! the second is rate limited for two seconds, so you can watch relent decide:
//!
//! ```sh
//! cargo run -p relent-tokio --example chat
//! RUST_LOG=relent_tokio=debug cargo run -p relent-tokio --example chat
//! ```

use relent::{KeyId, KeySpec, Policy, Provider, Target};
use relent_tokio::{Api, Client, Endpoint, KeyStore, ReqwestTransport, Secret};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "relent_tokio=info".into()),
        )
        .init();
    let model = std::env::var("RELENT_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into());
    let (base_url, secrets, _stub) = match (
        std::env::var("RELENT_BASE_URL"),
        std::env::var("RELENT_KEYS"),
    ) {
        (Ok(url), Ok(keys)) => (
            url,
            keys.split(',')
                .map(|k| k.trim().to_string())
                .collect::<Vec<_>>(),
            None,
        ),
        _ => {
            let schedule: relent_sim::Schedule = serde_json::from_str(&format!(
                r#"{{"targets": [{{"provider": "openai", "model": "{model}", "keys": [{{"id": 1, "label": "key-1"}}, {{"id": 2, "label": "key-2"}}]}}],
                    "faults": [{{"scope": {{"key": 1}}, "kind": {{"type": "key_rejected"}}}},
                               {{"scope": {{"key": 2}}, "until_ms": 2000, "kind": {{"type": "rate_limited", "hint": "retry_after_ms"}}}}],
                    "latency_ms": 50}}"#
            ))?;
            let stub = relent_sim::stub::Stub::start(schedule, "127.0.0.1:0".parse()?).await?;
            println!(
                "no RELENT_BASE_URL/RELENT_KEYS: using the stub provider at {}",
                stub.base_url()
            );
            (
                format!("{}/v1", stub.base_url()),
                vec!["stub-1".to_string(), "stub-2".to_string()],
                Some(stub),
            )
        }
    };
    let mut keys = KeyStore::new();
    let mut specs = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        let id = KeyId(i as u32 + 1);
        keys.insert(id, Secret::new(secret.clone()));
        specs.push(KeySpec::new(id.0, format!("key-{}", id.0)));
    }
    let target = Target::new(Provider::Openai, model.clone(), specs);
    let endpoint = Endpoint::new(
        format!("{}/chat/completions", base_url.trim_end_matches('/')),
        Api::OpenAiCompatible,
    );
    let client = Client::new(
        ReqwestTransport::new(),
        vec![target],
        vec![endpoint],
        keys,
        Policy::default(),
    )?
    .extra_headers(vec![("content-type".into(), "application/json".into())])
    .on_progress(|p| {
        println!(
            "  [{}] {}{}",
            p.at,
            p.action.kind(),
            p.key_label
                .as_deref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default()
        )
    });
    let body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Say hello in five words."}]});
    match client.call(body.to_string().as_bytes()).await {
        Ok(done) => println!(
            "HTTP {} after {} attempt(s) via {}:\n{}",
            done.status,
            done.attempts,
            done.via.key,
            String::from_utf8_lossy(&done.body)
        ),
        Err(error) => println!("gave up: {error}"),
    }
    Ok(())
}
