//! Where and how each target is reached: its URL, request shape and authentication.

use crate::secret::{redact_url, Headers, Secret};
use std::fmt;
use std::sync::Arc;

/// Which request shape a target speaks. It decides how a typed [`crate::Request`] is
/// shaped for the target and the default [`Auth`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Api {
    /// OpenAI-compatible chat completions (OpenAI, Azure OpenAI, Groq, Mistral, DeepSeek,
    /// xAI, OpenRouter, vLLM, …). Default auth: `Authorization: Bearer <key>`.
    #[serde(alias = "openai", alias = "openai_compatible")]
    OpenAiCompatible,
    /// Anthropic Messages. Default auth: `x-api-key: <key>` with `anthropic-version`.
    #[serde(alias = "anthropic", alias = "anthropic_messages")]
    AnthropicMessages,
    /// Any other API (Gemini's native API, Bedrock, an in-house service): only
    /// [`crate::Request::raw`] bodies can be sent to it. Default auth: Bearer.
    Other,
}

impl Api {
    /// The authentication this API uses unless told otherwise.
    pub fn default_auth(self) -> Auth {
        match self {
            Api::AnthropicMessages => Auth::AnthropicKey {
                version: ANTHROPIC_VERSION.to_string(),
            },
            Api::OpenAiCompatible | Api::Other => Auth::Bearer,
        }
    }

    /// A short name (`openai_compatible`, `anthropic_messages`, `other`).
    pub fn name(self) -> &'static str {
        match self {
            Api::OpenAiCompatible => "openai_compatible",
            Api::AnthropicMessages => "anthropic_messages",
            Api::Other => "other",
        }
    }
}

/// The `anthropic-version` sent unless another is configured.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// How a key authenticates a request.
#[derive(Clone)]
#[non_exhaustive]
pub enum Auth {
    /// `Authorization: Bearer <key>` (OpenAI and most OpenAI-compatible APIs).
    Bearer,
    /// `x-api-key: <key>` and `anthropic-version: <version>` (Anthropic).
    AnthropicKey {
        /// The `anthropic-version` header's value.
        version: String,
    },
    /// `api-key: <key>` (Azure OpenAI).
    AzureApiKey,
    /// `x-goog-api-key: <key>` (Gemini).
    GoogApiKey,
    /// The key as a query parameter, `?<param>=<key>` (Gemini's `key`). The URL is
    /// redacted wherever relent prints it.
    QueryKey {
        /// The parameter's name.
        param: String,
    },
    /// `<name>: <prefix><key>`, for any other provider.
    Header {
        /// The header's name.
        name: String,
        /// Text before the key (`"Token "`, or empty).
        prefix: String,
    },
    /// A request signed with the key (AWS SigV4 for Bedrock, HMAC schemes), by a
    /// [`Signer`] of the caller's.
    Signed(Arc<dyn Signer>),
    /// No credential (a local model server). Keys still name the pool's slots; they need
    /// no secret, and none is sent.
    None,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Bearer => f.write_str("Bearer"),
            Auth::AnthropicKey { version } => write!(f, "AnthropicKey({version})"),
            Auth::AzureApiKey => f.write_str("AzureApiKey"),
            Auth::GoogApiKey => f.write_str("GoogApiKey"),
            Auth::QueryKey { param } => write!(f, "QueryKey({param})"),
            Auth::Header { name, .. } => write!(f, "Header({name})"),
            Auth::Signed(_) => f.write_str("Signed"),
            Auth::None => f.write_str("None"),
        }
    }
}

/// A request about to be signed: a [`Signer`] may add headers and change the URL.
#[non_exhaustive]
pub struct SignRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The full URL.
    pub url: &'a mut String,
    /// The headers so far (relent's, the target's and the call's).
    pub headers: &'a mut Headers,
    /// The body as it will be sent.
    pub body: &'a [u8],
}

/// Signs requests with a key, for providers whose authentication is a signature (AWS
/// SigV4). Called once per attempt, just before the send.
pub trait Signer: Send + Sync {
    /// Adds the signature to `request`. An error is a configuration error: the call ends
    /// with [`crate::CallError::Config`] and nothing is sent. Its text must not quote the
    /// secret.
    fn sign(&self, request: &mut SignRequest<'_>, secret: &Secret) -> Result<(), String>;
}

/// Where and how a target is reached. Its `Debug` redacts keys in the URL (`?key=…`, a
/// password in the user part).
#[derive(Clone)]
#[non_exhaustive]
pub struct Endpoint {
    /// The full URL requests are sent to. `{model}` in it is replaced by the target's
    /// model (Gemini and Azure put the model or deployment in the path).
    pub url: String,
    /// The request shape.
    pub api: Api,
    /// How the key is sent.
    pub auth: Auth,
    /// Headers sent to this target only (`anthropic-beta`, `OpenAI-Organization`).
    pub headers: Vec<(String, String)>,
    /// Whether the top-level `"model"` of a raw JSON body is replaced by the target's model
    /// (on by default; typed bodies always carry the target's model).
    pub rewrite_model: bool,
}

impl Endpoint {
    /// An endpoint at `url` speaking `api`, with the API's default auth.
    pub fn new(url: impl Into<String>, api: Api) -> Self {
        Endpoint {
            url: url.into(),
            api,
            auth: api.default_auth(),
            headers: Vec::new(),
            rewrite_model: true,
        }
    }

    /// An OpenAI-compatible endpoint (Bearer auth).
    pub fn openai(url: impl Into<String>) -> Self {
        Endpoint::new(url, Api::OpenAiCompatible)
    }

    /// An Anthropic Messages endpoint (`x-api-key`, `anthropic-version: 2023-06-01`).
    pub fn anthropic(url: impl Into<String>) -> Self {
        Endpoint::new(url, Api::AnthropicMessages)
    }

    /// Uses another auth style.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Adds a header sent to this target only.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Turns the rewrite of a raw body's `"model"` on or off.
    pub fn with_model_rewrite(mut self, on: bool) -> Self {
        self.rewrite_model = on;
        self
    }

    /// The URL for `model`.
    pub(crate) fn url_for(&self, model: &str) -> String {
        if self.url.contains("{model}") {
            self.url.replace("{model}", model)
        } else {
            self.url.clone()
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Headers = self.headers.iter().cloned().collect();
        f.debug_struct("Endpoint")
            .field("url", &redact_url(&self.url))
            .field("api", &self.api)
            .field("auth", &self.auth)
            .field("headers", &headers)
            .field("rewrite_model", &self.rewrite_model)
            .finish()
    }
}

/// Checks a header name (an RFC 9110 token).
pub(crate) fn check_header_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid header name",
            relent::classify::redact::redact(name).escape_debug()
        ))
    }
}

/// Checks a non-secret header value (visible ASCII, spaces and tabs inside).
pub(crate) fn check_header_value(name: &str, value: &str) -> Result<(), String> {
    let bad = value
        .bytes()
        .any(|b| b != b'\t' && !(0x20..0x7f).contains(&b));
    if bad || value.trim() != value {
        return Err(format!(
            "the value of header `{name}` contains a line break, a control or non-ASCII character, or leading or trailing whitespace"
        ));
    }
    Ok(())
}

/// Checks a secret before it is ever sent: printable ASCII, no whitespace anywhere. The
/// error names the key by its label, never the secret.
pub(crate) fn check_secret(label: &str, id: relent::KeyId, secret: &Secret) -> Result<(), String> {
    let s = secret.expose();
    let who = format!("the secret for key {id} (\"{label}\")");
    if s.is_empty() {
        return Err(format!("{who} is empty"));
    }
    if s.ends_with(['\n', '\r']) {
        return Err(format!(
            "{who} ends with a line break (read from a file or `echo` without -n?); remove it"
        ));
    }
    if s.trim() != s {
        return Err(format!("{who} starts or ends with whitespace; remove it"));
    }
    if s.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err(format!(
            "{who} contains whitespace, a control or a non-ASCII character, which cannot go in a request"
        ));
    }
    Ok(())
}

/// Checks a URL: it parses, is http or https, and has a host.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let shown = redact_url(url);
    let parsed = url::Url::parse(url).map_err(|e| format!("cannot parse URL {shown}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("URL {shown} is not http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("URL {shown} has no host"));
    }
    Ok(())
}

/// Checks an HTTP method (a token).
pub(crate) fn check_method(method: &str) -> Result<(), String> {
    check_header_name(method).map_err(|_| {
        format!(
            "`{}` is not a valid HTTP method",
            relent::classify::redact::redact(method).escape_debug()
        )
    })
}

/// Checks an endpoint's own settings (not its keys).
pub(crate) fn check_endpoint(endpoint: &Endpoint, model: &str) -> Result<(), String> {
    check_url(&endpoint.url_for(model))?;
    for (name, value) in &endpoint.headers {
        check_header_name(name)?;
        check_header_value(name, value)?;
    }
    match &endpoint.auth {
        Auth::AnthropicKey { version } => check_header_value("anthropic-version", version)?,
        Auth::QueryKey { param } if param.is_empty() => {
            return Err("a query-key auth needs a parameter name".into())
        }
        Auth::Header { name, prefix } => {
            check_header_name(name)?;
            if prefix.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
                return Err(format!(
                    "the prefix of header `{name}` contains a control or non-ASCII character"
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Adds the credential for `secret` to an attempt.
pub(crate) fn apply_auth(
    auth: &Auth,
    secret: &Secret,
    method: &str,
    url: &mut String,
    headers: &mut Headers,
    body: &[u8],
) -> Result<(), String> {
    match auth {
        Auth::Bearer => {
            headers.push_sensitive("authorization", format!("Bearer {}", secret.expose()))
        }
        Auth::AnthropicKey { version } => {
            headers.push_sensitive("x-api-key", secret.expose());
            headers.push("anthropic-version", version.clone());
        }
        Auth::AzureApiKey => headers.push_sensitive("api-key", secret.expose()),
        Auth::GoogApiKey => headers.push_sensitive("x-goog-api-key", secret.expose()),
        Auth::QueryKey { param } => {
            let mut parsed = url::Url::parse(url)
                .map_err(|e| format!("cannot parse URL {}: {e}", redact_url(url)))?;
            parsed.query_pairs_mut().append_pair(param, secret.expose());
            *url = parsed.into();
        }
        Auth::Header { name, prefix } => {
            headers.push_sensitive(name.clone(), format!("{prefix}{}", secret.expose()))
        }
        Auth::Signed(signer) => {
            let mut request = SignRequest {
                method,
                url,
                headers,
                body,
            };
            signer.sign(&mut request, secret)?;
        }
        Auth::None => {}
    }
    Ok(())
}
