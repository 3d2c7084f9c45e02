//! The drive loop: one for every adapter.
//!
//! An adapter says only how to send one attempt ([`Adapter::send_attempt`], which returns
//! once the status and headers are in, with a [`BodyReader`] for the rest). Everything
//! else is here: the machine's actions in order, the attempt timeout up to the headers,
//! the body idle timeout and the call's deadline after them, reading what classification
//! needs, cancellation, sharing what the call learns with every other call of the client,
//! `tracing`, progress and metrics.

use crate::error::CallError;
use crate::metrics as m;
use crate::shared::{SharedPool, Synced};
use crate::transport::{AttemptResult, BodyReader};
use relent::machine::SleepReason;
use relent::{
    Action, HttpResponse, KeyRef, Observation, RetryMachine, State, Time, TransportError,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The most of an error body read for classification.
const ERROR_BODY_LIMIT: usize = relent::classify::BODY_SCAN_LIMIT;

/// What the driver reports as a call progresses (also sent as `tracing` events).
#[derive(Clone, Debug)]
pub struct Progress {
    /// Milliseconds since the client's epoch (the same clock for every call of a client).
    pub at: Time,
    /// The machine's decision.
    pub action: Action,
    /// The label of the key the decision is about, if any.
    pub key_label: Option<String>,
}

pub(crate) type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How to send one attempt: all an adapter (HTTP today; others later) provides.
pub(crate) trait Adapter: Sync {
    /// Sends the attempt the machine asked for and returns once the status and headers are
    /// in (or it failed). [`AttemptResult::Invalid`] ends the call as a configuration error.
    fn send_attempt(&self, send: &relent::Send) -> impl Future<Output = AttemptResult> + Send;
}

/// Whether a success is handed over whole or at its first chunk.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Buffered,
    Streaming,
}

/// The clock and the limits of one call.
pub(crate) struct Call<'a> {
    pub shared: &'a Arc<SharedPool>,
    pub epoch: Instant,
    pub cancel: &'a CancellationToken,
    pub mode: Mode,
    pub idle: Duration,
    pub progress: Option<&'a ProgressFn>,
}

impl Call<'_> {
    pub(crate) fn now(&self) -> Time {
        Time(self.epoch.elapsed().as_millis() as u64)
    }

    pub(crate) fn at(&self, t: Time) -> Instant {
        self.epoch + Duration::from_millis(t.0.min(u64::MAX / 4))
    }
}

/// A success handed over: the response and the rest of its body.
pub(crate) struct Committed {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub via: KeyRef,
    pub attempts: u32,
    pub first: Vec<u8>,
    pub reader: Box<dyn BodyReader>,
}

/// A response being classified.
struct Received {
    status: u16,
    headers: Vec<(String, String)>,
    prefix: Vec<u8>,
    reader: Box<dyn BodyReader>,
}

/// Reads the next chunk, bounded by the idle timeout, the call's deadline and `cancel`.
pub(crate) async fn next_chunk(
    reader: &mut dyn BodyReader,
    idle: Duration,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Chunk {
    if cancel.is_cancelled() {
        return Chunk::Cancelled;
    }
    let now = Instant::now();
    if deadline <= now {
        return Chunk::Failed(TransportError::Timeout);
    }
    let until = (now + idle).min(deadline);
    // A cancellation and a deadline already passed end the read before any chunk, even
    // one that is already in (checked above). Then the reader is polled first: a chunk that
    // is already in is taken without arming the idle timer, because arming a timer from a
    // thread that is not the runtime's driver wakes the driver (an extra system call and
    // context switch per chunk).
    tokio::select! {
        biased;
        chunk = reader.next_chunk() => match chunk {
            Ok(Some(bytes)) => Chunk::Data(bytes),
            Ok(None) => Chunk::End,
            Err(kind) => Chunk::Failed(kind),
        },
        _ = tokio::time::sleep_until(until) => Chunk::Failed(TransportError::Timeout),
        _ = cancel.cancelled() => Chunk::Cancelled,
    }
}

pub(crate) enum Chunk {
    Data(Vec<u8>),
    End,
    Failed(TransportError),
    Cancelled,
}

/// Runs `machine` (started here) until it succeeds or gives up, sending with `adapter`.
/// Returns the committed response; the machine is left in `Committed`.
pub(crate) async fn drive<A: Adapter>(
    adapter: &A,
    call: &Call<'_>,
    machine: &mut RetryMachine,
    synced: &mut Synced,
) -> Result<Committed, CallError> {
    let mut version = call.shared.subscribe();
    version.mark_unchanged();
    let deadline_of = |machine: &RetryMachine| call.at(machine.deadline());
    machine
        .start(call.now())
        .map_err(|e| CallError::Internal(e.to_string()))?;
    let mut last: Option<Received> = None;
    loop {
        call.shared.sync(machine, synced, call.now());
        let Some(action) = machine.poll_action() else {
            let State::Sleeping { until, .. } = machine.state() else {
                return Err(CallError::Internal(format!(
                    "the machine waits in state {} with nothing to do",
                    machine.state().name()
                )));
            };
            tokio::select! {
                _ = tokio::time::sleep_until(call.at(until)) => {
                    call.shared.sync(machine, synced, call.now());
                    let _ = machine.handle_timeout(call.now().max(until));
                }
                // Another call learned something: the sync at the top of the loop feeds
                // it in (a key revoked elsewhere may end this sleep at once).
                _ = version.changed() => {}
                _ = call.cancel.cancelled() => { let _ = machine.cancel(call.now()); }
            }
            continue;
        };
        report(call, machine, &action);
        match action {
            Action::Send(send) => {
                let attempt = adapter.send_attempt(&send);
                tokio::pin!(attempt);
                // The attempt timeout runs until the status and headers are in. The attempt
                // is polled first, so the request is on its way before the timer is armed
                // (arming it wakes the runtime's driver; the request does too, and the two
                // wake-ups then come together).
                let headers_in = tokio::select! {
                    biased;
                    result = &mut attempt => Some(result),
                    _ = tokio::time::sleep_until(call.at(send.timeout_at)) => None,
                    _ = call.cancel.cancelled() => {
                        let _ = machine.cancel(call.now());
                        continue;
                    }
                };
                let observation = match headers_in {
                    None => {
                        call.shared.sync(machine, synced, call.now());
                        let _ = machine.handle_timeout(call.now().max(send.timeout_at));
                        continue;
                    }
                    Some(AttemptResult::Invalid(message)) => {
                        return Err(CallError::Config(message));
                    }
                    Some(AttemptResult::Failed(kind)) => Err(kind),
                    Some(AttemptResult::Response {
                        status,
                        headers,
                        body,
                    }) => {
                        // After the headers: the body idle timeout and the call's deadline.
                        match read_prefix(call, status, body, deadline_of(machine)).await {
                            Prefix::Cancelled => {
                                let _ = machine.cancel(call.now());
                                continue;
                            }
                            Prefix::Failed(kind) => Err(kind),
                            Prefix::Read(prefix, reader) => Ok(Received {
                                status,
                                headers,
                                prefix,
                                reader,
                            }),
                        }
                    }
                };
                // Sync right before the decision, so it knows what other calls learned.
                call.shared.sync(machine, synced, call.now());
                match observation {
                    Err(kind) => {
                        let _ = machine.handle_response(call.now(), Observation::Transport(kind));
                    }
                    Ok(received) => {
                        let pairs: Vec<(&str, &str)> = received
                            .headers
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        let _ = machine.handle_response(
                            call.now(),
                            Observation::Http(HttpResponse {
                                status: received.status,
                                headers: &pairs,
                                body: &received.prefix,
                            }),
                        );
                        drop(pairs);
                        last = Some(received);
                    }
                }
            }
            Action::Succeeded { via, attempts } => {
                let Some(received) = last.take() else {
                    return Err(CallError::Internal("a success without a response".into()));
                };
                return Ok(Committed {
                    status: received.status,
                    headers: received.headers,
                    via,
                    attempts,
                    first: received.prefix,
                    reader: received.reader,
                });
            }
            Action::Abort(abort) => return Err(CallError::Aborted(abort)),
            Action::Sleep { .. } | Action::Rotate { .. } => {}
        }
    }
}

enum Prefix {
    Read(Vec<u8>, Box<dyn BodyReader>),
    Failed(TransportError),
    Cancelled,
}

/// Reads what classification needs: for an error, up to the scan bound; for a success,
/// the first chunk (streaming) or everything (buffered).
async fn read_prefix(
    call: &Call<'_>,
    status: u16,
    mut body: Box<dyn BodyReader>,
    deadline: Instant,
) -> Prefix {
    let success = (200..300).contains(&status);
    let mut prefix = Vec::new();
    loop {
        match next_chunk(body.as_mut(), call.idle, deadline, call.cancel).await {
            Chunk::Data(chunk) => {
                prefix.extend_from_slice(&chunk);
                let enough = if success {
                    call.mode == Mode::Streaming
                } else {
                    prefix.len() >= ERROR_BODY_LIMIT
                };
                if enough {
                    break;
                }
            }
            Chunk::End => break,
            // A body that breaks before it was handed over is not committed: the machine
            // decides whether to try again.
            Chunk::Failed(kind) if success || prefix.is_empty() => return Prefix::Failed(kind),
            // An error body cut short still says what went wrong.
            Chunk::Failed(_) => break,
            Chunk::Cancelled => return Prefix::Cancelled,
        }
    }
    Prefix::Read(prefix, body)
}

/// Reports a decision to `tracing`, the progress callback and the metrics.
fn report(call: &Call<'_>, machine: &RetryMachine, action: &Action) {
    let now = call.now();
    let pool = machine.pool();
    let key = match action {
        Action::Send(s) => Some(s.key),
        Action::Rotate { to, .. } => Some(to.key),
        Action::Succeeded { via, .. } => Some(via.key),
        _ => None,
    };
    let key_label = key.map(|k| pool.label(k));
    let label = key_label.as_deref().unwrap_or("-");
    match action {
        Action::Send(s) => {
            m::send(
                pool,
                KeyRef {
                    target: s.target,
                    key: s.key,
                },
                s.attempt,
            );
            debug!(
                attempt = s.attempt,
                target = s.target,
                key = label,
                fresh = s.fresh_connection,
                "relent: send"
            )
        }
        Action::Sleep { until, reason } => {
            m::sleep(reason);
            let wait_ms = until.0.saturating_sub(now.0);
            let why = match reason {
                SleepReason::Backoff { after } => format!("backoff after {after}"),
                SleepReason::ServerHint { after, source } => {
                    format!("server asked to wait ({source:?}) after {after}")
                }
                SleepReason::AllKeysCooling => "every key is cooling down".to_string(),
                SleepReason::RetryBudget { after } => {
                    format!("the client's retry budget refills, after {after}")
                }
                other => other.name().to_string(),
            };
            info!(wait_ms, why = %why, "relent: waiting");
        }
        Action::Rotate { from, to, why } => {
            m::rotation(pool, *to, why.name());
            let from = from.map_or_else(|| "none".to_string(), |f| f.key.to_string());
            info!(from = %from, to = label, to_target = to.target, why = %why, "relent: rotating")
        }
        Action::Succeeded { attempts, .. } => debug!(attempts, key = label, "relent: success"),
        Action::Abort(abort) => {
            warn!(reason = %abort.reason, message = %abort.message, "relent: giving up")
        }
    }
    if let Some(progress) = call.progress {
        progress(&Progress {
            at: now,
            action: action.clone(),
            key_label: key_label.as_deref().map(str::to_string),
        });
    }
}
