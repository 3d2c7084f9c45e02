//! The transport: how one attempt reaches the provider. Implement [`Transport`] to use
//! another HTTP client; [`ReqwestTransport`] is provided behind the `reqwest` feature. A
//! transport makes exactly one attempt: it never retries on its own, so retries never stack.

use crate::secret::{redact_url, Headers};
use relent::TransportError;
use std::future::Future;
use std::pin::Pin;

/// One attempt to send. Its `Debug` shows neither the credential (see [`Headers`]) nor a
/// key in the URL, nor the body (only its length).
pub struct AttemptRequest<'a> {
    /// The HTTP method (`POST` unless the request said otherwise).
    pub method: &'a str,
    /// The full URL.
    pub url: &'a str,
    /// Headers, the credential and relent's idempotency and attempt headers included.
    pub headers: Headers,
    /// The request body.
    pub body: &'a [u8],
    /// Open a new connection instead of reusing a pooled one.
    pub fresh_connection: bool,
}

impl std::fmt::Debug for AttemptRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptRequest")
            .field("method", &self.method)
            .field("url", &redact_url(self.url))
            .field("headers", &self.headers)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("fresh_connection", &self.fresh_connection)
            .finish()
    }
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
#[non_exhaustive]
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
    /// The request could not be built (a header value or URL the HTTP client refuses, a
    /// client that cannot be configured): a configuration error. The call ends with
    /// [`crate::CallError::Config`] and is not retried. The text must not quote a secret.
    Invalid(String),
}

impl std::fmt::Debug for AttemptResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptResult::Response { status, .. } => write!(f, "Response({status})"),
            AttemptResult::Failed(e) => write!(f, "Failed({e:?})"),
            AttemptResult::Invalid(e) => write!(f, "Invalid({e})"),
        }
    }
}

/// Sends one attempt.
pub trait Transport: Send + Sync {
    /// Sends `request` and returns once the status and headers are in (or it failed).
    fn send(&self, request: AttemptRequest<'_>) -> impl Future<Output = AttemptResult> + Send;

    /// Reports a transport that cannot work (a client builder that failed), so the client
    /// refuses to build instead of failing every attempt. The default finds nothing.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(feature = "reqwest")]
pub use reqwest_transport::ReqwestTransport;

#[cfg(feature = "reqwest")]
mod reqwest_transport {
    use super::*;

    use std::sync::Arc;

    /// Makes the builder every client of a transport starts from.
    type Configure = Arc<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>;

    /// A reqwest transport. Pooled connections are reused; an attempt that asks for a fresh
    /// connection gets a client of its own (and so a new connection). reqwest's own retries
    /// and redirects are off.
    #[derive(Clone)]
    pub struct ReqwestTransport {
        pooled: reqwest::Client,
        configure: Configure,
        /// Why the configured builder failed, if it did.
        broken: Option<String>,
    }

    impl std::fmt::Debug for ReqwestTransport {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ReqwestTransport")
                .field("pooled", &self.pooled)
                .finish_non_exhaustive()
        }
    }

    impl ReqwestTransport {
        /// A transport with a fresh connection pool and reqwest's default settings.
        pub fn new() -> Self {
            Self::with_builder(reqwest::Client::builder)
        }

        /// A transport whose clients all start from `configure()`: extra root certificates,
        /// a proxy, connect timeouts. It is called again for every fresh connection. relent
        /// turns redirects off on top of it; the attempt timeout is the machine's, so a
        /// request timeout set here only cuts attempts shorter.
        ///
        /// A builder that fails is not replaced by defaults (that would drop a proxy or a
        /// root certificate silently): a client built on this transport reports it as a
        /// configuration error. [`ReqwestTransport::try_with_builder`] reports it at once.
        pub fn with_builder(
            configure: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
        ) -> Self {
            let configure: Configure = Arc::new(configure);
            match build(&configure) {
                Ok(pooled) => ReqwestTransport {
                    pooled,
                    configure,
                    broken: None,
                },
                Err(error) => ReqwestTransport {
                    pooled: reqwest::Client::new(),
                    configure,
                    broken: Some(error),
                },
            }
        }

        /// As [`ReqwestTransport::with_builder`], failing at once when the builder fails.
        pub fn try_with_builder(
            configure: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
        ) -> Result<Self, String> {
            let transport = Self::with_builder(configure);
            match transport.broken {
                Some(error) => Err(error),
                None => Ok(transport),
            }
        }
    }

    impl Default for ReqwestTransport {
        fn default() -> Self {
            ReqwestTransport::new()
        }
    }

    fn build(configure: &Configure) -> Result<reqwest::Client, String> {
        configure()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                format!(
                    "the HTTP client cannot be built: {}",
                    relent::classify::redact::redact(&e.to_string())
                )
            })
    }

    /// Maps reqwest's errors to relent's transport error kinds: by the typed causes in the
    /// error's source chain (an I/O error's kind, a rustls error) where there are any, else
    /// by what the error says.
    pub fn map_error(error: &reqwest::Error) -> TransportError {
        if error.is_timeout() {
            return TransportError::Timeout;
        }
        typed_cause(error).unwrap_or_else(|| described(error))
    }

    /// The kind named by a typed cause in `error`'s source chain.
    fn typed_cause(error: &reqwest::Error) -> Option<TransportError> {
        use std::error::Error as _;
        use std::io::ErrorKind;
        let mut cause = error.source();
        while let Some(current) = cause {
            if let Some(tls) = current.downcast_ref::<rustls::Error>() {
                return Some(tls_kind(tls));
            }
            // An I/O error's `source()` skips the error it wraps (where rustls puts its own),
            // so the walk goes through `get_ref()`.
            let mut next = current.source();
            if let Some(io) = current.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    ErrorKind::ConnectionRefused => return Some(TransportError::ConnectRefused),
                    ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof => return Some(TransportError::Reset),
                    ErrorKind::TimedOut => return Some(TransportError::Timeout),
                    _ => {}
                }
                if let Some(inner) = io.get_ref() {
                    next = Some(inner as &(dyn std::error::Error + 'static));
                }
            }
            cause = next;
        }
        None
    }

    /// A certificate the client would not trust is not worth retrying; any other TLS
    /// failure is a handshake failure.
    fn tls_kind(error: &rustls::Error) -> TransportError {
        match error {
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::InvalidCertRevocationList(_) => TransportError::TlsCertificate,
            _ => TransportError::TlsHandshake,
        }
    }

    /// The kind named by the error's text (its typed causes named none).
    fn described(error: &reqwest::Error) -> TransportError {
        let text = format!("{error:?}").to_ascii_lowercase();
        if text.contains("timed out") {
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
        fn check(&self) -> Result<(), String> {
            match &self.broken {
                Some(error) => Err(error.clone()),
                None => Ok(()),
            }
        }

        fn send(&self, request: AttemptRequest<'_>) -> impl Future<Output = AttemptResult> + Send {
            let prepared = self.prepare(request);
            async move {
                let builder = match prepared {
                    Ok(builder) => builder,
                    Err(message) => return AttemptResult::Invalid(message),
                };
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
                    Err(e) if e.is_builder() => AttemptResult::Invalid(format!(
                        "the request cannot be built: {}",
                        relent::classify::redact::redact(&e.to_string())
                    )),
                    Err(e) => AttemptResult::Failed(map_error(&e)),
                }
            }
        }
    }

    impl ReqwestTransport {
        /// The request for one attempt, or why it cannot be built (never quoting a value).
        fn prepare(&self, request: AttemptRequest<'_>) -> Result<reqwest::RequestBuilder, String> {
            let client = if request.fresh_connection {
                build(&self.configure)?
            } else {
                self.pooled.clone()
            };
            let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
                format!("`{}` is not an HTTP method", request.method.escape_debug())
            })?;
            let mut builder = client
                .request(method, request.url)
                .body(request.body.to_vec());
            for (name, value, sensitive) in request.headers.iter_marked() {
                // A credential is marked sensitive, so reqwest and hyper keep it out of
                // their own logs and `Debug` output.
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("`{}` is not a valid header name", name.escape_debug()))?;
                let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                    format!("the value of header `{name}` cannot be sent (a line break or control character?)")
                })?;
                value.set_sensitive(sensitive);
                builder = builder.header(name, value);
            }
            Ok(builder)
        }
    }
}
