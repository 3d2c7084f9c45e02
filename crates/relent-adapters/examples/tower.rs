//! A tower stack with relent around hyper's client: a dead key and a live one, against
//! relent-sim's stub provider on loopback. Run: `cargo run -p relent-adapters --example
//! tower`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use relent_adapters::layer::RelentLayer;
use relent_tokio::{Endpoint, KeyStore, RetryState, Secret};
use tower::{ServiceBuilder, ServiceExt};

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

    let hyper: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let stack = ServiceBuilder::new()
        .layer(RelentLayer::new(state))
        .service(hyper);
    let request = http::Request::post(format!("{base}/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#,
        )))?;
    let response = stack.oneshot(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    println!("{status} {}", String::from_utf8_lossy(&body));
    let seen: Vec<_> = stub.seen().iter().map(|s| s.key.map(|k| k.0)).collect();
    println!("keys the provider saw, in order: {seen:?}");
    Ok(())
}
