//! A stub provider over real HTTP: OpenAI- and Anthropic-shaped endpoints that answer from a
//! schedule, on loopback. It is test equipment for drivers (`relent stub`, and the tokio
//! driver's integration tests), not something to embed.
//!
//! - A request's key is its secret: `Authorization: Bearer stub-<id>` or `x-api-key: stub-<id>`
//!   names key `<id>` of the schedule.
//! - The target is the one whose `model` matches the JSON body's `model`, else the first.
//! - The schedule's virtual clock is the real time since the stub started, in ms; each reply
//!   is computed by the simulator's server (`server.rs`) when the request arrives, and sent
//!   after `latency_ms`.
//! - An OpenAI-shaped success carries `created` and the request's `model` (as the real API
//!   does, so SDKs that require them can parse it), and a request with `"stream": true` gets
//!   it as server-sent `chat.completion.chunk` events ending in `data: [DONE]`.
//! - A hang is a reply that never comes (until the client gives up); a reset or a TLS failure
//!   is a response whose body breaks before it ends; a stream that fails midway sends one
//!   event and then breaks.

use crate::respond::Reply;
use crate::schedule::Schedule;
use crate::server::Server;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use relent::{KeyId, Time};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the stub saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The key the secret named (`None` for a missing or unknown secret).
    pub key: Option<KeyId>,
    /// Milliseconds since the stub started.
    pub at_ms: u64,
    /// The `Idempotency-Key` header, if sent.
    pub idempotency_key: Option<String>,
    /// The `X-Relent-Attempt` header, if sent.
    pub attempt: Option<String>,
    /// The client's port: a new port means a new connection.
    pub connection: u16,
    /// The request's path.
    pub path: String,
    /// The JSON body's top-level `model`, if any.
    pub model: Option<String>,
}

struct Shared {
    schedule: Schedule,
    server: Mutex<Server<'static>>,
    started: tokio::time::Instant,
    seen: Mutex<Vec<Seen>>,
}

/// A running stub.
pub struct Stub {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Stub {
    /// Starts a stub for `schedule` on `addr` (use port 0 for an ephemeral port) in the
    /// current tokio runtime.
    pub async fn start(schedule: Schedule, addr: SocketAddr) -> std::io::Result<Stub> {
        // The server borrows its schedule for the stub's whole life.
        let leaked: &'static Schedule = Box::leak(Box::new(schedule.clone()));
        let shared = Arc::new(Shared {
            schedule,
            server: Mutex::new(Server::new(leaked)),
            started: tokio::time::Instant::now(),
            seen: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .route("/v1/messages", post(handle))
            .route("/chat/completions", post(handle))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Stub {
            addr,
            shared,
            shutdown: Some(tx),
        })
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Distinct client connections that sent requests so far.
    pub fn connections(&self) -> usize {
        let mut ports: Vec<u16> = self.seen().iter().map(|s| s.connection).collect();
        ports.sort_unstable();
        ports.dedup();
        ports.len()
    }

    /// Stops accepting connections.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop();
    }
}

fn secret_key(headers: &HeaderMap) -> Option<KeyId> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer
        .or(api_key)?
        .trim()
        .strip_prefix("stub-")?
        .parse()
        .ok()
        .map(KeyId)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let connection = peer.port();
    let at = shared.started.elapsed().as_millis() as u64;
    let key = secret_key(&headers);
    let json = serde_json::from_slice::<serde_json::Value>(&body).ok();
    let model = json
        .as_ref()
        .and_then(|v| v.get("model").and_then(|m| m.as_str()).map(str::to_string));
    let wants_stream = json
        .as_ref()
        .and_then(|v| v.get("stream"))
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if let Ok(mut seen) = shared.seen.lock() {
        seen.push(Seen {
            key,
            at_ms: at,
            idempotency_key: header("idempotency-key"),
            attempt: header("x-relent-attempt"),
            connection,
            path: uri.path().to_string(),
            model: model.clone(),
        });
    }
    let Some(key) = key else {
        return plain(
            401,
            r#"{"error":{"message":"No API key provided (the stub expects stub-<key id>)","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        );
    };
    let target = model
        .as_ref()
        .and_then(|m| shared.schedule.targets.iter().position(|t| t.model == *m))
        .unwrap_or(0);
    let reply = match shared.server.lock() {
        Ok(mut server) => server.serve(key, target, Time(at)).reply,
        Err(_) => return plain(500, "stub poisoned"),
    };
    tokio::time::sleep(Duration::from_millis(shared.schedule.latency_ms)).await;
    match reply {
        Reply::Http {
            status: 200,
            ref body,
            ..
        } if is_openai_chat(body) => openai_success(body, model.as_deref(), wants_stream),
        Reply::Http {
            status,
            headers,
            body,
        } => {
            let mut response = Response::new(Body::from(body.to_vec()));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (name, value) in headers.iter() {
                let (name, value) = (name.as_str(), value.as_str());
                if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                    response.headers_mut().append(n, v);
                }
            }
            response
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            plain(504, "hung")
        }
        Reply::Transport(_) => broken(Vec::new()),
        Reply::StreamThenFail => {
            broken(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n".to_vec())
        }
    }
}

/// Whether a body is an OpenAI chat completion.
fn is_openai_chat(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("object").and_then(|o| o.as_str()) == Some("chat.completion"))
}

/// An OpenAI chat success as the real API sends it: with `created` and the model, whole or
/// (when the request asked for a stream) as `chat.completion.chunk` events.
fn openai_success(body: &[u8], model: Option<&str>, stream: bool) -> Response {
    let mut value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let model = model.unwrap_or("stub-model");
    value["created"] = serde_json::json!(0);
    value["model"] = serde_json::json!(model);
    if !stream {
        let mut response = Response::new(Body::from(value.to_string()));
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        return response;
    }
    let text = value["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        let event = serde_json::json!({
            "id": value["id"], "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        format!("data: {event}\n\n")
    };
    let mut events = vec![chunk(
        serde_json::json!({"role": "assistant", "content": ""}),
        serde_json::Value::Null,
    )];
    // One event per word, so a client sees several chunks.
    for word in text.split_inclusive(' ') {
        events.push(chunk(
            serde_json::json!({"content": word}),
            serde_json::Value::Null,
        ));
    }
    events.push(chunk(serde_json::json!({}), serde_json::json!("stop")));
    events.push("data: [DONE]\n\n".to_string());
    let stream = futures_util::stream::iter(
        events
            .into_iter()
            .map(|e| Ok::<_, std::io::Error>(bytes::Bytes::from(e))),
    );
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

fn plain(status: u16, body: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// A 200 event stream that sends `first`, waits a moment (so the client has read it), and
/// then breaks the connection.
fn broken(first: Vec<u8>) -> Response {
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let first = first.clone();
        async move {
            match step {
                0 => Some((Ok(bytes::Bytes::from(first)), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "stub: connection broken",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    response
}
