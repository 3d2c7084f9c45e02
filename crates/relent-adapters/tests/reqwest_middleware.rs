//! relent as reqwest-middleware, over loopback.
//!
//! The world: relent-sim's stub provider with two keys, the first of which the provider
//! rejects, and a `reqwest_middleware` client built with [`RelentMiddleware`] that posts
//! chat requests to the stub with no key of its own (or a wrong one). What must happen:
//!
//! - A request whose body can be cloned is retried with the next key: the stub sees the
//!   dead key once, then the live one, and the caller gets the live key's answer. The
//!   client's own `Authorization` never reaches the stub.
//! - A request whose body is a stream (cannot be cloned) is sent exactly once; when relent
//!   would have tried again, the call fails with relent's error saying so. What that one
//!   send taught relent is kept: the next request goes straight to the live key.
//!
//! Why: reqwest-middleware is the seam rig and other clients expose; a retry layer there
//! must not replay a body it cannot replay, and must not lose what a single send learned.

use futures_util::stream;
use relent::KeyId;
use relent_adapters::middleware::{relent_error, RelentMiddleware};
use relent_sim::stub::Stub;
use relent_sim::Schedule;
use relent_tokio::{Endpoint, KeyStore, RetryState, Secret};

const DEAD_FIRST: &str = r#"{"targets": [{"provider": "openai", "model": "gpt-4o",
     "keys": [{"id": 1, "label": "dead"}, {"id": 2, "label": "live"}]}],
    "faults": [{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}],
    "latency_ms": 2}"#;

const BODY: &str = r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#;

async fn world() -> (Stub, reqwest_middleware::ClientWithMiddleware, String) {
    let schedule: Schedule = serde_json::from_str(DEAD_FIRST).unwrap();
    let stub = Stub::start(schedule.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut keys = KeyStore::new();
    for key in schedule.targets.iter().flat_map(|t| &t.keys) {
        keys.insert(key.id, Secret::new(format!("stub-{}", key.id.0)));
    }
    let base = format!("{}/v1", stub.base_url());
    let state = RetryState::builder()
        .target(schedule.targets[0].clone(), Endpoint::openai(base.clone()))
        .keys(keys)
        .seed(18)
        .build_state()
        .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(RelentMiddleware::new(state))
        .build();
    (stub, client, format!("{base}/chat/completions"))
}

fn keys_seen(stub: &Stub) -> Vec<Option<u32>> {
    stub.seen().iter().map(|s| s.key.map(|k| k.0)).collect()
}

#[tokio::test]
async fn a_cloneable_request_is_retried_with_the_next_key() {
    let (stub, client, url) = world().await;
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer the-clients-own-key")
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Hello!");
    // The client's own key would have shown as `None` (not a `stub-<id>` secret).
    assert_eq!(keys_seen(&stub), vec![Some(1), Some(2)]);
}

#[tokio::test]
async fn a_streamed_body_is_sent_once_and_what_it_taught_is_kept() {
    let (stub, client, url) = world().await;
    let chunks = vec![Ok::<_, std::io::Error>(bytes::Bytes::from(BODY))];
    let error = client
        .post(&url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap_err();
    let relent = relent_error(&error).unwrap_or_else(|| panic!("not relent's: {error:?}"));
    assert!(relent.call_error().is_config(), "{relent}");
    assert!(relent.to_string().contains("sent once"), "{relent}");
    assert_eq!(keys_seen(&stub), vec![Some(1)], "sent exactly once");

    // The rejection was learned: a cloneable request now goes straight to the live key.
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(keys_seen(&stub), vec![Some(1), Some(2)]);
    // A streamed body that meets a live key on its one send simply succeeds.
    let chunks = vec![Ok::<_, std::io::Error>(bytes::Bytes::from(BODY))];
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = stub.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].key, Some(KeyId(2)));
}
