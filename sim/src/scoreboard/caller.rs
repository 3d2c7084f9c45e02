//! One logical call as seen by a retry policy: the common face of relent and every baseline,
//! so the same simulated server can play against each.

use crate::respond::{Reply, WALL_EPOCH_UNIX_MS};
use relent::classify::hints;
use relent::{Action, KeyId, Overload, Policy, RetryMachine, Target, Time, TransportError};
use std::cell::RefCell;
use std::rc::Rc;

/// What a policy wants next.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send to `target` with `key`.
    Send {
        /// Index in the schedule's targets.
        target: usize,
        /// The key.
        key: KeyId,
    },
    /// Wait until this time, then call [`Caller::on_wake`].
    Wait(Time),
    /// The call ended: `true` for success.
    Done(bool),
}

/// A retry policy driving one logical call.
pub trait Caller {
    /// Starts the call.
    fn start(&mut self, now: Time) -> Step;
    /// The last send's reply arrived; [`Reply::Hang`] means the attempt timed out.
    fn on_reply(&mut self, now: Time, reply: &Reply) -> Step;
    /// A wait ended.
    fn on_wake(&mut self, now: Time) -> Step;
    /// Begins another call on the same client, keeping what the client keeps between calls
    /// (a key pool, cooldowns). `false` when it keeps nothing: the caller then makes a fresh
    /// client.
    fn next_call(&mut self) -> bool {
        false
    }
    /// How long an attempt may take.
    fn attempt_timeout_ms(&self) -> u64 {
        super::play::BASELINE_TIMEOUT_MS
    }
}

/// relent's machine behind the [`Caller`] face.
pub struct Relent {
    machine: RetryMachine,
    timeout_at: Time,
    seed: u64,
    calls: u64,
    /// A client's retry budget and breakers shared with other callers, and the state this
    /// call last took from it (issue #14).
    shared: Option<(Rc<RefCell<Overload>>, Overload)>,
}

/// One client's overload state (retry budget and breakers), shared by callers that stand
/// for its calls, as a driver shares it (see [`Relent::sharing`]).
pub type SharedOverload = Rc<RefCell<Overload>>;

impl Relent {
    /// A machine over `targets` with `policy` (the world's own, the one the oracle holds).
    pub fn new(policy: Policy, targets: Vec<Target>, seed: u64) -> Self {
        let machine = RetryMachine::new(policy, targets, seed)
            .expect("valid targets")
            .wall_clock_epoch(WALL_EPOCH_UNIX_MS);
        Relent {
            machine,
            timeout_at: Time::ZERO,
            seed,
            calls: 0,
            shared: None,
        }
    }

    /// A call of a client whose retry budget and breakers live in `shared`: the machine
    /// takes the client's state before every input and gives back what it did after it.
    pub fn sharing(
        policy: Policy,
        targets: Vec<Target>,
        seed: u64,
        shared: SharedOverload,
    ) -> Self {
        let mut relent = Relent::new(policy, targets, seed);
        let synced = shared.borrow().clone();
        relent.shared = Some((shared, synced));
        relent
    }

    fn take_shared(&mut self) {
        if let Some((shared, synced)) = &mut self.shared {
            synced.clone_from(&shared.borrow());
            self.machine.sync_overload(synced);
        }
    }

    fn give_back(&mut self) {
        if let Some((shared, synced)) = &mut self.shared {
            shared
                .borrow_mut()
                .merge_call(synced, self.machine.overload());
        }
    }

    fn next(&mut self) -> Step {
        self.give_back();
        while let Some(action) = self.machine.poll_action() {
            match action {
                Action::Send(s) => {
                    self.timeout_at = s.timeout_at;
                    return Step::Send {
                        target: s.target,
                        key: s.key,
                    };
                }
                Action::Sleep { until, .. } => return Step::Wait(until),
                Action::Succeeded { .. } => return Step::Done(true),
                Action::Abort(_) => return Step::Done(false),
                Action::Rotate { .. } => {}
            }
        }
        Step::Done(false)
    }
}

impl Caller for Relent {
    fn start(&mut self, now: Time) -> Step {
        self.take_shared();
        let _ = self.machine.start(now);
        self.next()
    }

    fn on_reply(&mut self, now: Time, reply: &Reply) -> Step {
        self.take_shared();
        let result = match reply {
            Reply::Hang => self.machine.handle_timeout(now.max(self.timeout_at)),
            _ => reply
                .observe(|seen| self.machine.handle_response(now, seen))
                .unwrap_or(Ok(())),
        };
        if result.is_err() {
            return Step::Done(false);
        }
        self.next()
    }

    fn on_wake(&mut self, now: Time) -> Step {
        self.take_shared();
        if self.machine.handle_timeout(now).is_err() {
            return Step::Done(false);
        }
        self.next()
    }

    fn attempt_timeout_ms(&self) -> u64 {
        self.machine.policy().attempt_timeout_ms
    }

    fn next_call(&mut self) -> bool {
        // The pool (revoked, exhausted and cooling keys) carries over, as a driver keeps it.
        self.calls += 1;
        // The policy is the one the running machine was built with, so it is valid. The
        // retry budget and the breakers carry over too (issue #14).
        match RetryMachine::with_pool(
            self.machine.policy().clone(),
            self.machine.pool().clone(),
            self.seed.wrapping_add(self.calls),
        ) {
            Ok(machine) => {
                self.machine = machine
                    .with_overload(self.machine.overload().clone())
                    .wall_clock_epoch(WALL_EPOCH_UNIX_MS);
                true
            }
            Err(_) => false,
        }
    }
}

/// What a baseline can read from a reply: the status (0 for a transport failure or a
/// timeout) and headers by name.
pub struct Seen<'a> {
    /// HTTP status; 0 when the transport failed or the attempt timed out.
    pub status: u16,
    /// Whether the attempt timed out or the connection failed.
    pub transport: Option<TransportError>,
    headers: &'a [(String, String)],
    /// The body as text.
    pub body: std::borrow::Cow<'a, str>,
}

impl<'a> Seen<'a> {
    /// Reads a reply the way a plain HTTP client sees it.
    pub fn of(reply: &'a Reply) -> Seen<'a> {
        match reply {
            Reply::Http {
                status,
                headers,
                body,
            } => Seen {
                status: *status,
                transport: None,
                headers,
                body: String::from_utf8_lossy(body),
            },
            // A stream that fails midway began with a success, which every client hands over.
            Reply::StreamThenFail => Seen {
                status: 200,
                transport: None,
                headers: &[],
                body: "".into(),
            },
            Reply::Transport(kind) => Seen {
                status: 0,
                transport: Some(*kind),
                headers: &[],
                body: "".into(),
            },
            Reply::Hang => Seen {
                status: 0,
                transport: Some(TransportError::Timeout),
                headers: &[],
                body: "".into(),
            },
        }
    }

    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The same reply read with another status (for clients that remap errors).
    pub fn with_status(self, status: u16) -> Seen<'a> {
        Seen { status, ..self }
    }

    /// A 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The OpenAI/Anthropic SDK's reading of the server's wait, in ms: `retry-after-ms`,
    /// then `retry-after` as seconds, then as an HTTP-date against the caller's clock.
    pub fn sdk_retry_after_ms(&self, now: Time) -> Option<u64> {
        if let Some(ms) = self
            .header("retry-after-ms")
            .and_then(hints::retry_after_ms)
        {
            return Some(ms);
        }
        let value = self.header("retry-after")?;
        hints::retry_after_seconds(value).or_else(|| {
            hints::http_date_unix_ms(value).map(|at| at.saturating_sub(WALL_EPOCH_UNIX_MS + now.0))
        })
    }
}

/// A uniform float in [0, 1) from a ChaCha RNG.
pub fn unit(rng: &mut rand_chacha::ChaCha8Rng) -> f64 {
    use rand_chacha::rand_core::RngCore;
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}
