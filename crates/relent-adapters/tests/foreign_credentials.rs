//! A credential the caller's client set itself never reaches the provider, whatever its
//! header's name: the reqwest-middleware and tower seams drop every credential header of
//! the client's request before relent adds the attempt's own.
//!
//! The world: relent-sim's stub provider behind a loopback relay that records every byte
//! the client side sends. The client's request carries a canary value in credential
//! headers whose names differ from the target's (`Authorization: Bearer …` to an
//! Anthropic target that takes `x-api-key`; `x-api-key`, `api-key` and `x-goog-api-key`
//! to an OpenAI target that takes `Authorization`). What must happen: the call succeeds
//! with relent's key (the stub names it), and the canary appears nowhere in the bytes the
//! stub was sent, while relent's key does.
//!
//! Why: replacing only the target's own credential header would leave the client's
//! other credential (a key for another provider, a user's token) going to whichever
//! target relent picked.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use relent::KeyId;
use relent_adapters::layer::RelentLayer;
use relent_adapters::middleware::RelentMiddleware;
use relent_sim::stub::Stub;
use relent_sim::Schedule;
use relent_tokio::{Endpoint, KeyStore, RetryState, Secret};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{ServiceBuilder, ServiceExt};

/// A value no part of relent or the stub makes up.
const CANARY: &str = "canary-b1e7a04f-never-on-the-wire";

/// A relay in front of the stub that keeps everything sent towards it.
struct Recorder {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    async fn start(upstream: SocketAddr) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let kept = sent.clone();
        // Ends with the test's runtime.
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    while let Ok(n) = client_read.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        kept.lock().unwrap().extend_from_slice(&buffer[..n]);
                        if server_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = server_write.shutdown().await;
                });
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
            }
        });
        Recorder { addr, sent }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned()
    }
}

/// A stub with one target of `provider`/`model` and its one key, no faults; the relay in
/// front of it; relent's state with that target at the relay's `/v1`.
async fn world(
    provider: &str,
    model: &str,
    endpoint: fn(String) -> Endpoint,
) -> (Stub, Recorder, RetryState) {
    let schedule: Schedule = serde_json::from_str(&format!(
        r#"{{"targets": [{{"provider": "{provider}", "model": "{model}", "keys": [{{"id": 1, "label": "only"}}]}}],
            "faults": [], "latency_ms": 2}}"#
    ))
    .unwrap();
    let stub = Stub::start(schedule.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let recorder = Recorder::start(stub.addr).await;
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new("stub-1"));
    let state = RetryState::builder()
        .target(
            schedule.targets[0].clone(),
            endpoint(format!("{}/v1", recorder.base_url())),
        )
        .keys(keys)
        .build_state()
        .unwrap();
    (stub, recorder, state)
}

/// What the stub was sent holds relent's key and not the canary; the stub named the key.
fn assert_only_relents_key(stub: &Stub, recorder: &Recorder, auth_header: &str) {
    let sent = recorder.sent();
    let lower = sent.to_ascii_lowercase();
    assert!(
        !sent.contains(CANARY),
        "the client's credential was sent:\n{sent}"
    );
    assert!(
        lower.contains(&format!("{auth_header}: ")) && sent.contains("stub-1"),
        "relent's key was not sent as `{auth_header}`:\n{sent}"
    );
    let keys: Vec<_> = stub.seen().iter().map(|s| s.key).collect();
    assert_eq!(keys, vec![Some(KeyId(1))]);
}

#[tokio::test]
async fn reqwest_middleware_drops_a_bearer_token_sent_to_an_x_api_key_target() {
    let (stub, recorder, state) = world("anthropic", "claude-sonnet-4", Endpoint::anthropic).await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(RelentMiddleware::new(state))
        .build();
    let response = client
        .post(format!("{}/v1/messages", recorder.base_url()))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {CANARY}"))
        .body(
            r#"{"model": "claude-sonnet-4", "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}]}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_only_relents_key(&stub, &recorder, "x-api-key");
}

#[tokio::test]
async fn the_tower_layer_drops_api_key_headers_sent_to_a_bearer_target() {
    let (stub, recorder, state) = world("openai", "gpt-4o", Endpoint::openai).await;
    let hyper: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let stack = ServiceBuilder::new()
        .layer(RelentLayer::new(state))
        .service(hyper);
    let request = http::Request::post(format!("{}/v1/chat/completions", recorder.base_url()))
        .header("content-type", "application/json")
        .header("x-api-key", CANARY)
        .header("api-key", CANARY)
        .header("x-goog-api-key", CANARY)
        .body(Full::new(Bytes::from_static(
            br#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#,
        )))
        .unwrap();
    let response = stack.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("Hello!"));
    assert_only_relents_key(&stub, &recorder, "authorization");
}
