//! `relent_tokio::retry`: any client, one closure per attempt, over loopback.
//!
//! The world: relent-sim's stub provider with two targets (`gpt-4o` at `/v1`, whose first
//! key is rejected, and `gpt-4o-mini` at the root), and a plain reqwest client inside the
//! closure. What must happen:
//!
//! - Each attempt hands the closure what it needs and nothing it must work out: the
//!   target, its model, its endpoint, the key's secret, the idempotency key and relent's
//!   headers. The stub sees the dead key once, then the live key, with one idempotency key
//!   and attempt numbers 1 and 2.
//! - A transport failure the closure reports ([`TransportError::Reset`]) is retried like
//!   one the driver saw itself.
//! - Calls made through the closure and calls made with the [`Client`] the state came from
//!   share one pool: after the closure's call learned the dead key, the client does not
//!   send it.
//!
//! Why: this is the way in for clients with no middleware seam (genai, hand-rolled HTTP);
//! it must be the same loop as the client's, not a copy of it.

use relent::{KeyId, TransportError};
use relent_sim::stub::Stub;
use relent_sim::Schedule;
use relent_tokio::Endpoint;
use relent_tokio::{retry, Answer, Attempt, Client, KeyStore, ReqwestTransport, Secret};
use std::sync::atomic::{AtomicU32, Ordering};

const WORLD: &str = r#"{"targets": [
      {"provider": "openai", "model": "gpt-4o", "keys": [{"id": 1, "label": "dead"}, {"id": 2, "label": "live"}]},
      {"provider": "openai", "model": "gpt-4o-mini", "keys": [{"id": 3, "label": "other"}]}],
    "faults": [{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}],
    "latency_ms": 2}"#;

async fn world() -> (Stub, Client<ReqwestTransport>) {
    let schedule: Schedule = serde_json::from_str(WORLD).unwrap();
    let stub = Stub::start(schedule.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut keys = KeyStore::new();
    for key in schedule.targets.iter().flat_map(|t| &t.keys) {
        keys.insert(key.id, Secret::new(format!("stub-{}", key.id.0)));
    }
    let client = Client::builder(ReqwestTransport::new())
        .target(
            schedule.targets[0].clone(),
            Endpoint::openai(format!("{}/v1/chat/completions", stub.base_url())),
        )
        .target(
            schedule.targets[1].clone(),
            Endpoint::openai(format!("{}/chat/completions", stub.base_url())),
        )
        .keys(keys)
        .seed(18)
        .build()
        .unwrap();
    (stub, client)
}

/// One attempt with plain reqwest: the endpoint's URL, the key as a Bearer token, relent's
/// headers, the target's model.
async fn send(http: reqwest::Client, attempt: Attempt) -> Result<Answer, TransportError> {
    let body = serde_json::json!({"model": attempt.model, "messages": [{"role": "user", "content": "hi"}]});
    let mut request = http
        .post(&attempt.endpoint.url)
        .bearer_auth(attempt.secret.expose())
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in attempt.headers().iter() {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|_| TransportError::Reset)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = response.bytes().await.map_err(|_| TransportError::Reset)?;
    Ok(Answer::new(status, headers, body.to_vec()))
}

#[tokio::test]
async fn the_closure_gets_each_attempt_and_the_dead_key_is_learned_for_the_client_too() {
    let (stub, client) = world().await;
    let state = client.retry_state();
    let http = reqwest::Client::new();
    let seen_attempts = std::sync::Mutex::new(Vec::new());
    let done = retry(&state, |attempt| {
        // What an attempt prints never shows its key.
        let shown = format!("{attempt:?}");
        assert!(!shown.contains(attempt.secret.expose()), "{shown}");
        seen_attempts.lock().unwrap().push((
            attempt.target,
            attempt.model.clone(),
            attempt.key,
            attempt.number,
            attempt.idempotency_key.clone(),
        ));
        send(http.clone(), attempt)
    })
    .await
    .unwrap();
    assert_eq!(
        (done.status, done.attempts, done.via.key),
        (200, 2, KeyId(2))
    );
    let attempts = seen_attempts.into_inner().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        attempts
            .iter()
            .map(|(t, m, k, n, _)| (*t, m.as_str(), *k, *n))
            .collect::<Vec<_>>(),
        vec![(0, "gpt-4o", KeyId(1), 1), (0, "gpt-4o", KeyId(2), 2)]
    );
    let seen = stub.seen();
    assert_eq!(
        seen.iter().map(|s| s.key).collect::<Vec<_>>(),
        vec![Some(KeyId(1)), Some(KeyId(2))]
    );
    // relent's headers went out: one idempotency key (the one the closure was given),
    // and the attempt numbers.
    assert_eq!(
        seen[0].idempotency_key.as_deref(),
        Some(attempts[0].4.as_str())
    );
    assert_eq!(seen[0].idempotency_key, seen[1].idempotency_key);
    assert_eq!(
        (seen[0].attempt.as_deref(), seen[1].attempt.as_deref()),
        (Some("1"), Some("2"))
    );

    // The client the state came from learned it too: it sends the live key only.
    let answer = client
        .call(br#"{"model": "gpt-4o", "messages": []}"#)
        .await
        .unwrap();
    assert_eq!((answer.attempts, answer.via.key), (1, KeyId(2)));
    assert_eq!(stub.seen().len(), 3);
}

#[tokio::test]
async fn a_transport_failure_the_closure_reports_is_retried() {
    let (stub, client) = world().await;
    let state = client.retry_state();
    let http = reqwest::Client::new();
    let calls = AtomicU32::new(0);
    let done = retry(&state, |attempt| {
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        let http = http.clone();
        async move {
            if first {
                // The connection broke before an answer: nothing reached the stub.
                return Err(TransportError::Reset);
            }
            send(http, attempt).await
        }
    })
    .await
    .unwrap();
    assert_eq!(done.status, 200);
    // The reset, the dead key, the live key.
    assert_eq!(calls.load(Ordering::SeqCst), done.attempts);
    assert_eq!(stub.seen().len() as u32, done.attempts - 1);
    assert_eq!(stub.seen().last().and_then(|s| s.key), Some(KeyId(2)));
}
