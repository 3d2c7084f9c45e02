//! relent as a tower layer around hyper's client, over loopback.
//!
//! The world: relent-sim's stub provider with three keys, the first rejected, and a tower
//! stack of [`RelentLayer`] over hyper-util's legacy client (a
//! `Service<http::Request<Full<Bytes>>>`). What must happen:
//!
//! - Requests go through relent: the first call sends the dead key once and then the
//!   next; later calls through clones of the stack use the live key only (one pool). The
//!   answer's body arrives through relent's body intact.
//! - A streamed answer (the request accepts `text/event-stream`) is handed over and reads
//!   to its `[DONE]`.
//! - A request whose URL is under no target's base URL is refused before anything is
//!   sent: a key is never sent to a host that is not its target's.
//!
//! Why: the layer is the seam for any tower client; it must carry relent's decisions and
//! learning without reading the body, and must never leak a key.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use relent_adapters::layer::RelentLayer;
use relent_sim::stub::Stub;
use relent_sim::Schedule;
use relent_tokio::{Endpoint, KeyStore, RetryState, Secret};
use tower::{ServiceBuilder, ServiceExt};

const BODY: &str = r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#;
const STREAM_BODY: &str =
    r#"{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#;

async fn world() -> (Stub, RetryState) {
    let schedule: Schedule = serde_json::from_str(
        r#"{"targets": [{"provider": "openai", "model": "gpt-4o",
             "keys": [{"id": 1, "label": "dead"}, {"id": 2, "label": "live"}, {"id": 3, "label": "spare"}]}],
            "faults": [{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}],
            "latency_ms": 2}"#,
    )
    .unwrap();
    let stub = Stub::start(schedule.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut keys = KeyStore::new();
    for key in schedule.targets.iter().flat_map(|t| &t.keys) {
        keys.insert(key.id, Secret::new(format!("stub-{}", key.id.0)));
    }
    let state = RetryState::builder()
        .target(
            schedule.targets[0].clone(),
            Endpoint::openai(format!("{}/v1", stub.base_url())),
        )
        .keys(keys)
        .seed(18)
        .build_state()
        .unwrap();
    (stub, state)
}

fn request(url: &str, body: &'static str, accept: &str) -> http::Request<Full<Bytes>> {
    http::Request::post(url)
        .header("content-type", "application/json")
        .header("accept", accept)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn keys_seen(stub: &Stub) -> Vec<Option<u32>> {
    stub.seen().iter().map(|s| s.key.map(|k| k.0)).collect()
}

#[tokio::test]
async fn requests_through_the_layer_rotate_past_the_dead_key_and_share_what_they_learn() {
    let (stub, state) = world().await;
    let hyper: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let stack = ServiceBuilder::new()
        .layer(RelentLayer::new(state))
        .service(hyper);
    let url = format!("{}/v1/chat/completions", stub.base_url());

    let calls = 3;
    for _ in 0..calls {
        let response = stack
            .clone()
            .oneshot(request(&url, BODY, "application/json"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "Hello!");
    }
    let mut expected = vec![Some(1)];
    expected.extend(std::iter::repeat_n(Some(2), calls));
    assert_eq!(keys_seen(&stub), expected);

    let response = stack
        .clone()
        .oneshot(request(&url, STREAM_BODY, "text/event-stream"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("chat.completion.chunk"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
}

#[tokio::test]
async fn a_url_under_no_target_is_refused_before_any_key_is_sent() {
    let (stub, state) = world().await;
    let hyper: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let stack = ServiceBuilder::new()
        .layer(RelentLayer::new(state))
        .service(hyper);
    // The stub's own host, but outside the target's base path `/v1`.
    let url = format!("{}/chat/completions", stub.base_url());
    let error = stack
        .oneshot(request(&url, BODY, "application/json"))
        .await
        .unwrap_err();
    assert!(error.call_error().is_config(), "{error}");
    assert!(error.to_string().contains("under none"), "{error}");
    assert!(stub.seen().is_empty(), "{:?}", stub.seen());
}
