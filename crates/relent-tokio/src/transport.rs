//! The transport: how one attempt reaches the provider. Implement [`Transport`] to use
//! another HTTP client; [`ReqwestTransport`] is provided behind the `reqwest` feature. A
//! transport makes exactly one attempt: it never retries on its own, so retries never stack.

use relent::TransportError;
use std::future::Future;
use std::pin::Pin;

/// One attempt to send.
#[derive(Debug)]
pub struct AttemptRequest<'a> {
    /// The full URL.
    pub url: &'a str,
    /// Headers, the credential and relent's idempotency and attempt headers included.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: &'a [u8],
    /// Open a new connection instead of reusing a pooled one.
    pub fresh_connection: bool,
}

/// A boxed future for the next chunk of a body.
pub type NextChunk<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, TransportError>> + Send + 'a>>;

/// The body of a response, read chunk by chunk.
pub trait BodyReader: Send {
    /// The next chunk; `Ok(None)` at the end.
    fn next_chunk(&mut self) -> NextChunk<'_>;
}

/// What an attempt produced before its body was read.
pub enum AttemptResult {
    /// The server answered with a status and headers; the body follows.
    Response {
        /// The status.
        status: u16,
        /// The headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Box<dyn BodyReader>,
    },
    /// The attempt failed below HTTP.
    Failed(TransportError),
}

impl std::fmt::Debug for AttemptResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptResult::Response { status, .. } => write!(f, "Response({status})"),
            AttemptResult::Failed(e) => write!(f, "Failed({e:?})"),
        }
    }
}

/// Sends one attempt.
pub trait Transport: Send + Sync {
    /// Sends `request` and returns once the status and headers are in (or it failed).
    fn send(&self, request: AttemptRequest<'_>) -> impl Future<Output = AttemptResult> + Send;
}

#[cfg(feature = "reqwest")]
pub use reqwest_transport::ReqwestTransport;

#[cfg(feature = "reqwest")]
mod reqwest_transport {
    use super::*;

    /// A reqwest transport. Pooled connections are reused; an attempt that asks for a fresh
    /// connection gets a client of its own (and so a new connection). reqwest's own retries
    /// and redirects are off.
    #[derive(Clone, Debug)]
    pub struct ReqwestTransport {
        pooled: reqwest::Client,
    }

    impl ReqwestTransport {
        /// A transport with a fresh connection pool.
        pub fn new() -> Self {
            ReqwestTransport { pooled: build() }
        }
    }

    impl Default for ReqwestTransport {
        fn default() -> Self {
            ReqwestTransport::new()
        }
    }

    fn build() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    }

    /// Maps reqwest's errors to relent's transport error kinds.
    pub fn map_error(error: &reqwest::Error) -> TransportError {
        let text = format!("{error:?}").to_ascii_lowercase();
        if error.is_timeout() {
            TransportError::Timeout
        } else if text.contains("certificate")
            || text.contains("invalidcertificate")
            || text.contains("unknownissuer")
        {
            TransportError::TlsCertificate
        } else if text.contains("tls") || text.contains("handshake") {
            TransportError::TlsHandshake
        } else if text.contains("dns")
            || text.contains("failed to lookup")
            || text.contains("resolve")
        {
            TransportError::Dns
        } else if error.is_connect() {
            TransportError::ConnectRefused
        } else if error.is_body()
            || error.is_decode()
            || error.is_request()
            || text.contains("reset")
            || text.contains("closed")
        {
            TransportError::Reset
        } else {
            TransportError::Other
        }
    }

    struct ReqwestBody(reqwest::Response);

    impl BodyReader for ReqwestBody {
        fn next_chunk(&mut self) -> NextChunk<'_> {
            Box::pin(async move {
                match self.0.chunk().await {
                    Ok(chunk) => Ok(chunk.map(|b| b.to_vec())),
                    Err(e) => Err(map_error(&e)),
                }
            })
        }
    }

    impl Transport for ReqwestTransport {
        fn send(&self, request: AttemptRequest<'_>) -> impl Future<Output = AttemptResult> + Send {
            let client = if request.fresh_connection {
                build()
            } else {
                self.pooled.clone()
            };
            let mut builder = client.post(request.url).body(request.body.to_vec());
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            async move {
                match builder.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let headers = response
                            .headers()
                            .iter()
                            .filter_map(|(k, v)| {
                                Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))
                            })
                            .collect();
                        AttemptResult::Response {
                            status,
                            headers,
                            body: Box::new(ReqwestBody(response)),
                        }
                    }
                    Err(e) => AttemptResult::Failed(map_error(&e)),
                }
            }
        }
    }
}
