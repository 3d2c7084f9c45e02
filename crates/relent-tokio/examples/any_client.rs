//! `relent_tokio::retry` with a plain reqwest closure: the way in for a client with no
//! middleware seam. Two keys (the first dead), against relent-sim's stub provider on
//! loopback. Run: `cargo run -p relent-tokio --example any_client`.
//!
//! The closure makes exactly one attempt with what relent hands it (target, model, key,
//! idempotency key, relent's headers) and returns the status, headers and body, or the
//! kind of transport failure. relent decides the rest.

use relent::TransportError;
use relent_tokio::{retry, Answer, Endpoint, KeyStore, RetryState, Secret};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schedule: relent_sim::Schedule = serde_json::from_str(
        r#"{"targets": [{"provider": "openai", "model": "gpt-4o",
             "keys": [{"id": 1, "label": "old"}, {"id": 2, "label": "main"}]}],
            "faults": [{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}],
            "latency_ms": 20}"#,
    )?;
    let stub = relent_sim::stub::Stub::start(schedule.clone(), "127.0.0.1:0".parse()?).await?;
    let mut keys = KeyStore::new();
    keys.insert(relent::KeyId(1), Secret::new("stub-1"));
    keys.insert(relent::KeyId(2), Secret::new("stub-2"));
    let state = RetryState::builder()
        .target(
            schedule.targets[0].clone(),
            Endpoint::openai(format!("{}/v1/chat/completions", stub.base_url())),
        )
        .keys(keys)
        .build_state()?;

    let http = reqwest::Client::new();
    let done = retry(&state, |attempt| {
        let http = http.clone();
        async move {
            let body = serde_json::json!({"model": attempt.model, "messages": [{"role": "user", "content": "hi"}]});
            let mut request = http
                .post(&attempt.endpoint.url)
                .bearer_auth(attempt.secret.expose())
                .header("content-type", "application/json")
                .body(body.to_string());
            for (name, value) in attempt.headers().iter() {
                request = request.header(name, value);
            }
            let response = request.send().await.map_err(|e| {
                if e.is_timeout() { TransportError::Timeout } else { TransportError::Reset }
            })?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                .collect();
            let body = response.bytes().await.map_err(|_| TransportError::Reset)?;
            Ok(Answer::new(status, headers, body.to_vec()))
        }
    })
    .await?;
    println!(
        "{} after {} attempts: {:?}",
        done.status,
        done.attempts,
        done.text()
    );
    Ok(())
}
