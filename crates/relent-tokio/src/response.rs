//! Reading a committed response: [`Completion`] (whole) and [`Streaming`] (chunk by
//! chunk, with the body idle timeout, the call's deadline, cancellation and a scan for
//! server-sent error events).

use crate::drive::{next_chunk, Chunk};
use crate::error::CallError;
use crate::metrics as m;
use crate::secret::Headers;
use crate::shared::{SharedPool, Synced};
use crate::target::Api;
use crate::transport::BodyReader;
use relent::{Action, Event, HttpResponse, KeyRef, Observation, RetryMachine};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// A successful, fully read response. Its `Debug` shows header values through
/// [`Headers`]' redaction and the body's length, not the body.
#[derive(Clone)]
#[non_exhaustive]
pub struct Completion {
    /// Its status.
    pub status: u16,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// Its body, in the shape of the API that answered ([`Completion::api`]).
    pub body: Vec<u8>,
    /// The key that answered (its target is the index in the fallback chain).
    pub via: KeyRef,
    /// The API of the target that answered.
    pub api: Api,
    /// Sends made.
    pub attempts: u32,
    /// The seed of the call's machine (replay it in the simulator).
    pub seed: u64,
}

impl Completion {
    /// The assistant's text, read from an OpenAI-compatible or Anthropic Messages answer
    /// (`None` for another shape or an unreadable body).
    pub fn text(&self) -> Option<String> {
        crate::request::answer_text(self.api, &self.body)
    }
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Headers = self.headers.iter().cloned().collect();
        f.debug_struct("Completion")
            .field("status", &self.status)
            .field("headers", &headers)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("via", &self.via)
            .field("api", &self.api)
            .field("attempts", &self.attempts)
            .field("seed", &self.seed)
            .finish()
    }
}

/// A successful response whose body is still streaming. Once handed over it is committed: a
/// failure later (a broken connection, a body idle for too long, the call's deadline, a
/// server-sent `error` event, a cancel) is reported by [`Streaming::next_chunk`] as
/// [`CallError::Aborted`] with reason `failed_after_commit` (or `cancelled`), never
/// retried behind the caller's back.
pub struct Streaming {
    /// Its status.
    pub status: u16,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// The key that answered.
    pub via: KeyRef,
    /// The API of the target that answered.
    pub api: Api,
    /// Sends made.
    pub attempts: u32,
    /// The seed of the call's machine.
    pub seed: u64,
    pub(crate) first: Option<Vec<u8>>,
    pub(crate) reader: Box<dyn BodyReader>,
    pub(crate) machine: Box<RetryMachine>,
    pub(crate) synced: Synced,
    pub(crate) shared: Arc<SharedPool>,
    pub(crate) epoch: Instant,
    pub(crate) started: Instant,
    pub(crate) idle: Duration,
    pub(crate) cancel: CancellationToken,
    pub(crate) sse: Option<SseScanner>,
    pub(crate) pending_error: Option<Vec<u8>>,
    pub(crate) done: bool,
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("status", &self.status)
            .field("via", &self.via)
            .field("api", &self.api)
            .field("attempts", &self.attempts)
            .field("seed", &self.seed)
            .finish()
    }
}

impl Streaming {
    /// The next chunk of the body, `Ok(None)` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        if self.done {
            return Ok(None);
        }
        if let Some(data) = self.pending_error.take() {
            return Err(self.fail(Observation::Http(HttpResponse {
                status: sse_status(&data),
                headers: &[],
                body: &data,
            })));
        }
        let chunk = match self.first.take() {
            Some(first) => Chunk::Data(first),
            None => {
                let deadline =
                    self.epoch + Duration::from_millis(self.machine.deadline().0.min(u64::MAX / 4));
                next_chunk(self.reader.as_mut(), self.idle, deadline, &self.cancel).await
            }
        };
        match chunk {
            Chunk::Data(chunk) => {
                let Some(scanner) = self.sse.as_mut() else {
                    return Ok(Some(chunk));
                };
                match scanner.feed(&chunk) {
                    None => Ok(Some(chunk)),
                    Some((0, data)) => Err(self.fail(Observation::Http(HttpResponse {
                        status: sse_status(&data),
                        headers: &[],
                        body: &data,
                    }))),
                    // Hand over what came before the error event; report it next time.
                    Some((before, data)) => {
                        self.pending_error = Some(data);
                        Ok(Some(chunk[..before.min(chunk.len())].to_vec()))
                    }
                }
            }
            Chunk::End => {
                self.done = true;
                let now = self.now();
                let _ = self.machine.handle(now, Event::StreamEnded);
                self.shared.sync(&mut self.machine, &mut self.synced, now);
                m::call_ended("success", self.started.elapsed().as_secs_f64());
                Ok(None)
            }
            Chunk::Failed(kind) => Err(self.fail(Observation::Transport(kind))),
            Chunk::Cancelled => {
                self.done = true;
                let now = self.now();
                let _ = self.machine.cancel(now);
                Err(self.aborted())
            }
        }
    }

    fn now(&self) -> relent::Time {
        relent::Time(self.epoch.elapsed().as_millis() as u64)
    }

    fn fail(&mut self, observation: Observation<'_>) -> CallError {
        self.done = true;
        let now = self.now();
        let _ = self.machine.handle(now, Event::StreamFailed(observation));
        self.aborted()
    }

    fn aborted(&mut self) -> CallError {
        let now = self.now();
        self.shared.sync(&mut self.machine, &mut self.synced, now);
        while let Some(action) = self.machine.poll_action() {
            if let Action::Abort(abort) = action {
                warn!(reason = %abort.reason, message = %abort.message, "relent: stream ended after commit");
                m::abort(&abort);
                m::call_ended(abort.reason.name(), self.started.elapsed().as_secs_f64());
                return CallError::Aborted(abort);
            }
        }
        CallError::Internal("a failed stream without an abort".into())
    }
}

/// The status a server-sent error event stands for, so the classifier reads it as the
/// provider's own HTTP error would be read.
fn sse_status(data: &[u8]) -> u16 {
    let value: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
    let error = value
        .get("error")
        .or_else(|| value.get("response").and_then(|r| r.get("error")))
        .unwrap_or(&value);
    let kind = error
        .get("type")
        .or_else(|| error.get("code"))
        .and_then(|v| v.as_str())
        .unwrap_or("");
    match kind {
        "overloaded_error" => 529,
        "rate_limit_error" | "rate_limit_exceeded" | "insufficient_quota" => 429,
        "authentication_error" | "invalid_api_key" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "invalid_request_error" | "context_length_exceeded" => 400,
        _ => error
            .get("code")
            .and_then(|c| c.as_u64())
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (400..600).contains(c))
            .unwrap_or(500),
    }
}

/// Finds error events in a server-sent event stream: an `event: error` or `event:
/// response.failed`, or a `data:` whose JSON is `{"type":"error",…}`, has an `error` object,
/// or is a response whose `error` is an object (OpenAI's Responses API:
/// `{"type":"response.failed","response":{…,"error":{…}}}`). Events may span chunks.
#[derive(Default)]
pub(crate) struct SseScanner {
    /// The bytes of the event not yet complete.
    pending: Vec<u8>,
    /// The stream offset of `pending[0]`.
    base: u64,
    /// Bytes seen so far.
    seen: u64,
}

/// An event larger than this is not scanned (its bytes are still handed over).
const SSE_EVENT_LIMIT: usize = 1 << 20;

impl SseScanner {
    /// Feeds a chunk. On an error event, returns how many bytes of this chunk precede it
    /// and the event's data.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Option<(usize, Vec<u8>)> {
        let chunk_start = self.seen;
        self.seen += chunk.len() as u64;
        self.pending.extend_from_slice(chunk);
        loop {
            let Some((end, sep)) = boundary(&self.pending) else {
                if self.pending.len() > SSE_EVENT_LIMIT {
                    self.base += self.pending.len() as u64;
                    self.pending.clear();
                }
                return None;
            };
            if let Some(data) = error_event(&self.pending[..end]) {
                let before = self.base.saturating_sub(chunk_start) as usize;
                return Some((before, data));
            }
            self.pending.drain(..end + sep);
            self.base += (end + sep) as u64;
        }
    }
}

/// The end of the first complete event and the length of its separator.
fn boundary(bytes: &[u8]) -> Option<(usize, usize)> {
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn error_event(event: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(event);
    let mut is_error = false;
    let mut data = String::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(name) = line.strip_prefix("event:") {
            is_error |= matches!(name.trim(), "error" | "response.failed");
        } else if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    if !is_error {
        let value: serde_json::Value = serde_json::from_str(&data).ok()?;
        is_error = value.get("type").and_then(|t| t.as_str()) == Some("error")
            || value.get("error").is_some_and(|e| e.is_object())
            || value
                .get("response")
                .and_then(|r| r.get("error"))
                .is_some_and(|e| e.is_object());
    }
    is_error.then(|| data.into_bytes())
}

/// Whether a response's headers announce server-sent events.
pub(crate) fn is_event_stream(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("content-type")
            && v.to_ascii_lowercase().contains("text/event-stream")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_event_split_across_chunks_is_found_after_the_data_before_it() {
        let mut s = SseScanner::default();
        assert!(s
            .feed(b"data: {\"type\":\"content_block_delta\"}\n\n")
            .is_none());
        assert!(s.feed(b"event: message\ndata: {}\n\nevent: err").is_none());
        let (before, data) = s
            .feed(b"or\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n")
            .unwrap();
        assert_eq!(before, 0);
        assert_eq!(sse_status(&data), 529);
        let mut s = SseScanner::default();
        let (before, _) = s
            .feed(b"data: {\"x\":1}\n\ndata: {\"error\":{\"message\":\"boom\"}}\n\n")
            .unwrap();
        assert_eq!(before, 15);
    }

    #[test]
    fn a_failed_response_of_the_responses_api_is_an_error_event() {
        let mut s = SseScanner::default();
        let created = b"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"error\":null}}\n\n";
        assert!(s.feed(created).is_none());
        let failed = b"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"r\",\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\"}}}\n\n";
        let (before, data) = s.feed(failed).unwrap();
        assert_eq!(before, 0);
        assert_eq!(sse_status(&data), 429);
        // The same event without its name is found by its data.
        let mut s = SseScanner::default();
        let unnamed = b"data: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}\n\n";
        let (_, data) = s.feed(unnamed).unwrap();
        assert_eq!(sse_status(&data), 500);
        // A completed response is no error.
        let mut s = SseScanner::default();
        let done = b"data: {\"type\":\"response.completed\",\"response\":{\"error\":null}}\n\n";
        assert!(s.feed(done).is_none());
    }
}
