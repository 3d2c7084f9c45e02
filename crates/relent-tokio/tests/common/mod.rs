//! A programmable loopback provider for the driver's tests: every request is recorded
//! (method, path, query, headers, body, arrival time), and a closure of the test's decides
//! the reply, which may trickle its body, send server-sent events with pauses, or hang.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at_ms: u64,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// What to answer.
pub enum Reply {
    /// A status and a JSON body, at once.
    Json(u16, String),
    /// A status and content type, then each chunk after its delay; then the end, or a
    /// connection that stays open and silent (`hang`).
    Chunks {
        status: u16,
        content_type: &'static str,
        chunks: Vec<(u64, Vec<u8>)>,
        hang: bool,
    },
    /// Hold the request for this long, then answer.
    After(u64, Box<Reply>),
}

type Handler = Arc<dyn Fn(&Recorded, usize) -> Reply + Send + Sync>;

pub struct Server {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Recorded>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn seen(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts a server whose replies come from `handler(request, index)`.
pub async fn serve(handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Server {
    let handler: Handler = Arc::new(handler);
    let seen: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let started = Instant::now();
    let state = (handler, seen.clone(), started);
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (handler, seen, started) = state.clone();
            async move {
                let recorded = Recorded {
                    method: method.to_string(),
                    path: uri.path().to_string(),
                    query: uri.query().map(str::to_string),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect(),
                    body: body.to_vec(),
                    at_ms: started.elapsed().as_millis() as u64,
                };
                let index = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(recorded.clone());
                    seen.len() - 1
                };
                respond(handler(&recorded, index)).await
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Server {
        addr,
        seen,
        _shutdown: tx,
    }
}

fn respond(reply: Reply) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>> {
    Box::pin(async move {
        match reply {
            Reply::Json(status, body) => {
                let mut response = Response::new(Body::from(body));
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                response
                    .headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                response
            }
            Reply::After(ms, reply) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                respond(*reply).await
            }
            Reply::Chunks {
                status,
                content_type,
                chunks,
                hang,
            } => {
                let stream = futures_util::stream::unfold(
                    (chunks.into_iter(), hang),
                    |(mut chunks, hang)| async move {
                        match chunks.next() {
                            Some((delay, bytes)) => {
                                tokio::time::sleep(Duration::from_millis(delay)).await;
                                Some((
                                    Ok::<_, std::io::Error>(bytes::Bytes::from(bytes)),
                                    (chunks, hang),
                                ))
                            }
                            None if hang => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                None
                            }
                            None => None,
                        }
                    },
                );
                let mut response = Response::new(Body::from_stream(stream));
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                response
                    .headers_mut()
                    .insert("content-type", content_type.parse().unwrap());
                response
            }
        }
    })
}

/// Short waits so the real-time tests stay fast; the decisions are the defaults'.
pub fn quick() -> relent::Policy {
    let mut p = relent::Policy::default();
    p.backoff.base_ms = 100;
    p.backoff.cap_ms = 400;
    p.congestion_backoff.base_ms = 150;
    p.congestion_backoff.cap_ms = 600;
    p
}

pub const OPENAI_OK: &str = r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}"#;
pub const ANTHROPIC_OK: &str = r#"{"id":"m1","type":"message","role":"assistant","content":[{"type":"text","text":"hello from claude"}],"stop_reason":"end_turn"}"#;
pub const OPENAI_BAD_KEY: &str = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#;
