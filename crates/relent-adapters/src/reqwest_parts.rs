//! What the two reqwest-based seams (async-openai, reqwest-middleware) share: moving a
//! request to the attempt's target, reading the answer for the loop, and handing a
//! committed response back as a `reqwest::Response`.

use crate::body::{chunks, transport_kind};
use relent_tokio::{Attempt, AttemptResult, BodyReader, NextChunk};
use relent_tokio::{RetryState, Streaming};

/// Moves `request` to `attempt`'s target: the URL under the target's base, the model in a
/// JSON body, the client's credentials out, relent's headers and the key's credential in.
/// The error quotes no secret.
pub(crate) fn retarget(request: &mut reqwest::Request, attempt: &Attempt) -> Result<(), String> {
    if let Some(bytes) = request.body().and_then(reqwest::Body::as_bytes) {
        if let std::borrow::Cow::Owned(shaped) = attempt.shape_body(bytes) {
            *request.body_mut() = Some(reqwest::Body::from(shaped));
        }
    }
    let mut url = attempt.rebase(request.url().as_str())?;
    let mut added = attempt.headers().clone();
    let body = request
        .body()
        .and_then(reqwest::Body::as_bytes)
        .unwrap_or_default();
    attempt.authorize(request.method().as_str(), &mut url, &mut added, body)?;
    *request.url_mut() = reqwest::Url::parse(&url)
        .map_err(|e| format!("cannot parse URL {}: {e}", relent_tokio::redact_url(&url)))?;
    crate::headers::replace_credentials(request.headers_mut(), &added)?;
    Ok(())
}

/// The loop's view of a reqwest answer.
pub(crate) fn attempt_result(result: Result<reqwest::Response, reqwest::Error>) -> AttemptResult {
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect();
            AttemptResult::Response {
                status,
                headers,
                body: Box::new(ReqwestBody(response)),
            }
        }
        Err(error) => AttemptResult::Failed(reqwest_kind(&error)),
    }
}

/// The transport error kind of a reqwest error.
pub(crate) fn reqwest_kind(error: &reqwest::Error) -> relent::TransportError {
    if error.is_timeout() {
        return relent::TransportError::Timeout;
    }
    transport_kind(error)
}

struct ReqwestBody(reqwest::Response);

impl BodyReader for ReqwestBody {
    fn next_chunk(&mut self) -> NextChunk<'_> {
        Box::pin(async move {
            match self.0.chunk().await {
                Ok(chunk) => Ok(chunk.map(|b| b.to_vec())),
                Err(e) => Err(reqwest_kind(&e)),
            }
        })
    }
}

/// A committed response as a `reqwest::Response` whose body streams through relent. The
/// length headers go: the body is relent's stream now.
pub(crate) fn into_response(streaming: Streaming, state: RetryState) -> reqwest::Response {
    let status = http::StatusCode::from_u16(streaming.status).unwrap_or(http::StatusCode::OK);
    let mut headers = http::HeaderMap::new();
    for (name, value) in &streaming.headers {
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let mut response = http::Response::new(reqwest::Body::wrap_stream(chunks(streaming, state)));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    reqwest::Response::from(response)
}
