//! genai's `Client::exec_chat` inside `relent_tokio::retry`: the closure and the mapping
//! of genai's results back into what relent reads. The example (`main.rs` beside this
//! file) and the loopback test `tests/genai.rs` both run this file, so the test checks
//! the code shown here. Written against genai 0.7.2.
//!
//! # Per attempt
//!
//! relent picks the target and the key; genai builds the request and parses the answer.
//! Each attempt becomes one `exec_chat` whose model argument is a whole
//! `genai::ServiceTarget` (`ModelSpec::Target`: genai then skips its model mapper and auth
//! resolver) holding the attempt's endpoint, key and model. A client built with an
//! `AuthResolver` and `ServiceTargetResolver` could do the same, but it would have to read
//! the attempt from somewhere shared; the service target passes it by value. relent's own
//! headers (idempotency key, attempt number, the target's and the call's headers) go in as
//! genai's per-call `extra_headers`.
//!
//! The credential is genai's: for an OpenAI-compatible target it sends
//! `Authorization: Bearer <key>`, for an Anthropic one `x-api-key` (with genai's own
//! `anthropic-version`). So only targets whose relent `Auth` is that same default are
//! accepted here; any other auth (Azure's `api-key`, a query key, a signer) is refused
//! before anything is sent. genai's `AuthData::RequestOverride` could carry relent's
//! auth instead, at the price of building genai's URL by hand.
//!
//! # What genai gives back, and what it loses (genai 0.7.2)
//!
//! - **A failed status** (`Error::WebModelCall` with `webc::Error::ResponseFailedStatus`,
//!   or `Error::HttpError`): status, headers and body are all kept
//!   (`genai::Error::status`, `genai::Error::headers`), so relent sees `Retry-After`,
//!   `retry-after-ms` and the rate-limit headers exactly as sent.
//! - **A success**: genai keeps only the parsed JSON body. It drops the status (any 2xx
//!   becomes 200 here) and every response header (`WebResponse::from_reqwest_response` in
//!   genai's `src/webc/web_client.rs`), so relent cannot read the rate-limit headers of a
//!   successful answer (`x-ratelimit-remaining-*`) and learns a key's budget only from its
//!   429s. The body relent gets is the JSON genai parsed, written out again (asked for with
//!   `ChatOptions::with_capture_raw_body`), which is enough to find an error inside a 200.
//! - **A 2xx genai could not read** (not JSON, or JSON it could not turn into a
//!   `ChatResponse`): handed to relent as a 200 with the body genai kept, so the key is not
//!   blamed; the caller gets genai's error.
//! - **No response** (`Error::WebModelCall` with `webc::Error::Reqwest`): reqwest's error
//!   becomes relent's transport kind (timeout, refused, reset, …).
//! - **Refused before sending** (genai could not shape the request, or this file cannot
//!   map the target): there is no "invalid" answer in the closure API, so it is reported
//!   as a 400 that no provider sent. relent classifies a 400 as a malformed request and
//!   ends the call at once without blaming the key or the target; the caller gets genai's
//!   error, not the 400.
//! - **Streaming** (`exec_chat_stream`) is not covered: the closure API reads whole
//!   answers.
//!
//! # Retries and redirects
//!
//! genai has no retry of its own: `WebClient::do_post` (genai's `src/webc/web_client.rs`)
//! sends once and returns, and no other code in genai 0.7.2 sends again, so there is
//! nothing to turn off. Do not wrap these calls in another retry. The reqwest client given
//! to genai ([`http_client`]) follows no redirects, as relent-tokio's own transport, so a
//! key goes to its target's host only.

use genai::adapter::AdapterKind;
use genai::chat::{ChatOptions, ChatRequest, ChatResponse};
use genai::resolver::{AuthData, Endpoint as GenaiEndpoint};
use genai::{ModelIden, ServiceTarget};
use relent::TransportError;
use relent_tokio::{Answer, Api, Attempt, Auth, CallError, RetryState};
use std::collections::HashMap;
use std::sync::Mutex;

/// Why a chat through relent and genai failed.
#[derive(Debug)]
pub enum ChatError {
    /// relent gave up (or the call was misconfigured): its reason, attempts and last
    /// failure are inside. Its text quotes no secret.
    Relent(CallError),
    /// genai refused the request before sending it, or could not read the 2xx answer
    /// relent accepted.
    Genai(genai::Error),
    /// relent accepted an answer this file never recorded (a bug here, not in the call).
    Lost,
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatError::Relent(e) => write!(f, "relent: {e}"),
            ChatError::Genai(e) => write!(f, "genai: {e}"),
            ChatError::Lost => f.write_str("the accepted answer was not recorded"),
        }
    }
}

impl std::error::Error for ChatError {}

/// A reqwest client for genai (`genai::Client::builder().with_reqwest(..)`): no redirects.
/// This workspace builds genai without TLS (the stub is plain HTTP on loopback); a program
/// that calls a real provider keeps genai's default `rustls-tls` feature (or
/// `native-tls`).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client with no TLS settings builds")
}

/// One chat through relent: each attempt is one `client.exec_chat` with the attempt's
/// endpoint, key and model, and the answer relent accepted comes back as genai's
/// `ChatResponse`. `options` are the caller's genai options for every attempt.
pub async fn chat(
    state: &RetryState,
    client: &genai::Client,
    request: &ChatRequest,
    options: &ChatOptions,
) -> Result<ChatResponse, ChatError> {
    // What the last attempt got from genai, by attempt number. Attempts of one call never
    // overlap, so the last one written is the one relent decided on.
    let kept: Mutex<Option<Outcome>> = Mutex::new(None);
    let done = relent_tokio::retry(state, |attempt| {
        let kept = &kept;
        async move {
            let number = attempt.number;
            let (answer, outcome) = match service_target(&attempt) {
                Err(refused) => (Ok(refused_answer(&refused)), Outcome::NotSent(refused)),
                Ok(target) => {
                    let options = attempt_options(&attempt, options);
                    let result = client
                        .exec_chat(target, request.clone(), Some(&options))
                        .await;
                    let answer = answer_of(&result);
                    (answer, Outcome::Sent(number, Box::new(result)))
                }
            };
            *kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
            answer
        }
    })
    .await;
    let kept = kept.into_inner().unwrap_or_else(|e| e.into_inner());
    match (done, kept) {
        (Ok(done), Some(Outcome::Sent(number, result))) if number == done.attempts => {
            (*result).map_err(ChatError::Genai)
        }
        (Ok(_), _) => Err(ChatError::Lost),
        (Err(_), Some(Outcome::NotSent(refused))) => Err(ChatError::Genai(refused)),
        (Err(e), _) => Err(ChatError::Relent(e)),
    }
}

/// What one attempt ended with, as genai said it.
enum Outcome {
    /// Sent as attempt `.0`; genai's result.
    Sent(u32, Box<genai::Result<ChatResponse>>),
    /// Refused before sending.
    NotSent(genai::Error),
}

/// The attempt as a genai service target: genai's adapter for the target's API, the
/// endpoint's URL as genai's base URL, the attempt's key and model.
fn service_target(attempt: &Attempt) -> Result<ServiceTarget, genai::Error> {
    let kind = match (attempt.endpoint.api, &attempt.endpoint.auth) {
        (Api::OpenAiCompatible, Auth::Bearer) => AdapterKind::OpenAI,
        (Api::AnthropicMessages, Auth::AnthropicKey { .. }) => AdapterKind::Anthropic,
        _ => {
            return Err(genai::Error::Internal(format!(
                "target {} ({:?} API): only OpenAI-compatible targets with Bearer auth and \
                 Anthropic targets with their default auth are mapped to genai here",
                attempt.target, attempt.endpoint.api
            )))
        }
    };
    // genai joins its path ("chat/completions", "messages") to the base URL as a relative
    // URL, so the base must end with '/' or its last segment (`/v1`) would be replaced.
    let mut base = attempt.endpoint.url.clone();
    if !base.ends_with('/') {
        base.push('/');
    }
    Ok(ServiceTarget {
        endpoint: GenaiEndpoint::from_owned(base),
        auth: AuthData::from_single(attempt.secret.expose()),
        model: ModelIden::new(kind, attempt.model.clone()),
    })
}

/// The caller's options plus what relent needs: its headers, and the body of a success.
/// genai puts per-call `extra_headers` over its own, credential included, so a credential
/// among the caller's extra headers is dropped here: the attempt's key must be the one
/// sent. (Credentials in the genai client's default `ChatOptions` cannot be dropped from
/// here; set none there.)
fn attempt_options(attempt: &Attempt, options: &ChatOptions) -> ChatOptions {
    let mut headers: HashMap<String, String> = options
        .extra_headers
        .iter()
        .flatten()
        .filter(|(name, _)| !relent_tokio::is_credential_header(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    for (name, value) in attempt.headers().iter() {
        headers.insert(name.to_string(), value.to_string());
    }
    options
        .clone()
        .with_extra_headers(headers)
        .with_capture_raw_body(true)
}

/// What relent reads from genai's result: the answer's status, headers and body, or the
/// kind of transport failure.
pub fn answer_of(result: &genai::Result<ChatResponse>) -> Result<Answer, TransportError> {
    use genai::webc::Error as Web;
    let error = match result {
        // genai kept neither the status nor the headers of a success (see the top).
        Ok(response) => {
            let body = response
                .captured_raw_body
                .as_ref()
                .map(|v| v.to_string().into_bytes())
                .unwrap_or_default();
            return Ok(json_answer(200, body));
        }
        Err(error) => error,
    };
    if let (Some(status), Some(headers)) = (error.status(), error.headers()) {
        let headers = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = match error {
            genai::Error::HttpError { body, .. } => body.clone(),
            genai::Error::WebModelCall { webc_error, .. }
            | genai::Error::WebAdapterCall { webc_error, .. } => match webc_error {
                Web::ResponseFailedStatus { body, .. } => body.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        return Ok(Answer::new(status.as_u16(), headers, body.into_bytes()));
    }
    match error {
        genai::Error::WebModelCall { webc_error, .. }
        | genai::Error::WebAdapterCall { webc_error, .. } => match webc_error {
            Web::Reqwest(e) => Err(transport_kind(e)),
            // A 2xx that was not JSON, or not valid JSON: the provider answered.
            Web::ResponseFailedNotJson { body, content_type } => Ok(Answer::new(
                200,
                vec![("content-type".into(), content_type.clone())],
                body.clone().into_bytes(),
            )),
            Web::ResponseFailedInvalidJson { body, .. } => {
                Ok(json_answer(200, body.clone().into_bytes()))
            }
            other => Ok(refused_answer(other)),
        },
        // A 2xx whose JSON genai could not turn into a ChatResponse.
        genai::Error::ChatResponseGeneration { response_body, .. } => {
            Ok(json_answer(200, response_body.to_string().into_bytes()))
        }
        // Everything else happened before a request went out.
        other => Ok(refused_answer(other)),
    }
}

fn json_answer(status: u16, body: Vec<u8>) -> Answer {
    let headers = vec![("content-type".into(), "application/json".into())];
    Answer::new(status, headers, body)
}

/// The 400 that stands for "refused before sending" (see the top). Its text is genai's
/// message, which names the model, never the key.
fn refused_answer(error: &dyn std::fmt::Display) -> Answer {
    let body = serde_json::json!({"error": {
        "type": "invalid_request_error",
        "message": format!("not sent: {error}"),
    }});
    json_answer(400, body.to_string().into_bytes())
}

/// relent's kind of a reqwest failure below HTTP.
fn transport_kind(error: &reqwest::Error) -> TransportError {
    if error.is_timeout() {
        return TransportError::Timeout;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return TransportError::ConnectRefused,
                std::io::ErrorKind::TimedOut => return TransportError::Timeout,
                _ => {}
            }
        }
        cause = current.source();
    }
    if error.is_connect() {
        TransportError::ConnectRefused
    } else {
        TransportError::Reset
    }
}
