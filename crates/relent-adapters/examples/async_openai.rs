//! async-openai with relent: three keys (the first dead) and a rate limit, against
//! relent-sim's stub provider on loopback. Run: `cargo run -p relent-adapters --example
//! async_openai`.
//!
//! With a real provider, give the targets their real base URLs and keys, and turn on a TLS
//! feature of async-openai (`rustls`).

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use async_openai::Client;
use futures_util::StreamExt;
use relent_adapters::openai::OpenAiService;
use relent_tokio::{Endpoint, KeyStore, RetryState, Secret};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Key 1 is revoked; key 2 is rate limited for the first second (`Retry-After: 1`), so
    // relent moves on to key 3 rather than wait; the streamed call then starts on key 3.
    let schedule: relent_sim::Schedule = serde_json::from_str(
        r#"{"targets": [{"provider": "openai", "model": "gpt-4o",
             "keys": [{"id": 1, "label": "old"}, {"id": 2, "label": "main"}, {"id": 3, "label": "spare"}]}],
            "faults": [{"scope": {"key": 1}, "kind": {"type": "key_rejected"}},
                       {"scope": {"key": 2}, "until_ms": 1000, "first_sends": 1,
                        "kind": {"type": "rate_limited", "hint": "retry_after_seconds"}}],
            "latency_ms": 20}"#,
    )?;
    let stub = relent_sim::stub::Stub::start(schedule.clone(), "127.0.0.1:0".parse()?).await?;
    let base = format!("{}/v1", stub.base_url());

    let mut keys = KeyStore::new();
    for key in schedule.targets.iter().flat_map(|t| &t.keys) {
        keys.insert(key.id, Secret::new(format!("stub-{}", key.id.0)));
    }
    let state = RetryState::builder()
        .target(schedule.targets[0].clone(), Endpoint::openai(base.clone()))
        .keys(keys)
        .on_progress(|p| eprintln!("  relent: {:?} (key {:?})", p.action, p.key_label))
        .build_state()?;

    // async-openai as usual; its key is a placeholder, relent sets the real one per attempt.
    let config = OpenAIConfig::new()
        .with_api_base(&base)
        .with_api_key("unused");
    let client = Client::with_config(config).with_http_service(OpenAiService::new(state));

    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("Say hello")
            .build()?
            .into()])
        .build()?;
    let answer = client.chat().create(request.clone()).await?;
    println!("answer: {:?}", answer.choices[0].message.content);

    let mut stream = client.chat().create_stream(request).await?;
    print!("streamed:");
    while let Some(chunk) = stream.next().await {
        if let Some(text) = chunk?.choices.first().and_then(|c| c.delta.content.clone()) {
            print!(" {text:?}");
        }
    }
    println!();
    let seen: Vec<_> = stub.seen().iter().map(|s| s.key.map(|k| k.0)).collect();
    println!("keys the provider saw, in order: {seen:?}");
    Ok(())
}
