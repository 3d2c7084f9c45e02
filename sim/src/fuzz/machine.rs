//! The `machine` target: arbitrary event sequences, including events that do not fit the
//! machine's state, into one machine over an arbitrary pool. Every accepted event is checked
//! by the simulator's one checker ([`crate::invariants::Checker`]), whose ground truth here
//! is the reason each canned response is known to mean; a refused event must change nothing.

use crate::invariants::{Checker, ClientModel, Input, Truth};
use arbitrary::{Arbitrary, Unstructured};
use relent::classify::{HttpResponse, Observation, Provider, Reason, TransportError};
use relent::{Event, KeyId, KeySpec, Policy, PoolChange, RetryMachine, State, Target, Time};

/// One input to the machine, including ones that do not fit its state.
#[derive(Arbitrary, Clone, Debug)]
pub enum Op {
    /// A canned response (index into [`RESPONSES`]).
    Respond(u8),
    /// A transport error.
    Transport(u8),
    /// A timer, now.
    Timeout,
    /// A timer at the time the machine asked for.
    TimeoutAtDue,
    /// Time passes.
    Advance(u32),
    /// Time goes backwards.
    Backwards(u16),
    /// A key is added to a target.
    Add(u8),
    /// A key is removed.
    Remove(u8),
    /// A key is restored.
    Restore(u8),
    /// A key is marked bad, for a while or for good.
    MarkBad(u8, Option<u32>),
    /// A stream ends.
    StreamEnded,
    /// A stream fails.
    StreamFailed,
    /// The caller cancels.
    Cancel,
}

/// Canned responses, each with the reason it must classify as.
pub const RESPONSES: &[(u16, &str, &str, Reason)] = &[
    (200, "", r#"{"choices":[]}"#, Reason::Success),
    (
        401,
        "",
        r#"{"error":{"message":"Incorrect API key provided: sk-abc123456789","code":"invalid_api_key"}}"#,
        Reason::KeyRejected,
    ),
    (
        429,
        "",
        r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota"}}"#,
        Reason::QuotaExhausted,
    ),
    (
        429,
        "7",
        r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
        Reason::RateLimited,
    ),
    (
        429,
        "",
        r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
        Reason::RateLimited,
    ),
    (
        429,
        "400",
        r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
        Reason::RateLimited,
    ),
    (
        529,
        "",
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        Reason::Overloaded,
    ),
    (
        500,
        "",
        // A secret canary (see `crate::canary`) echoed by a proxy: it must not reach the
        // trace, the abort message or the machine's `Debug` output.
        r#"{"error":{"message":"server error (api_key=sk-proj-Qm7vT2xLp9RkW4nZc8HsJd3FbYg6NtUe1AaVoXi5MqSr0KwPlEuGh)"}}"#,
        Reason::ServerError,
    ),
    (
        500,
        "2",
        r#"{"error":{"message":"server error"}}"#,
        Reason::ServerError,
    ),
    (
        403,
        "",
        r#"{"error":{"message":"Country, region, or territory not supported"}}"#,
        Reason::PermissionDenied,
    ),
    (
        400,
        "",
        r#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#,
        Reason::ContextOverflow,
    ),
    (
        400,
        "",
        r#"{"error":{"message":"messages is required"}}"#,
        Reason::MalformedRequest,
    ),
    (
        404,
        "",
        r#"{"error":{"message":"The model does not exist","code":"model_not_found"}}"#,
        Reason::ModelNotFound,
    ),
];

const TRANSPORT: [(TransportError, Reason); 4] = [
    (TransportError::Timeout, Reason::Timeout),
    (TransportError::Reset, Reason::ConnectionFailed),
    (TransportError::TlsCertificate, Reason::TlsCertificate),
    (TransportError::Dns, Reason::ConnectionFailed),
];

/// Arbitrary bytes as a pool shape, a seed and a sequence of operations.
pub fn fuzz_machine(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let n_targets = u.int_in_range(1..=3u32).unwrap_or(1);
    let keys: Vec<u32> = (0..n_targets)
        .map(|_| u.int_in_range(1..=3u32).unwrap_or(1))
        .collect();
    let seed: u64 = u.arbitrary().unwrap_or(0);
    let ops: Vec<Op> = u.arbitrary().unwrap_or_default();
    if let Err(broken) = drive_machine(&keys, seed, &ops) {
        panic!("{broken}\nkeys {keys:?} seed {seed} ops {ops:?}");
    }
}

fn targets(keys_per_target: &[u32]) -> Vec<Target> {
    let mut next = 0;
    keys_per_target
        .iter()
        .enumerate()
        .map(|(t, n)| {
            let keys = (0..*n)
                .map(|_| {
                    next += 1;
                    KeySpec::new(next, format!("key-{next}"))
                })
                .collect();
            Target {
                provider: Provider::Openai,
                model: format!("model-{t}"),
                context_tokens: Some(8_000 * (t as u32 + 1)),
                keys,
            }
        })
        .collect()
}

/// The ground truth of canned response `i` answered at `now`: its known reason, and the
/// reset its `retry-after` announces (for a rate limit; a quota's is not authoritative).
fn truth_of(i: usize, now: Time) -> Truth {
    let (_, retry_after, _, reason) = RESPONSES[i];
    let reset_at = retry_after
        .parse::<u64>()
        .ok()
        .filter(|_| reason != Reason::QuotaExhausted)
        .map(|secs| now + relent::Millis(secs * 1000));
    // A transient answer's `retry-after` is the wait it states.
    let stated_wait_ms = retry_after
        .parse::<u64>()
        .ok()
        .filter(|_| !matches!(reason, Reason::QuotaExhausted | Reason::RateLimited))
        .map(|secs| secs * 1000);
    Truth {
        reason,
        reset_at,
        says_no_retry: false,
        says_retry: false,
        stated_wait_ms,
        reset_slack_ms: 0,
    }
}

/// Drives a fresh machine through `ops`, checking every accepted event with the
/// simulator's checker and that a refused event changes nothing. Returns the trace as JSON
/// (for determinism checks) or what broke.
pub fn drive_machine(keys: &[u32], seed: u64, ops: &[Op]) -> Result<String, String> {
    let targets = targets(keys);
    let policy = Policy::default();
    let mut checker = Checker::new(&policy, &ClientModel::new(&targets));
    let mut m = RetryMachine::new(policy, targets, seed)
        .map_err(|e| format!("a valid pool was refused: {e}"))?
        .record_trace(true);
    let mut now = Time(0);
    let mut added = 100;
    m.start(now).map_err(|e| format!("start refused: {e}"))?;
    let mut seen = 0;
    let mut feed = |checker: &mut Checker, m: &RetryMachine, input: Input<'_>| {
        let trace = m.trace().unwrap_or(&[]);
        if let Some(entry) = trace.get(seen) {
            checker.step(input, entry, crate::runner::previous_keys(trace, seen));
        }
        seen = trace.len();
    };
    feed(&mut checker, &m, Input::Start);
    for op in ops {
        let before = m.clone();
        // The machine clamps time that goes backwards; the checker sees the clamped time
        // through the trace entry.
        let due = m.next_timeout().is_some_and(|t| t <= now.max(last_at(&m)));
        let awaiting = matches!(m.state(), State::AwaitingResponse { .. });
        let change;
        let (result, input) = match op {
            Op::Respond(i) => {
                let i = *i as usize % RESPONSES.len();
                let (status, retry_after, body, _) = RESPONSES[i];
                let headers: Vec<(&str, &str)> = if retry_after.is_empty() {
                    vec![]
                } else {
                    vec![("retry-after", retry_after)]
                };
                let result = m.handle_response(
                    now,
                    Observation::Http(HttpResponse {
                        status,
                        headers: &headers,
                        body: body.as_bytes(),
                    }),
                );
                (
                    result,
                    Input::Answer(truth_of(i, now.max(last_at(&before)))),
                )
            }
            Op::Transport(k) => {
                let (kind, reason) = TRANSPORT[*k as usize % TRANSPORT.len()];
                let result = m.handle_response(now, Observation::Transport(kind));
                (result, Input::Answer(Truth::of(reason)))
            }
            Op::Timeout | Op::TimeoutAtDue => {
                if matches!(op, Op::TimeoutAtDue) {
                    if let Some(t) = m.next_timeout() {
                        now = now.max(t);
                    }
                }
                let due = due || m.next_timeout().is_some_and(|t| t <= now.max(last_at(&m)));
                let input = match (due, awaiting) {
                    (false, _) => Input::Idle,
                    (true, true) => Input::Answer(Truth::of(Reason::Timeout)),
                    (true, false) => Input::Wake,
                };
                (m.handle_timeout(now), input)
            }
            Op::Advance(ms) => {
                now = Time(now.0 + u64::from(*ms % 200_000));
                continue;
            }
            Op::Backwards(ms) => {
                now = Time(now.0.saturating_sub(u64::from(*ms)));
                continue;
            }
            Op::Add(t) => {
                added += 1;
                change = PoolChange::Added {
                    target: *t as usize % (keys.len() + 1),
                    key: KeySpec::new(added, format!("added-{added}")),
                };
                (
                    m.handle_pool_change(now, change.clone()),
                    Input::Pool(&change),
                )
            }
            Op::Remove(k) => {
                change = PoolChange::Removed {
                    key: KeyId(u32::from(*k % 12)),
                };
                (
                    m.handle_pool_change(now, change.clone()),
                    Input::Pool(&change),
                )
            }
            Op::Restore(k) => {
                change = PoolChange::Restored {
                    key: KeyId(u32::from(*k % 12)),
                };
                (
                    m.handle_pool_change(now, change.clone()),
                    Input::Pool(&change),
                )
            }
            Op::MarkBad(k, until) => {
                change = PoolChange::MarkedBad {
                    key: KeyId(u32::from(*k % 12)),
                    until: until.map(|t| Time(u64::from(t % 300_000))),
                };
                (
                    m.handle_pool_change(now, change.clone()),
                    Input::Pool(&change),
                )
            }
            Op::StreamEnded => (m.handle(now, Event::StreamEnded), Input::StreamEnded),
            Op::StreamFailed => (
                m.handle(
                    now,
                    Event::StreamFailed(Observation::Transport(TransportError::Reset)),
                ),
                Input::StreamFailed,
            ),
            Op::Cancel => (m.cancel(now), Input::Cancel),
        };
        if result.is_err() {
            if before != m {
                return Err(format!("the refused event {op:?} changed the machine"));
            }
            continue;
        }
        feed(&mut checker, &m, input);
        while m.poll_action().is_some() {}
    }
    // Invariant 6: a machine that is not finished is waiting for something.
    if matches!(
        m.state(),
        State::AwaitingResponse { .. } | State::Sleeping { .. }
    ) && m.next_timeout().is_none()
    {
        checker.violation(now, 6, "waiting without a timer");
    }
    let json = serde_json::to_string(m.trace().unwrap_or(&[])).map_err(|e| e.to_string())?;
    checker.scan("the trace's JSON", &json);
    checker.scan("the machine's Debug output", &format!("{m:?}"));
    match checker.violations() {
        [] => Ok(json),
        broken => Err(format!("{broken:?}")),
    }
}

/// The time of the machine's latest step (time never goes back inside it).
fn last_at(m: &RetryMachine) -> Time {
    m.trace().and_then(|t| t.last()).map_or(Time(0), |e| e.at)
}
