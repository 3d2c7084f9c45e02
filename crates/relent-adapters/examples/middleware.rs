//! reqwest-middleware with relent: a dead key and a live one, against relent-sim's stub
//! provider on loopback. Run: `cargo run -p relent-adapters --example middleware`.

use relent_adapters::middleware::RelentMiddleware;
use relent_tokio::{Endpoint, KeyStore, RetryState, Secret};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schedule: relent_sim::Schedule = serde_json::from_str(
        r#"{"targets": [{"provider": "openai", "model": "gpt-4o",
             "keys": [{"id": 1, "label": "old"}, {"id": 2, "label": "main"}]}],
            "faults": [{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}],
            "latency_ms": 20}"#,
    )?;
    let stub = relent_sim::stub::Stub::start(schedule.clone(), "127.0.0.1:0".parse()?).await?;
    let base = format!("{}/v1", stub.base_url());
    let mut keys = KeyStore::new();
    keys.insert(relent::KeyId(1), Secret::new("stub-1"));
    keys.insert(relent::KeyId(2), Secret::new("stub-2"));
    let state = RetryState::builder()
        .target(schedule.targets[0].clone(), Endpoint::openai(base.clone()))
        .keys(keys)
        .build_state()?;

    // Put relent last (nearest the network) and no other retry middleware.
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(RelentMiddleware::new(state))
        .build();
    let response = client
        .post(format!("{base}/chat/completions"))
        .header("content-type", "application/json")
        .body(r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#)
        .send()
        .await?;
    println!("{} {}", response.status(), response.text().await?);
    let seen: Vec<_> = stub.seen().iter().map(|s| s.key.map(|k| k.0)).collect();
    println!("keys the provider saw, in order: {seen:?}");
    Ok(())
}
