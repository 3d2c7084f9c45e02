//! The invariant checker: a reference model of what the machine may and must do, checked
//! after every step. It is the only checker; the simulator's runner and the `machine` fuzz
//! entry both feed it.
//!
//! # Where every expectation comes from
//!
//! The checker never asks the machine what is right. It does not read `deadline()`, the
//! machine's key states, its counters or relent's redactor. It derives expectations from
//! four inputs only, and then compares them with what the machine *did* (its actions, and the
//! key states it reports, which are under test like everything else it says):
//!
//! * **the policy**: the deadline is the call's start plus `deadline_ms`; the attempt, per
//!   target and transient-retry limits, the attempt timeout, the quota cooldown, the
//!   backoff caps and `restart_after_commit` are read from it;
//! * **the world's ground truth** for every answer ([`Truth`]): which fault the world
//!   scripted (so, which reason the answer *is*, whatever the classifier says) and the reset
//!   time an honest server announced;
//! * **the pool changes** fed in (added, removed, restored, marked bad);
//! * **the actions observed so far** (sends, sleeps, rotations, aborts), from which the
//!   checker counts attempts, sends per target and transient retries itself.
//!
//! From these it keeps its own model of every key ([`KeyModel`]): removed, marked bad,
//! blocked until a time it knows for certain (an announced reset, an outside mark, the
//! policy's quota cooldown), possibly cooling until a time it can bound (after a rate limit
//! with no hint the machine picks a backoff no longer than the congestion cap, or the
//! escalated cooldown's floor plus jitter, and no shorter than that floor), rejected how
//! many times, revoked, or excluded for this call.
//!
//! # The catalog
//!
//! Numbers follow the design brief:
//!
//! 1. a rejected key with no usable alternative gets one more send, at once, on a fresh
//!    connection, with no sleep; a second rejection (or a retry the limits forbid) ends the
//!    call `auth_permanent` at once;
//! 2. no send with a removed, revoked, marked-bad or excluded key, or before a reset the
//!    model knows; the one exception is a re-probe of a key the provider rejected at least
//!    `revoked_reprobe_after_ms` ago, when no other key of its target is known to be ready
//!    (known gap: once a re-probe has lifted a key's revocation, the model no longer
//!    checks that key's later revocations, because concurrent calls that lift and re-revoke
//!    one key merge in an order the model does not follow);
//! 3. attempt numbers count every send; no limit is exceeded;
//! 4. no sleep ends at or after the deadline (no send could follow it), no send starts at or
//!    after it, and the call ends no later than the deadline plus one attempt timeout;
//! 5. a target that refused the request (malformed, too long, filtered, unknown model,
//!    certificate, WAF) is never sent to again, and the chain is never climbed back up; a
//!    request a content filter refused is sent nowhere else unless the policy's
//!    `fallback_on_content_filter` allows it;
//! 6. every call ends within the step bound, and a waiting machine always waits for
//!    something (checked by the runner);
//! 7. the same seed gives the same trace (checked by the swarm, in process and across
//!    processes);
//! 8. every abort has a non-empty message that does not contradict itself (a
//!    `deadline_exceeded` whose retry time is before the deadline), and promises no retry
//!    time a day or more away (a clamped server wait, whose end is unknown);
//! 9. no sleep after a rate limit while the current target has a key the model knows is
//!    ready; and after a fault of a key (rejected, rate limited, out of quota, not
//!    entitled), no wait for a key of the target longer than `max_wait_before_fallback_ms`
//!    while a later target could take the call now and the limits and budget allow a send;
//! 10. faults whose row in the brief says "key state unchanged" change no key's state, and a
//!     key that answers with a success is usable after it (unless a pool change removed,
//!     marked or held it while the request was out), while a key marked bad from outside
//!     stays unusable whatever it answers (only a restore lifts the mark);
//! 11. once every fault is over and a key the model knows is alive can be reached, the call
//!     does not give up before its deadline;
//! 12. committed means committed: no send or sleep after a success was handed over, unless
//!     the stream failed and the policy allows a restart; without that policy a failed
//!     stream ends `failed_after_commit` at once;
//! 13. a rotation never consumes the transient-retry budget, and neither does a retry after an
//!     overload (overloads spend the deadline, bounded by the send limits): the checker
//!     counts transient retries from the actions (sleeps, and immediate resends of the same
//!     key after a transient fault) and an `attempts_exhausted` abort is valid only when its
//!     own count, or a send limit, is spent;
//! 14. pool changes act at once: a key that becomes usable on the current target while the
//!     machine sleeps for cooling keys ends the sleep in the same step; a key removed or
//!     marked bad during such a sleep ends it in the same step when no key of the target
//!     could be ready by the sleep's end any more (each key's earliest time from the model:
//!     marks, announced resets, quota cooldowns; a key the model cannot rule out counts as
//!     due), and leaves it alone when a key surely in play is surely free by then (by
//!     `SELECTION_MARGIN_MS` before the sleep's end: the machine holds a reset as the server
//!     states it, which may round apart from the world's clock); and a pool change leaves
//!     alone, with no action at all, a sleep that waits for no key (a backoff after a
//!     transient fault, a wait for an open breaker or for the retry budget) and a sleep
//!     for keys when the key it touches belongs to another target;
//! 15. no secret canary planted by the world appears in a message or code, in any trace,
//!     `Debug` output or JSON (see [`crate::canary`]; the full scan runs on the worlds that
//!     are also checked for determinism);
//! 16. the abort reason matches the failure that ended the call: the failure's own reason
//!     when it alone ends the call; `attempts_exhausted`, `deadline_exceeded`,
//!     `no_usable_key`, `server_said_no_retry`, `cancelled` and `failed_after_commit` only
//!     when the model shows that cause; never `not_retryable` after an answer the server
//!     marked retryable (`x-should-retry: true` on a 400, which the world's truth records:
//!     such an answer is waited out on the same key like a transient fault); after an
//!     answer that says not to retry (`x-should-retry: false`, which the world's truth
//!     records) the call does not wait for the target, sends nothing more to it after a
//!     transient fault, and an abort in that step says `server_said_no_retry` unless no key
//!     is left, a send limit is spent, the deadline has passed, or the breaker or the
//!     budget ended it;
//! 17. across calls of one client: what one call learned (a revocation, a cooldown, an
//!     exhausted quota) binds every call that starts later (the model a call starts from is
//!     the client's, so invariant 2 checks it). Calls' models merge by the world's last
//!     word on a key: of a re-probe's lift and a rejection, the later stands (a re-probe
//!     answered by any other fault only re-arms the re-probe time and revokes nothing),
//!     and a reset or spent quota one call learned still holds after another's lift.
//!     Every send of a call carries the call's one
//!     idempotency key, and no two calls share one (a deduplicating gateway would hand one
//!     call the other's response; checked by the runner);
//! 18. the classifier reads every simulated reply as the fault the world scripted, and a
//!     `Succeeded` follows only a real success;
//! 19. the client's retry budget (modelled in [`crate::overload_model`] from the policy and
//!     the world's answers) never goes below zero: every retry after a provider fault or a
//!     rate limit is paid when sent; a first attempt is never denied, and
//!     `retry_budget_exhausted` ends a call only when the model's budget cannot pay the
//!     retry before the deadline, counting its refill; a wait for the budget happens only
//!     when it cannot pay now, and ends exactly when its refill pays;
//! 20. no send to a target whose breaker the model has open;
//! 21. a half-open breaker admits exactly its probe count: no send beyond it, and
//!     `circuit_open` only while the model has a breaker on the way forward open or its
//!     probes out;
//! 22. a key the machine chooses is the one the policy's selection names, at the moment
//!     the send goes, among the keys the model knows are ready: first in configured order
//!     (priority), first after the key used last (round robin, the cursor kept by the
//!     model and shared across calls as the driver's merge shares it), or used longest ago
//!     (least recently used). Every send is checked, whether it follows the start, an
//!     answer, a pool change or the end of a sleep: a key chosen before a sleep (one an
//!     open breaker or an empty retry budget held back) is chosen again when the sleep
//!     ends. A resend of the key just used is a retry, not a choice;
//! 23. every move to another key is announced: a `Rotate` starts from the key the call last
//!     sent with (none before its first send), names the fault of the call's last answer,
//!     and is followed at once by the send with the key it names; a send with another key
//!     than the last one comes only after such a `Rotate`;
//! 24. after a server error, a dropped connection, a timeout, an unknown fault or an
//!     overload the call falls back only "after a few tries": never while a retry of the
//!     current target is due for sure (every limit, the overload count before fallback, the
//!     budget and the breaker allow it, the server did not say no, and the longest wait it
//!     could take is within `max_wait_before_fallback_ms` and inside the deadline); and
//!     after `overload_attempts_before_fallback` overloads on the current target it does
//!     move on, with no sleep or retry there, when a later target could take the call now
//!     and the limits and the budget allow a send; nor does it wait longer than
//!     `max_wait_before_fallback_ms` after a transient fault while a later target could take
//!     the call now;
//! 25. escalating key cooldowns (`Policy::key_cooldown`): the model counts, per key, the rate
//!     limits with no hint in a row (reset by a success with the key or a restore, merged
//!     across calls as the driver's merge does: the call's count when only it changed it,
//!     the larger when both did). After the n-th, the key is not sent before
//!     `min(base × n, max)` has passed, and the machine reports it held back at least that
//!     long and no longer than the larger of that plus its jitter and the longest
//!     congestion backoff the call may draw (its base doubled once per wait on the target,
//!     capped). After a hinted rate limit the key is held back no longer than the server's
//!     reset (plus the reading's slack and `SELECTION_MARGIN_MS`): a hint is never
//!     lengthened.
//! 26. after a timeout or a dropped connection (the world's truth for the answer), the next
//!     send to the target of the failed send goes on a fresh connection: the pooled one may
//!     be dead (the brief's row "timeout, reset, DNS, connect failure: retry on a fresh
//!     connection");
//! 27. after a context overflow, a move to a later target goes only to one whose context
//!     window the policy's targets state and is larger than the current target's (a
//!     smaller or unknown window would overflow again).
//! 28. after an aggregator's upstream rate limit the call falls back at once (no retry of
//!     the same target, no sleep) when a later target could take it now and the limits and
//!     the budget allow a send (the brief's row: "fallback: yes"; the key is fine and a
//!     retry of the same route meets the same busy upstream).
//! 29. the ejection guard (`Policy::max_ejection_percent`): after a rate limit with no hint
//!     on a key of target t, the model counts the other keys of t (not excluded) that cool
//!     after rate limits or outside marks (surely: inside a cooldown's floor or before a
//!     reset it knows; possibly: before the longest cooldown the machine may draw) and the
//!     keys of t that could take a request (not removed, revoked or exhausted). When a bench
//!     would surely take more than the policy's share of those keys cooling (and at least
//!     one other cools), the key is not benched: the machine reports it usable. When a bench
//!     surely stays within the share, or no other key may cool, it is benched (and
//!     invariant 25 checks how long). A key held back that way draws no escalation; the
//!     call then does not rotate to another key of t (it shares the limit), and it sleeps
//!     on t only when no later target could take the call now (as for invariant 28). A
//!     `deadline_exceeded` after such a limit is judged as after a transient fault (the
//!     backoff decides). Where the model only bounds a key (a cooldown the machine drew, a
//!     possible revocation, an outside mark, a bench too short to tell), both
//!     answers are accepted. A key removed, revoked for good or marked bad with an end while
//!     the request was out is not held (a bench adds no cooling key).
//! 30. the call's first backoff (a sleep labelled `backoff` right after the first answer,
//!     which was no rate limit, and no breaker's wait) lies in the range its policy fixes:
//!     no retry was drawn before it, so with `e = min(base, cap)` of the congestion backoff
//!     (after an overload) or the transient one (else), equal jitter gives `[e/2, e]`, full
//!     jitter `[0, e]`, decorrelated jitter `[e, min(3·base, cap)]`, none exactly `e`. The
//!     spread of the draws is a coverage question, not a per-step one: the marks
//!     `backoff_drew_its_top`, `equal_jitter_backoff_in_top_eighth` and
//!     `key_cooldown_jitter_in_upper_half` require that some first backoff drew the very
//!     top of its range, some equal-jitter one its top eighth, and some hint-less key
//!     cooldown more than half its jitter above its floor (seen only where the key is
//!     reported cooling past anything else that could hold it). A later backoff after an
//!     answer has a floor that grows with the retries on its target: with `n` the
//!     backoffs and server waits after answers the model counted there since the target
//!     began (the machine counts at least these) and `s = min(base · 2^n, cap)`, an
//!     equal-jitter draw is at least `s/2` and one with no jitter at least `s`;
//! 31. the machine's surface agrees with what it did: state names, getters, the names of
//!     actions and reasons, the idempotency key's text, refused events, the trace (checked
//!     by the runner with the `surface` module, whose doc says how each is derived).
//! 32. the caller's cap on server waits (`max_server_wait_ms`): no sleep on a server's hint
//!     is longer than the cap; `server_wait_too_long` never follows a transient fault whose
//!     stated wait (the world's `retry-after`) is within the cap; and an abort that ends the
//!     call on a wait (`deadline_exceeded` before the deadline, `server_wait_too_long`)
//!     promises the time a retry could succeed: the end of a transient fault's stated wait,
//!     exactly, or, after a rate limit of the only key of its target that could come back,
//!     the reset the server announced (within the reading's slack and
//!     `SELECTION_MARGIN_MS`; after a rate limit also for `server_said_no_retry` and
//!     `attempts_exhausted`); never for a wait of a day or more (invariant 8).
//! 33. a zero wait (`retry-after: 0`) says nothing: after a transient fault with a zero
//!     stated wait or none, the same target is sent to again only after a backoff, so not
//!     in the same step when the policy's backoffs cannot draw zero (equal jitter with a
//!     first step of 2 ms or more, decorrelated jitter or none with a base of 1 ms or more).
//! 34. a transient fault (server error, overload, timeout, dropped connection, unknown,
//!     an aggregator's upstream rate limit) is retried on the same key: the behaviour table
//!     says "other key? no" for each. A send to the same target with another key right
//!     after one is a violation when the model knew the failed key usable at every decision
//!     since it was sent (in play, not rejected here or elsewhere, surely free) and it was
//!     neither removed nor marked bad during a sleep since. Such a loss drops
//!     the key the machine meant to resume with, so a send of the lost key once it is back,
//!     at the end of the sleep it was lost in, is a choice that invariant 22's selection
//!     order applies to, even when it repeats the last send (a later sleep may have chosen
//!     the key again, so that is not checked).
//! 35. an abort message says what happened and what to do (the brief: a dead key's message
//!     "names the key's label and provider and says what to do"), checked against names
//!     the model takes from the configured targets and keys, never from the machine: the
//!     provider of the target given up on (every reason but a cancel and the deadline;
//!     for `auth_permanent` and `quota_exhausted`, the target of the last send, whose keys
//!     answered, though the call may have moved on to a fallback without a send since);
//!     for `auth_permanent`, the label of the key whose rejection ended the call and of
//!     every key of the target rejected in this call and not removed since; for
//!     `quota_exhausted`, the label of the key that answered; for `not_retryable`, the
//!     model and the advice for the fault (a larger context window, a smaller body, the
//!     content filter, the model name, the firewall, the certificate, an invalid
//!     request); for `server_wait_too_long`, the cap exactly when the wait ran into one;
//!     the number of sends, in good English, wherever the message counts them; the retry
//!     time, wherever the abort promises one.

use crate::canary;
use crate::overload_model::{self, OverloadModel, Verdict};
use relent::machine::TraceEntry;
use relent::{
    AbortReason, Action, KeyId, Policy, PoolChange, Reason, Selection, SleepReason, Target, Time,
};
use serde::{Deserialize, Serialize};

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The invariant's number in the catalog (0: the runner itself).
    pub invariant: u8,
    /// Virtual time.
    pub at_ms: u64,
    /// What went wrong.
    pub detail: String,
}

/// What the world knows about one answer, whatever the classifier makes of it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Truth {
    /// What the answer is.
    pub reason: Reason,
    /// When the key may be used again, as the server announced it (a rate limit's reset,
    /// or an authoritative quota reset); `None` when the answer announces none.
    pub reset_at: Option<Time>,
    /// The server said not to retry (`x-should-retry: false` or a garbled pushback).
    pub says_no_retry: bool,
    /// The server said the request may be retried as sent (`x-should-retry: true`), whatever
    /// its status and body say: the answer is then waited out like a transient fault.
    pub says_retry: bool,
    /// How much later than `reset_at` an exact reader of the reply may still hold the key
    /// back: an HTTP-date or RFC 3339 reset is read against a `Date` header that has whole
    /// seconds only.
    pub reset_slack_ms: u64,
    /// The wait a transient answer states (its `retry-after`), in milliseconds, as a reader
    /// takes it exactly; `Some(0)` for `retry-after: 0`, `None` when it states none.
    pub stated_wait_ms: Option<u64>,
}

impl Truth {
    /// An answer with no reset and no word about retrying.
    pub fn of(reason: Reason) -> Self {
        Truth {
            reason,
            reset_at: None,
            says_no_retry: false,
            says_retry: false,
            reset_slack_ms: 0,
            stated_wait_ms: None,
        }
    }

    /// Whether the answer is waited out on the same key: a transient fault, or any answer
    /// the server said may be retried as sent.
    fn transient(&self) -> bool {
        is_transient(self.reason) || self.says_retry
    }
}

/// One input the machine accepted, as the checker sees it.
#[derive(Copy, Clone, Debug)]
pub enum Input<'a> {
    /// The call started.
    Start,
    /// The pending send was answered (a hang is answered by its timeout).
    Answer(Truth),
    /// A sleep's timer fired.
    Wake,
    /// An input that is due to change nothing (a timer before its time).
    Idle,
    /// A pool change from outside.
    Pool(&'a PoolChange),
    /// The caller cancelled.
    Cancel,
    /// The committed stream ended well.
    StreamEnded,
    /// The committed stream failed.
    StreamFailed,
}

/// How far into their ranges a call's random draws reached: facts for the spread marks,
/// which a machine whose jitter is narrower than its policy says never reaches.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Spread {
    /// The call's first backoff drew the very top of its jittered range (invariant 30).
    pub backoff_top: bool,
    /// The call's first equal-jitter backoff drew from the top eighth of a range of at
    /// least 16 ms.
    pub equal_top_eighth: bool,
    /// A hint-less key cooldown drew more than half its jitter (of at least 200 ms) above
    /// its floor.
    pub cooldown_upper_half: bool,
}

/// The checker's model of one key.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyModel {
    /// The key.
    pub id: KeyId,
    /// Its target.
    pub target: usize,
    /// Removed from the pool (final).
    pub removed: bool,
    /// Marked bad with no end, until restored.
    pub marked_dead: bool,
    /// No send before this time (an announced reset, an outside mark, the quota cooldown).
    pub blocked_until: Time,
    /// The machine may hold the key back until at most this time (its own cooldowns
    /// included).
    pub free_by: Time,
    /// World rejections since the key last succeeded or was restored.
    pub strikes: u8,
    /// Rejected while another key could be used, or rejected twice.
    pub revoked: bool,
    /// When the rejection that revoked it came (a long-lived pool may probe it again
    /// `revoked_reprobe_after_ms` later).
    pub revoked_at: Option<Time>,
    /// When a re-probe's answer last lifted the key's revocation.
    pub lifted_at: Option<Time>,
    /// When the world last rejected the key (a revocation stands against a lift only if a
    /// rejection came after it; a re-probe's other faults move `revoked_at`, not this).
    pub rejected_at: Option<Time>,
    /// When the key was last sent (by any call of the client).
    pub last_used: Option<Time>,
    /// Rate limits with no server hint in a row (since the key's last success or restore):
    /// the count a cooldown the machine picks escalates with (invariant 25).
    pub cooldowns: u8,
    /// No send before this time: the floor of the escalated cooldown the key's last
    /// hint-less rate limit earned (invariant 25).
    pub escalated_until: Time,
    /// A success reset a count of hint-less cooldowns on this key (for a coverage mark).
    pub cooldowns_reset: bool,
    /// The machine surely holds the key cooling after a rate limit until at least this time
    /// (the ejection guard's count, invariant 29).
    pub cools_surely_until: Time,
    /// The machine may hold the key cooling until this time: after a rate limit, or by an
    /// outside mark with an end (invariant 29).
    pub cools_at_most_until: Time,
    /// The machine surely holds the key exhausted until at least this time (invariant 29).
    pub exhausted_surely_until: Time,
    /// The machine may hold the key exhausted until this time (invariant 29).
    pub exhausted_at_most_until: Time,
}

impl KeyModel {
    fn new(id: KeyId, target: usize) -> Self {
        KeyModel {
            id,
            target,
            removed: false,
            marked_dead: false,
            blocked_until: Time::ZERO,
            free_by: Time::ZERO,
            strikes: 0,
            revoked: false,
            revoked_at: None,
            lifted_at: None,
            rejected_at: None,
            last_used: None,
            cooldowns: 0,
            escalated_until: Time::ZERO,
            cooldowns_reset: false,
            cools_surely_until: Time::ZERO,
            cools_at_most_until: Time::ZERO,
            exhausted_surely_until: Time::ZERO,
            exhausted_at_most_until: Time::ZERO,
        }
    }

    /// Never usable again in this call unless restored.
    fn dead(&self) -> bool {
        self.removed || self.marked_dead || self.revoked
    }

    /// Folds what another call learned about this key into this model (later resets win,
    /// a revocation stays unless a lift came after its last rejection). Returns which
    /// side's lift stood against the other's revocation, if one did: `Some(true)` for
    /// `other`'s, `Some(false)` for this model's. That side's count of rejections in a row
    /// is the one that stands.
    fn absorb(&mut self, other: &KeyModel) -> Option<bool> {
        self.removed |= other.removed;
        self.marked_dead = other.marked_dead;
        // A re-probe's lift in one call undoes a revocation of the other whose last rejection
        // came no later. A re-probe answered by some other fault re-arms the revocation
        // (`revoked_at`) but says nothing against the key, so it does not count here.
        let lifts = |lifter: &KeyModel, revoked: &KeyModel| {
            !lifter.revoked
                && revoked.revoked
                && lifter
                    .lifted_at
                    .is_some_and(|l| revoked.rejected_at.is_some_and(|r| r <= l))
        };
        let (other_lifts, self_lifts) = (lifts(other, self), lifts(self, other));
        self.lifted_at = self.lifted_at.max(other.lifted_at);
        self.rejected_at = self.rejected_at.max(other.rejected_at);
        if other_lifts {
            self.revoked = false;
            self.revoked_at = None;
            self.strikes = other.strikes;
        } else if self_lifts {
            // This side's lift stands; the other's count of rejections predates it.
        } else {
            self.revoked |= other.revoked;
            self.revoked_at = self.revoked_at.max(other.revoked_at);
            self.strikes = self.strikes.max(other.strikes);
        }
        let lift_stood = if other_lifts {
            Some(true)
        } else if self_lifts {
            Some(false)
        } else {
            None
        };
        self.blocked_until = self.blocked_until.max(other.blocked_until);
        self.free_by = self.free_by.max(other.free_by);
        self.escalated_until = self.escalated_until.max(other.escalated_until);
        self.cooldowns_reset |= other.cooldowns_reset;
        self.cools_surely_until = self.cools_surely_until.max(other.cools_surely_until);
        self.cools_at_most_until = self.cools_at_most_until.max(other.cools_at_most_until);
        self.exhausted_surely_until = self
            .exhausted_surely_until
            .max(other.exhausted_surely_until);
        self.exhausted_at_most_until = self
            .exhausted_at_most_until
            .max(other.exhausted_at_most_until);
        self.last_used = self.last_used.max(other.last_used);
        lift_stood
    }
}

/// What the keys of a client are known to be, shared by the calls of a multi-call world.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientModel {
    /// Every key ever seen.
    pub keys: Vec<KeyModel>,
    /// Each target's context window, as configured (for fallback after a context overflow).
    pub contexts: Vec<Option<u32>>,
    /// The client's retry budget and breakers (issue #14), when a policy is known.
    pub overload: Option<OverloadModel>,
    /// Per target, the round-robin cursor: the index after the key sent last.
    pub cursors: Vec<usize>,
    /// The names an abort message uses (invariant 35).
    pub names: std::sync::Arc<Names>,
}

/// The names a message shows, as configured: each target's provider and model, each key's
/// label (invariant 35).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Names {
    /// Per target, the provider's name and the model.
    pub targets: Vec<(String, String)>,
    /// Each configured key's label.
    pub labels: Vec<(KeyId, String)>,
}

impl ClientModel {
    /// The model of a fresh pool over `targets`.
    pub fn new(targets: &[Target]) -> Self {
        ClientModel {
            keys: targets
                .iter()
                .enumerate()
                .flat_map(|(t, target)| target.keys.iter().map(move |k| KeyModel::new(k.id, t)))
                .collect(),
            contexts: targets.iter().map(|t| t.context_tokens).collect(),
            overload: None,
            cursors: vec![0; targets.len()],
            names: std::sync::Arc::new(Names {
                targets: targets
                    .iter()
                    .map(|t| (t.provider.to_string(), t.model.clone()))
                    .collect(),
                labels: targets
                    .iter()
                    .flat_map(|t| t.keys.iter().map(|k| (k.id, k.label.to_string())))
                    .collect(),
            }),
        }
    }

    /// The model of a fresh client over `targets` under `policy`, its retry budget and
    /// breakers included.
    pub fn with_policy(targets: &[Target], policy: &Policy) -> Self {
        ClientModel {
            overload: Some(OverloadModel::new(policy, targets.len())),
            ..ClientModel::new(targets)
        }
    }

    /// Takes the retry budget and breakers from a call that just stepped (the runner
    /// steps one call at a time, so the call's model is the client's).
    pub fn take_overload(&mut self, call: &Checker) {
        match &mut self.overload {
            Some(o) => o.clone_from(&call.overload),
            None => self.overload = Some(call.overload.clone()),
        }
    }

    /// Takes in what a call learned since it last shared (the driver's merge: what only
    /// this call changed replaces the client's view; what both changed keeps the stricter).
    /// Returns whether a re-probe's lift and a rejection from different calls met, one
    /// standing against the other.
    pub fn learn(&mut self, call: &mut Checker) -> bool {
        let mut lift_met_rejection = false;
        for (i, learned) in call.keys.iter().enumerate() {
            let before = call.synced.get(i).filter(|b| b.id == learned.id);
            if before == Some(learned) {
                continue;
            }
            match self.keys.iter_mut().find(|k| k.id == learned.id) {
                Some(k) if before == Some(k) => *k = learned.clone(),
                Some(k) => {
                    // The counts of rejections and of hint-less cooldowns merge each on its
                    // own, as the driver's merge does: the call's count when only the call
                    // changed it, the larger when both did, the client's when the call left
                    // it alone. (So a success that cleared a key's strike in one call clears
                    // it for the client, though another call changed the key meanwhile.)
                    fn merged<N: Ord + Copy>(shared: N, started: Option<N>, learned: N) -> N {
                        if started == Some(learned) {
                            shared
                        } else if started == Some(shared) {
                            learned
                        } else {
                            shared.max(learned)
                        }
                    }
                    // Where a lift stood against a revocation, the count of the side whose
                    // word came later stands (`absorb` set it).
                    let (strikes, cooldowns) = (k.strikes, k.cooldowns);
                    if k.absorb(learned).is_some() {
                        lift_met_rejection = true;
                    } else {
                        k.strikes = merged(strikes, before.map(|b| b.strikes), learned.strikes);
                    }
                    k.cooldowns = merged(cooldowns, before.map(|b| b.cooldowns), learned.cooldowns);
                }
                None => self.keys.push(learned.clone()),
            }
        }
        call.synced.clone_from(&call.keys);
        // A cursor the call moved is the client's now (the driver's merge takes it).
        for (t, cursor) in call.cursors.iter().enumerate() {
            if call.synced_cursors.get(t) != Some(cursor) {
                if let Some(shared) = self.cursors.get_mut(t) {
                    *shared = *cursor;
                }
            }
        }
        call.synced_cursors.clone_from(&call.cursors);
        lift_met_rejection
    }

    /// Applies a pool change from outside (every running call sees it too).
    pub fn pool_change(&mut self, change: &PoolChange) {
        apply_change(&mut self.keys, change);
    }
}

fn apply_change(keys: &mut Vec<KeyModel>, change: &PoolChange) {
    match change {
        PoolChange::Added { target, key } => {
            if !keys.iter().any(|k| k.id == key.id) {
                keys.push(KeyModel::new(key.id, *target));
            }
        }
        PoolChange::Removed { key } => {
            if let Some(k) = keys.iter_mut().find(|k| k.id == *key) {
                k.removed = true;
            }
        }
        PoolChange::MarkedBad { key, until } => {
            if let Some(k) = keys.iter_mut().find(|k| k.id == *key) {
                match until {
                    None => k.marked_dead = true,
                    Some(t) => {
                        k.blocked_until = k.blocked_until.max(*t);
                        k.free_by = k.free_by.max(*t);
                        // Cooling, unless the key was exhausted for longer.
                        k.cools_at_most_until = k.cools_at_most_until.max(*t);
                    }
                }
            }
        }
        PoolChange::Restored { key } => {
            if let Some(k) = keys.iter_mut().find(|k| k.id == *key) {
                k.marked_dead = false;
                k.revoked = false;
                k.revoked_at = None;
                k.rejected_at = None;
                k.strikes = 0;
                k.blocked_until = Time::ZERO;
                k.free_by = Time::ZERO;
                k.cooldowns = 0;
                k.escalated_until = Time::ZERO;
                k.cools_surely_until = Time::ZERO;
                k.cools_at_most_until = Time::ZERO;
                k.exhausted_surely_until = Time::ZERO;
                k.exhausted_at_most_until = Time::ZERO;
            }
        }
    }
}

/// Whether a sleep for `reason` waits for keys to come free, so that a pool change may end
/// it (the brief: "pool changes act at once" on a sleep for cooling keys): a wait for cooling
/// keys, or for the one key a rate limit benched. A backoff after a transient fault waits
/// for the server, and a wait for an open breaker or for the retry budget waits for time.
fn waits_for_keys(reason: SleepReason) -> bool {
    match reason {
        SleepReason::AllKeysCooling => true,
        SleepReason::Backoff { after } | SleepReason::ServerHint { after, .. } => {
            after == Reason::RateLimited
        }
        _ => false,
    }
}

/// Three answers to "could another key be used before the deadline?".
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Alternative {
    Yes,
    No,
    /// Only keys whose cooldown the machine picked itself, which may end either side of
    /// the deadline.
    Unknown,
}

/// A lone rejected key's follow-up, owed by the step that saw the rejection.
#[derive(Copy, Clone, Debug)]
enum LoneRejection {
    /// The one fresh retry of this key.
    Retry(KeyId),
    /// `auth_permanent`, now.
    Abort,
}

/// Reasons whose row in the brief leaves every key's state as it was.
fn leaves_keys_alone(reason: Reason) -> bool {
    !matches!(
        reason,
        Reason::Success | Reason::KeyRejected | Reason::QuotaExhausted | Reason::RateLimited
    )
}

/// Reasons after which the target is never sent the same request again.
fn refuses_target(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::ContextOverflow
            | Reason::PayloadTooLarge
            | Reason::ContentFilter
            | Reason::ModelNotFound
            | Reason::MalformedRequest
            | Reason::TlsCertificate
            | Reason::BlockedByWaf
    )
}

/// How far past the model's bound on a key's cooldown invariant 22 waits before it counts
/// the key as ready (and invariant 25 lets a server's reset, as the machine holds it, run
/// past the model's): the machine reads a reset the server states to the millisecond while
/// the model's bound comes from the world's own clock, and the two may round apart.
const SELECTION_MARGIN_MS: u64 = 1_000;

/// Whether the model is sure that `k` is not held back at `now`, for invariants 14 and 22:
/// never held, or held until a time at least `SELECTION_MARGIN_MS` before `now`.
fn surely_free(k: &KeyModel, now: Time) -> bool {
    k.free_by == Time::ZERO || k.free_by.0.saturating_add(SELECTION_MARGIN_MS) <= now.0
}

/// A backoff's step after `retries` retries: its base doubled that many times, up to its cap.
fn step_after(b: &relent::Backoff, retries: u32) -> u64 {
    b.base_ms
        .saturating_mul(1u64.checked_shl(retries.min(63)).unwrap_or(u64::MAX))
        .min(b.cap_ms.max(1))
}

/// Transient faults: waited out on the same key.
fn is_transient(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Overloaded
            | Reason::ServerError
            | Reason::Timeout
            | Reason::ConnectionFailed
            | Reason::Unknown
            | Reason::UpstreamRateLimited
    )
}

/// A day in milliseconds: servers' waits are clamped to it, so a wait that long has no
/// known end (docs/POLICY.md, the row of `classify::hints::MAX_HINT_MS`).
const A_DAY_MS: u64 = 86_400_000;

/// The per-call checker.
#[derive(Clone, Debug)]
pub struct Checker {
    policy: Policy,
    keys: Vec<KeyModel>,
    names: std::sync::Arc<Names>,
    /// Labels of keys added by pool changes (invariant 35).
    added_labels: Vec<(KeyId, String)>,
    contexts: Vec<Option<u32>>,
    deadline: Time,
    started: bool,
    /// The target of the last send (0 before the first).
    target: usize,
    sends: u32,
    target_sends: u32,
    transient: u32,
    /// Immediate resends after a rate limit that the machine may have counted as transient
    /// retries (where the model cannot tell whether the ejection guard held the key).
    transient_maybe: u32,
    /// Backoffs and server waits after answers on the current target (invariant 30): the
    /// machine's count of retries, which a backoff's step grows with, is at least this.
    drawn_here: u32,
    /// Waits on the current target (every sleep, and every resend of the key just used
    /// with no sleep between): at least as many as the retries the machine's backoff has
    /// counted there (invariant 25 bounds its delay with them).
    target_waits: u32,
    excluded: Vec<KeyId>,
    refused: Vec<usize>,
    last_send: Option<(usize, KeyId)>,
    /// The key a `Rotate` just announced, until its send.
    rotating: Option<relent::KeyRef>,
    /// Overloads answered on the current target.
    target_overloads: u32,
    /// The last answer's truth, while no send or sleep has followed it.
    fresh_answer: Option<Truth>,
    /// The lone-rejection retry the model allows.
    retry_allowed: Option<KeyId>,
    /// The key of the send out, when that send is a re-probe of a revoked key.
    probing: Option<KeyId>,
    /// Keys whose last answer in this call was a rejection.
    rejected_here: Vec<KeyId>,
    /// The key models as this call last shared them with the client.
    synced: Vec<KeyModel>,
    /// Per target, the round-robin cursor (see [`ClientModel::cursors`]).
    cursors: Vec<usize>,
    /// The cursors as this call last shared them with the client.
    synced_cursors: Vec<usize>,
    /// The idempotency key of the call's first send.
    idempotency: Option<relent::machine::IdempotencyKey>,
    sleeping: Option<SleepReason>,
    /// Keys removed or marked bad during a sleep since the last send (invariant 34).
    lost_in_sleep: Vec<KeyId>,
    /// Of those, the ones lost during the current sleep: no decision since could have
    /// chosen them again (invariant 34's use of invariant 22).
    lost_in_this_sleep: Vec<KeyId>,
    /// The key sent last was, at some decision since, not surely usable for the model
    /// (invariant 34).
    benched_since_send: bool,
    /// When the current sleep ends, as its `Sleep` said.
    sleep_until: Time,
    committed: bool,
    restart_granted: bool,
    ended: bool,
    /// The client's retry budget and breakers (issue #14).
    overload: OverloadModel,
    /// The reason of the call's last answer (what the next send retries after).
    last_truth: Option<Reason>,
    /// Whether that answer said the request may be retried as sent.
    last_says_retry: bool,
    /// What the pending send cost the budget.
    charged: u64,
    /// Keys that came into the call with hint-less cooldowns counted by earlier calls.
    inherited_cooldowns: Vec<KeyId>,
    /// A key's hint-less cooldown escalated (its second or later in a row) in this call.
    escalated: bool,
    /// How far into their ranges this call's random draws reached (the spread marks).
    spread: Spread,
    /// Whether the call has slept: after any sleep, a backoff is no longer the call's first
    /// (a sleep for keys or a backoff counts a retry, and a budget's wait follows one).
    slept: bool,
    /// The same key was sent again after an answer the server marked retryable
    /// (`x-should-retry: true`) although its body refused the request.
    retried_when_told: bool,
    /// A key's loss ended a sleep that waited only for it; a key's loss left a sleep
    /// whose other keys were still due (invariant 14's second half, both ways).
    loss_ended_sleep: bool,
    loss_kept_sleep: bool,
    /// ... with a count that an earlier call of the client had started.
    escalated_across_calls: bool,
    /// A key drew a hint-less rate limit after a success had reset its count.
    restarted_after_reset: bool,
    /// The ejection guard held the key of this step's answer back from a bench
    /// (invariant 29): the step's actions are checked against it.
    guarded_now: bool,
    /// The ejection guard may have held the key of this step's answer back: what it does
    /// instead of a bench (a wait on the target with keys ready) is allowed.
    guard_maybe: bool,
    /// The ejection guard held a key back in this call (for a coverage mark).
    guard_held: bool,
    violations: Vec<Violation>,
}

impl Checker {
    /// A checker for one call under `policy`, starting from what the client knows.
    pub fn new(policy: &Policy, client: &ClientModel) -> Self {
        Checker {
            policy: policy.clone(),
            keys: client.keys.clone(),
            names: client.names.clone(),
            added_labels: Vec::new(),
            contexts: client.contexts.clone(),
            deadline: Time::MAX,
            started: false,
            target: 0,
            sends: 0,
            target_sends: 0,
            transient: 0,
            transient_maybe: 0,
            drawn_here: 0,
            target_waits: 0,
            excluded: Vec::new(),
            refused: Vec::new(),
            last_send: None,
            fresh_answer: None,
            rotating: None,
            target_overloads: 0,
            retry_allowed: None,
            probing: None,
            rejected_here: Vec::new(),
            synced: client.keys.clone(),
            cursors: client.cursors.clone(),
            synced_cursors: client.cursors.clone(),
            idempotency: None,
            sleeping: None,
            lost_in_sleep: Vec::new(),
            lost_in_this_sleep: Vec::new(),
            benched_since_send: false,
            sleep_until: Time::ZERO,
            committed: false,
            restart_granted: false,
            ended: false,
            overload: client
                .overload
                .clone()
                .unwrap_or_else(|| OverloadModel::new(policy, client.contexts.len())),
            last_truth: None,
            last_says_retry: false,
            spread: Spread::default(),
            slept: false,
            charged: 0,
            inherited_cooldowns: client
                .keys
                .iter()
                .filter(|k| k.cooldowns > 0)
                .map(|k| k.id)
                .collect(),
            escalated: false,
            retried_when_told: false,
            loss_ended_sleep: false,
            loss_kept_sleep: false,
            escalated_across_calls: false,
            restarted_after_reset: false,
            guarded_now: false,
            guard_maybe: false,
            guard_held: false,
            violations: Vec::new(),
        }
    }

    /// Starts the next step from the client's retry budget and breakers (the runner hands
    /// the machine the client's state before every input, as a driver does).
    pub fn sync_overload(&mut self, client: &ClientModel) {
        if let Some(o) = &client.overload {
            self.overload.clone_from(o);
        }
    }

    /// Whether the call sent the same key again after an answer that refused the request
    /// but that the server marked retryable (`x-should-retry: true`).
    pub fn retried_when_told(&self) -> bool {
        self.retried_when_told
    }

    /// Whether a key removed or marked bad during a sleep for cooling keys ended the sleep
    /// (no key was left due before its end), and whether one left a sleep that still had a
    /// key due.
    pub fn sleep_after_loss(&self) -> (bool, bool) {
        (self.loss_ended_sleep, self.loss_kept_sleep)
    }

    /// How far into their ranges this call's random draws reached (for the spread marks).
    pub fn spread(&self) -> Spread {
        self.spread
    }

    /// Whether a key's cooldown escalated in this call (its second or later hint-less rate
    /// limit in a row); whether one did with a count an earlier call had started; whether a
    /// key drew a hint-less rate limit after a success had reset its count.
    pub fn escalated(&self) -> (bool, bool, bool) {
        (
            self.escalated,
            self.escalated_across_calls,
            self.restarted_after_reset,
        )
    }

    /// Whether the ejection guard held a key back from a bench in this call (invariant 29).
    pub fn guard_held(&self) -> bool {
        self.guard_held
    }

    /// The policy's key-cooldown escalation as the model reads it: base, most and jitter
    /// percent, or `None` when it is off.
    fn escalation(&self) -> Option<(u64, u64, u64)> {
        let e = &self.policy.key_cooldown;
        e.enabled
            .then_some((e.base_ms, e.max_ms, u64::from(e.jitter_percent)))
    }

    /// Invariant 30, on the call's first backoff (a sleep labelled `backoff` after the
    /// first answer, which was no rate limit): no retry has been drawn before it, so the
    /// policy alone fixes its range. The backoff for an overload is the congestion one,
    /// else the transient one; with `e = min(base, cap)`, equal jitter draws from
    /// `[e/2, e]`, full jitter from `[0, e]`, decorrelated jitter from
    /// `[e, min(3·base, cap)]` and none gives `e`. A draw of 0 is no sleep, so it is never
    /// seen. Also notes, for the spread marks, a draw at the very top of a jittered range
    /// and an equal-jitter draw in the top eighth of a range of at least 16 ms.
    fn first_backoff(&mut self, now: Time, until: Time, after: Reason) {
        let b = self.backoff_after(after);
        let e = b.base_ms.min(b.cap_ms);
        let (least, most) = match b.jitter {
            relent::Jitter::Equal => (e / 2, e),
            relent::Jitter::Full => (0, e),
            relent::Jitter::Decorrelated => (e, b.base_ms.saturating_mul(3).min(b.cap_ms).max(e)),
            _ => (e, e),
        };
        let drawn = until.since(now).0;
        if drawn < least || drawn > most {
            self.violation(
                now,
                30,
                format!(
                    "the call's first backoff after {after} lasts {drawn} ms, outside [{least}, {most}] ms, the range its {:?} jitter draws from",
                    b.jitter
                ),
            );
        }
        let jittered = matches!(b.jitter, relent::Jitter::Equal | relent::Jitter::Full);
        if jittered && drawn == most && least < most {
            self.spread.backoff_top = true;
        }
        if b.jitter == relent::Jitter::Equal && e >= 16 && drawn >= e - e / 8 {
            self.spread.equal_top_eighth = true;
        }
    }

    /// Invariant 30, on a later backoff after an answer: its step has grown with every
    /// retry on this target, and the model counted at least `drawn_here` of them (the
    /// machine may count more), so with `s = min(base · 2^drawn_here, cap)` an equal-jitter
    /// draw is at least `s/2` and a draw with no jitter at least `s`. (Full jitter may draw
    /// near nothing, and a decorrelated draw's floor is the base whatever came before.)
    fn later_backoff(&mut self, now: Time, until: Time, after: Reason) {
        let b = self.backoff_after(after);
        let step = step_after(&b, self.drawn_here);
        let least = match b.jitter {
            relent::Jitter::Equal => step / 2,
            relent::Jitter::None => step,
            _ => return,
        };
        let drawn = until.since(now).0;
        if drawn < least {
            self.violation(
                now,
                30,
                format!(
                    "a backoff after {after} lasts {drawn} ms, under the {least} ms its {:?} jitter draws at least after {} retries on this target",
                    b.jitter, self.drawn_here
                ),
            );
        }
    }

    /// The longest congestion backoff the machine may draw now: every retry on this target
    /// so far (each a sleep or an immediate resend, so at most `target_waits`) can have
    /// doubled it, up to its cap; a decorrelated one may reach the cap at once.
    fn congestion_backoff_most(&self) -> relent::Millis {
        let b = self.policy.congestion_backoff;
        relent::Millis(match b.jitter {
            relent::Jitter::Decorrelated => b.cap_ms.max(1),
            _ => step_after(&b, self.target_waits),
        })
    }

    /// The backoff the machine draws after `after`: the congestion one after an overload,
    /// else the transient one.
    fn backoff_after(&self, after: Reason) -> relent::Backoff {
        if after == Reason::Overloaded {
            self.policy.congestion_backoff
        } else {
            self.policy.backoff
        }
    }

    /// The shortest congestion backoff the machine may draw: half the base with equal
    /// jitter, the base with decorrelated jitter or none, nothing with full jitter.
    fn congestion_backoff_least(&self) -> u64 {
        let b = self.policy.congestion_backoff;
        let first = b.base_ms.min(b.cap_ms.max(1));
        match b.jitter {
            relent::Jitter::Full => 0,
            relent::Jitter::Equal => first / 2,
            _ => first,
        }
    }

    /// Invariant 29, on a hint-less rate limit of `key` (of target `t`): whether the
    /// machine held the key back from a bench (it reports the key usable after the answer,
    /// where a bench would hold it past `now`). Checked against the model's count of the
    /// target's other keys that cool after rate limits: `max_ejection_percent` allows a
    /// bench while, the key included, no more than that share of the keys that could take
    /// a request (usable now or cooling; not removed, revoked or exhausted) would cool, and
    /// always when no other key cools. Where the model only bounds a key (a cooldown the
    /// machine drew, a possible revocation, an outside mark), both answers are accepted
    /// when the bounds allow both.
    fn ejection_guard(&mut self, now: Time, t: usize, key: KeyId, entry: &TraceEntry) -> bool {
        let percent = u64::from(self.policy.max_ejection_percent);
        let Some(k) = self.key(key) else {
            return false;
        };
        // A key removed, or held back by an outside mark, while the request was out is gone
        // or cooling already: a bench adds no cooling key, and the guard does not hold.
        if k.removed || k.marked_dead || k.blocked_until > now {
            return false;
        }
        let own = 1;
        // Cooling keys: surely, possibly. Keys that could take a request: at most, and
        // when as many as possible cool.
        let (mut c_least, mut c_most, mut e_most, mut e_with_most_cooling) = (0, 0, own, own);
        for o in &self.keys {
            if o.target != t || o.id == key || o.removed || o.marked_dead {
                continue;
            }
            if self.excluded.contains(&o.id) {
                continue;
            }
            let exhausted_maybe = o.exhausted_at_most_until > now;
            let exhausted_surely = o.exhausted_surely_until > now;
            let revoked_maybe = o.revoked
                || o.strikes > 0
                || o.lifted_at.is_some()
                || self.rejected_here.contains(&o.id);
            let cools_maybe = o.cools_at_most_until > now;
            let cools_surely = o.cools_surely_until > now && !exhausted_maybe && !revoked_maybe;
            let eligible_surely = !exhausted_maybe && !revoked_maybe;
            let eligible_maybe = !exhausted_surely || cools_maybe;
            c_least += u64::from(cools_surely);
            c_most += u64::from(cools_maybe);
            e_most += u64::from(eligible_maybe);
            e_with_most_cooling += u64::from(cools_maybe || eligible_surely);
        }
        let holds = |cooling: u64, eligible: u64| {
            percent < 100 && cooling >= 1 && (cooling + 1) * 100 > percent * eligible
        };
        let surely = holds(c_least, e_most);
        let possibly = holds(c_most, e_with_most_cooling);
        // Where the model cannot tell, the call may do what the guard does.
        self.guard_maybe = possibly;
        // A bench sets the key cooling until `now` or later; a held key keeps its state,
        // usable now. A key reported cooling until exactly `now` is either: a bench that
        // drew no time, or a held key whose earlier cooldown ends now. Either way it is
        // usable now and escalates nothing (a bench of no time has no escalation floor),
        // so the model follows it as held, without knowing whether the machine counted a
        // retry (the guard's backoff counts one, a rotation back to the key does not).
        let reported = entry.keys.iter().find(|r| r.key == key).map(|r| r.state);
        let usable = reported.is_some_and(|s| s.usable_at(now));
        let ready_at = reported.and_then(|s| s.ready_at());
        if usable && ready_at == Some(now) {
            return true;
        }
        let held = usable && ready_at.is_none_or(|t| t < now);
        if surely && !held {
            self.violation(
                now,
                29,
                format!(
                    "a hint-less rate limit benched key {key} while {c_least} other keys of target {t} surely cool, of at most {e_most} that could take a request: beyond max_ejection_percent {percent}"
                ),
            );
        }
        if held && !possibly {
            self.violation(
                now,
                29,
                format!(
                    "the ejection guard held key {key} back from a bench while at most {c_most} other keys of target {t} cool, of at least {e_with_most_cooling}: within max_ejection_percent {percent}"
                ),
            );
        }
        if held {
            self.guarded_now = true;
            self.guard_maybe = true;
            self.guard_held = true;
        }
        held
    }

    /// Invariant 25: after a rate limit, the machine reports the key held back no longer
    /// than `longest` (a server's reset is never lengthened, a cooldown it picks never
    /// outlasts the larger of the congestion backoff it may draw and the escalation's floor
    /// plus jitter)
    /// and, for a cooldown it picks, no shorter than `shortest` (the escalation's floor).
    fn reported_cooldown(
        &mut self,
        now: Time,
        key: KeyId,
        entry: &TraceEntry,
        longest: Time,
        shortest: Option<Time>,
    ) {
        let Some(reported) = entry.keys.iter().find(|k| k.key == key) else {
            return;
        };
        // A revoked or removed key is held back for good, by something else.
        let Some(ready_at) = reported.state.ready_at() else {
            return;
        };
        if ready_at > longest {
            self.violation(
                now,
                25,
                format!(
                    "after a rate limit key {key} is held back until {ready_at}, past {longest}, the most the model allows"
                ),
            );
        }
        if let Some(shortest) = shortest.filter(|s| ready_at < *s) {
            let n = self.key(key).map_or(0, |k| k.cooldowns);
            self.violation(
                now,
                25,
                format!(
                    "after hint-less rate limit {n} in a row key {key} cools only until {ready_at}, before the escalated floor {shortest}"
                ),
            );
        }
    }

    /// The spread mark of a hint-less cooldown the machine drew for `key` (floor plus up to
    /// `jitter`): the key is reported cooling past what held it before (`held_until`) and
    /// past the longest backoff the machine could have drawn instead, so the time is the
    /// cooldown's own draw; the mark notes one above its floor plus half its jitter, with a
    /// jitter of at least 200 ms.
    #[allow(clippy::too_many_arguments)]
    fn cooldown_spread(
        &mut self,
        now: Time,
        key: KeyId,
        entry: &TraceEntry,
        held_until: Time,
        floor: u64,
        jitter: u64,
        backoff_most: relent::Millis,
    ) {
        let Some(ready_at) = entry
            .keys
            .iter()
            .find(|k| k.key == key)
            .and_then(|k| k.state.ready_at())
        else {
            return;
        };
        let drawn = ready_at.since(now).0;
        if jitter >= 200
            && ready_at > held_until
            && drawn > backoff_most.0
            && drawn > floor + jitter / 2
        {
            self.spread.cooldown_upper_half = true;
        }
    }

    /// The policy the call runs under.
    pub fn policy(&self) -> &relent::Policy {
        &self.policy
    }

    /// The number of `Send` actions seen.
    pub fn sends(&self) -> u32 {
        self.sends
    }

    /// Whether the call has started.
    pub fn started(&self) -> bool {
        self.started
    }

    /// The keys that answered "not entitled" in this call (and were not restored since).
    pub fn excluded(&self) -> &[KeyId] {
        &self.excluded
    }

    /// The call's deadline, as the policy sets it.
    pub fn deadline(&self) -> Time {
        self.deadline
    }

    /// Whether the call has ended (success handed over and finished, or aborted).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Records a violation.
    pub fn violation(&mut self, now: Time, invariant: u8, detail: impl Into<String>) {
        self.violations.push(Violation {
            invariant,
            at_ms: now.0,
            detail: detail.into(),
        });
    }

    /// The idempotency key the call's sends carry (after its first send).
    pub fn idempotency_key(&self) -> Option<relent::machine::IdempotencyKey> {
        self.idempotency
    }

    /// The violations found.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The violations found, by value.
    pub fn into_violations(self) -> Vec<Violation> {
        self.violations
    }

    fn key(&self, id: KeyId) -> Option<&KeyModel> {
        self.keys.iter().find(|k| k.id == id)
    }

    fn key_mut(&mut self, id: KeyId) -> Option<&mut KeyModel> {
        self.keys.iter_mut().find(|k| k.id == id)
    }

    /// Could `k` be sent at all in this call (ignoring time)?
    fn in_play(&self, k: &KeyModel) -> bool {
        !k.dead() && k.strikes < 2 && !self.excluded.contains(&k.id)
    }

    /// Is `k` certainly usable in this call (ignoring time)? A key rejected once here may
    /// have been revoked by the machine (when it saw an alternative the model could not
    /// place), so it is not counted on.
    fn surely_in_play(&self, k: &KeyModel) -> bool {
        self.in_play(k) && !self.rejected_here.contains(&k.id)
    }

    /// Could a key other than `except`, of this target or a later one, be used before the
    /// deadline?
    fn alternative(&self, except: KeyId) -> Alternative {
        let mut answer = Alternative::No;
        for k in &self.keys {
            if k.id == except || k.target < self.target || !self.in_play(k) {
                continue;
            }
            if k.free_by < self.deadline {
                return Alternative::Yes;
            }
            if k.blocked_until < self.deadline {
                answer = Alternative::Unknown;
            }
        }
        answer
    }

    /// Checks one step: the input the machine accepted at `entry.at` and everything it did.
    /// `keys_before` are the key states the machine reported before the step.
    pub fn step(
        &mut self,
        input: Input<'_>,
        entry: &TraceEntry,
        keys_before: &[relent::machine::KeySnapshot],
    ) {
        let now = entry.at;
        self.guarded_now = false;
        self.guard_maybe = false;
        let mut expect_lone: Option<LoneRejection> = None;
        let mut expect_wake = false;
        let mut expect_sleep_ends = None;
        let mut expect_quiet = None;
        match input {
            Input::Start => {
                self.started = true;
                self.deadline = now + relent::Millis(self.policy.deadline_ms);
            }
            Input::Answer(truth) => {
                self.answer(now, truth, entry, keys_before, &mut expect_lone);
            }
            Input::Wake => self.sleeping = None,
            Input::Idle => {
                if !entry.actions.is_empty() {
                    self.violation(now, 6, "an early timer caused actions");
                }
            }
            Input::Pool(change) => {
                // A sleep that waits for something else than keys, or for keys of another
                // target than the one the change touches, is none of the change's business.
                let changed_target = match change {
                    PoolChange::Added { target, .. } => Some(*target),
                    PoolChange::Removed { key }
                    | PoolChange::Restored { key }
                    | PoolChange::MarkedBad { key, .. } => self.key(*key).map(|k| k.target),
                };
                expect_quiet = match self.sleeping {
                    Some(reason) if !waits_for_keys(reason) => {
                        Some(("a sleep that waits for no key", reason))
                    }
                    Some(reason) if changed_target.is_some_and(|t| t != self.target) => {
                        Some(("a sleep for keys of another target", reason))
                    }
                    _ => None,
                };
                expect_wake = self.pool_change(now, change);
                expect_sleep_ends = self.expect_after_loss(now, change);
                self.loss_ended_sleep |= expect_sleep_ends == Some(true);
                self.loss_kept_sleep |= expect_sleep_ends == Some(false);
            }
            Input::Cancel => {
                if !matches!(entry.actions.as_slice(), [Action::Abort(a)] if a.reason == AbortReason::Cancelled)
                {
                    self.violation(now, 16, "a cancel did not end the call `cancelled` at once");
                }
            }
            Input::StreamEnded => {
                if !entry.actions.is_empty() {
                    self.violation(now, 12, "the end of a committed stream caused actions");
                }
                self.ended = true;
            }
            Input::StreamFailed => {
                // A broken stream is a dropped connection, whatever the driver showed.
                if let Some(seen) = entry
                    .seen
                    .as_ref()
                    .filter(|s| s.reason != Reason::ConnectionFailed)
                {
                    self.violation(
                        now,
                        12,
                        format!(
                            "a failed stream was read as {}, not a dropped connection",
                            seen.reason
                        ),
                    );
                }
                if self.policy.restart_after_commit {
                    self.restart_granted = true;
                    self.committed = false;
                    self.fresh_answer = Some(Truth::of(Reason::ConnectionFailed));
                    self.last_truth = Some(Reason::ConnectionFailed);
                    self.last_says_retry = false;
                } else if !matches!(entry.actions.as_slice(), [Action::Abort(a)] if a.reason == AbortReason::FailedAfterCommit)
                {
                    self.violation(
                        now,
                        12,
                        format!(
                            "a committed stream failed and the machine did {:?} instead of ending `failed_after_commit`",
                            kinds(&entry.actions)
                        ),
                    );
                }
            }
        }
        if let Some(expected) = expect_lone {
            let ok = match (expected, entry.actions.as_slice()) {
                (LoneRejection::Retry(key), [Action::Send(s)]) => {
                    s.key == key && s.fresh_connection
                }
                (LoneRejection::Abort, [Action::Abort(a)]) => {
                    a.reason == AbortReason::AuthPermanent
                        || (a.reason == AbortReason::CircuitOpen && self.reprobe_possible(now))
                }
                // A key the machine may probe again (a revocation's re-probe) behind an open
                // breaker: the call waits for the breaker (issue #14).
                (_, [Action::Sleep { until, .. }]) => self.breaker_wait(now, *until),
                // Instead of the abort, a re-probe of another key revoked long enough ago.
                (LoneRejection::Abort, [Action::Rotate { .. }, Action::Send(s)]) => self
                    .key(s.key)
                    .is_some_and(|k| self.reprobe_allowed(k, now)),
                _ => false,
            };
            if !ok {
                self.violation(
                    now,
                    1,
                    format!(
                        "after a rejection of the only usable key the model expected {expected:?}; the machine did {:?}",
                        kinds(&entry.actions)
                    ),
                );
            }
        }
        // (A wait for a breaker on the way forward is the wake's outcome too, and so is a
        // wait for the retry budget, which invariant 19 checks.)
        if expect_wake
            && !entry.actions.iter().any(|a| match a {
                Action::Send(_) | Action::Abort(_) => true,
                Action::Sleep {
                    reason: SleepReason::RetryBudget { .. },
                    ..
                } => true,
                Action::Sleep { until, .. } => self.breaker_wait(now, *until),
                _ => false,
            })
        {
            self.violation(
                now,
                14,
                "a key became usable on the current target during a sleep for cooling keys, and the sleep went on",
            );
        }
        if let (Some((sleep, reason)), false) = (expect_quiet, entry.actions.is_empty()) {
            self.violation(
                now,
                14,
                format!(
                    "a pool change during {sleep} ({reason:?}) made the machine do {:?}",
                    kinds(&entry.actions)
                ),
            );
        }
        match (expect_sleep_ends, entry.actions.is_empty()) {
            (Some(true), true) => self.violation(
                now,
                14,
                "every key a sleep for cooling keys waited for is gone or benched past its end, and the sleep went on",
            ),
            (Some(false), false) => self.violation(
                now,
                14,
                format!(
                    "a key was removed or benched while another key stays due before the sleep's end, and the machine did {:?} instead of sleeping on",
                    kinds(&entry.actions)
                ),
            ),
            _ => {}
        }
        // The one retry of a rejected key is immediate or never: without it, the key is
        // revoked for the rest of this call and for the client.
        if let (Input::Answer(t), Some((_, key))) = (input, self.last_send) {
            let retried = entry
                .actions
                .iter()
                .any(|a| matches!(a, Action::Send(s) if s.key == key));
            if t.reason == Reason::KeyRejected && !retried {
                if let Some(k) = self.key_mut(key) {
                    k.revoked = true;
                    k.revoked_at = Some(now);
                }
            }
        }
        let answered = matches!(input, Input::Answer(t) if t.reason == Reason::Success);
        for action in &entry.actions {
            self.action(now, action, &input, answered);
        }
        if let Some(seen) = &entry.seen {
            if let Some(code) = &seen.code {
                if let Some(fragment) = canary::leaked(code) {
                    self.violation(
                        now,
                        15,
                        format!("a secret canary fragment {fragment:?} in a recorded code"),
                    );
                }
            }
        }
    }

    fn answer(
        &mut self,
        now: Time,
        truth: Truth,
        entry: &TraceEntry,
        keys_before: &[relent::machine::KeySnapshot],
        expect_lone: &mut Option<LoneRejection>,
    ) {
        let Some((target, key)) = self.last_send else {
            self.violation(now, 0, "an answer with no send out");
            return;
        };
        match &entry.seen {
            Some(seen) if seen.reason != truth.reason => self.violation(
                now,
                18,
                format!(
                    "the world answered {} and the classifier read {}",
                    truth.reason, seen.reason
                ),
            ),
            None => self.violation(now, 18, "an answer the machine did not classify"),
            _ => {}
        }
        // No answer lifts an outside mark: only a restore does.
        let marked_dead = self.key(key).is_some_and(|k| k.marked_dead && !k.removed);
        let reported = entry.keys.iter().find(|r| r.key == key).map(|r| r.state);
        if marked_dead && reported.is_some_and(|s| s != relent::KeyState::Revoked) {
            self.violation(
                now,
                10,
                format!(
                    "key {key}, marked bad from outside, is {reported:?} after answering {}, no longer revoked",
                    truth.reason
                ),
            );
        }
        if leaves_keys_alone(truth.reason) {
            let same = entry.keys.len() >= keys_before.len()
                && keys_before
                    .iter()
                    .zip(&entry.keys)
                    .all(|(a, b)| a.key == b.key && a.state == b.state);
            if !same {
                self.violation(now, 10, format!("{} changed a key's state", truth.reason));
            }
        }
        self.fresh_answer = Some(truth);
        // Issue #14: a success refills the budget (a share of a paid retry's cost back,
        // else the first-try reward); the target's breaker learns the outcome.
        if truth.reason == Reason::Success {
            if self.charged > 0 {
                self.overload.refunded(&self.policy, now, self.charged);
            } else {
                self.overload.rewarded(&self.policy, now);
            }
        }
        self.charged = 0;
        self.overload
            .answered(&self.policy, target, now, truth.reason);
        self.last_truth = Some(truth.reason);
        self.last_says_retry = truth.says_retry;
        if truth.reason == Reason::Overloaded {
            self.target_overloads += 1;
        }
        self.rejected_here.retain(|k| *k != key);
        if truth.reason == Reason::KeyRejected {
            self.rejected_here.push(key);
        }
        // What a re-probe's answer tells about the key (the answer's own rule follows):
        // a fault only an accepted key gets lifts the revocation; a rejection revokes it
        // again (below); any other fault re-arms the revocation from now.
        if self.probing.take() == Some(key) {
            if let Some(k) = self.key_mut(key) {
                match truth.reason {
                    // (The answer's own rule, below, clears the key's strikes.)
                    Reason::Success | Reason::QuotaExhausted | Reason::RateLimited => {
                        k.revoked = false;
                        k.revoked_at = None;
                        k.lifted_at = Some(now);
                    }
                    Reason::KeyRejected => {}
                    _ => k.revoked_at = Some(now),
                }
            }
        }
        // An answer only an accepted key gets ends a run of rejections, as a success does
        // (below): the key's next rejection is a first one again.
        if matches!(truth.reason, Reason::QuotaExhausted | Reason::RateLimited) {
            if let Some(k) = self.key_mut(key) {
                k.strikes = 0;
            }
        }
        let quota_ttl = relent::Millis(self.policy.quota_cooldown_ms);
        let cap = relent::Millis(
            self.policy
                .congestion_backoff
                .cap_ms
                .max(self.policy.backoff.cap_ms),
        );
        match truth.reason {
            Reason::Success => {
                if let Some(k) = self.key_mut(key) {
                    k.strikes = 0;
                    k.cooldowns_reset |= k.cooldowns > 0;
                    k.cooldowns = 0;
                    // A re-probe that worked brings the key back.
                    k.revoked = false;
                    k.revoked_at = None;
                }
                // A key that just answered is usable, unless the outside took it away or
                // held it back while the request was out.
                let held_outside = self
                    .key(key)
                    .is_none_or(|k| k.removed || k.marked_dead || k.blocked_until > now);
                let reported = entry.keys.iter().find(|r| r.key == key).map(|r| r.state);
                let usable = reported.is_some_and(|s| s.usable_at(now));
                if !held_outside && !usable {
                    self.violation(
                        now,
                        10,
                        format!("key {key} answered with a success but is reported {reported:?}"),
                    );
                }
            }
            Reason::KeyRejected => {
                let alternative = self.alternative(key);
                let breaker_admits = matches!(
                    self.overload.verdict(&self.policy, target, now),
                    Verdict::Pass | Verdict::Probe
                );
                // A key still revoked when its rejection comes (a re-probe's, unless the key
                // was restored meanwhile) is not usable: there is no retry to give it.
                let limits_allow = self.sends < self.policy.max_attempts
                    && self.target_sends < self.policy.max_attempts_per_target
                    && now < self.deadline
                    && breaker_admits
                    && self.key(key).is_some_and(|k| {
                        now >= k.blocked_until && !k.removed && !k.marked_dead && !k.revoked
                    });
                let Some(k) = self.key_mut(key) else { return };
                k.strikes = k.strikes.saturating_add(1);
                k.rejected_at = Some(now);
                let strikes = k.strikes;
                if strikes >= 2 || alternative == Alternative::Yes {
                    k.revoked = true;
                    k.revoked_at = Some(now);
                }
                if alternative == Alternative::No {
                    *expect_lone = Some(if strikes == 1 && limits_allow {
                        LoneRejection::Retry(key)
                    } else {
                        LoneRejection::Abort
                    });
                }
                if strikes == 1 && alternative != Alternative::Yes {
                    self.retry_allowed = Some(key);
                }
            }
            Reason::QuotaExhausted => {
                let until = truth.reset_at.unwrap_or(now + quota_ttl);
                let slack = relent::Millis(truth.reset_slack_ms);
                if let Some(k) = self.key_mut(key) {
                    k.blocked_until = k.blocked_until.max(until);
                    k.free_by = k.free_by.max(until + slack);
                    k.exhausted_surely_until = k
                        .exhausted_surely_until
                        .max(Time(until.0.saturating_sub(SELECTION_MARGIN_MS)));
                    k.exhausted_at_most_until = k
                        .exhausted_at_most_until
                        .max(until + slack + relent::Millis(SELECTION_MARGIN_MS));
                }
            }
            Reason::RateLimited => {
                // Invariant 29: a hint-less rate limit the ejection guard holds back benches
                // nothing and escalates nothing.
                if truth.reset_at.is_none() && self.ejection_guard(now, target, key, entry) {
                    return;
                }
                let least_backoff = self.congestion_backoff_least();
                let escalation = self.escalation();
                let backoff_most = self.congestion_backoff_most();
                let Some(k) = self.key_mut(key) else { return };
                let held_until = k.free_by;
                // The longest the machine may hold the key back after this answer, and the
                // shortest (for a cooldown it picks).
                // The floor and jitter of a hint-less cooldown the machine draws.
                let mut drawn_from = None;
                let (longest, shortest) = match truth.reset_at {
                    Some(reset) => {
                        k.blocked_until = k.blocked_until.max(reset);
                        let slack = relent::Millis(truth.reset_slack_ms);
                        k.free_by = k.free_by.max(reset + slack);
                        k.cools_surely_until = k
                            .cools_surely_until
                            .max(Time(reset.0.saturating_sub(SELECTION_MARGIN_MS)));
                        k.cools_at_most_until = k
                            .cools_at_most_until
                            .max(reset + slack + relent::Millis(SELECTION_MARGIN_MS));
                        // The machine reads the reset as the server states it, which may
                        // round apart from the world's clock (see `SELECTION_MARGIN_MS`).
                        (reset + slack + relent::Millis(SELECTION_MARGIN_MS), None)
                    }
                    None => {
                        let (floor, jitter) = match escalation {
                            Some((base, max, percent)) => {
                                k.cooldowns = k.cooldowns.saturating_add(1);
                                let floor = base.saturating_mul(u64::from(k.cooldowns)).min(max);
                                (floor, floor.saturating_mul(percent) / 100)
                            }
                            None => (0, 0),
                        };
                        drawn_from = Some((floor, jitter));
                        let until = now + relent::Millis(floor);
                        k.escalated_until = k.escalated_until.max(until);
                        let escalated = relent::Millis(floor + jitter);
                        k.free_by = k.free_by.max(now + cap.max(escalated));
                        k.cools_surely_until = k
                            .cools_surely_until
                            .max(now + relent::Millis(floor.max(least_backoff)));
                        k.cools_at_most_until = k.cools_at_most_until.max(now + cap.max(escalated));
                        (now + escalated.max(backoff_most), Some(until))
                    }
                };
                let (count, after_reset) = (k.cooldowns, k.cooldowns_reset);
                if shortest.is_some() && count >= 2 {
                    self.escalated = true;
                    self.escalated_across_calls |= self.inherited_cooldowns.contains(&key);
                }
                self.restarted_after_reset |= shortest.is_some() && after_reset;
                self.reported_cooldown(now, key, entry, held_until.max(longest), shortest);
                if let Some((floor, jitter)) = drawn_from.filter(|_| shortest.is_some()) {
                    self.cooldown_spread(now, key, entry, held_until, floor, jitter, backoff_most);
                }
            }
            Reason::PermissionDenied => self.excluded.push(key),
            // (Unless the server said the request may succeed as sent.)
            reason if refuses_target(reason) && !truth.says_retry => self.refused.push(target),
            _ => {}
        }
    }

    /// Applies a pool change; returns whether it must end the current sleep.
    fn pool_change(&mut self, now: Time, change: &PoolChange) -> bool {
        if let PoolChange::Added { key, .. } = change {
            self.added_labels.push((key.id, key.label.to_string()));
        }
        if let (PoolChange::Removed { key } | PoolChange::MarkedBad { key, .. }, Some(_)) =
            (change, self.sleeping)
        {
            self.lost_in_sleep.push(*key);
            self.lost_in_this_sleep.push(*key);
        }
        apply_change(&mut self.keys, change);
        // The client's model takes the change directly, so it is not something to share.
        apply_change(&mut self.synced, change);
        let became_usable = match change {
            PoolChange::Added { key, .. } => Some(key.id),
            PoolChange::Restored { key } => {
                self.excluded.retain(|k| k != key);
                self.rejected_here.retain(|k| k != key);
                // A restore ends a re-probe that is out: the key is back on the operator's
                // word, so the probe's answer is an ordinary answer about a ready key. It
                // lifts nothing, and a rejection another call saw after the restore stands
                // against it in the merge (the stricter state wins).
                if self.probing == Some(*key) {
                    self.probing = None;
                }
                Some(*key)
            }
            _ => None,
        };
        let waiting_for_keys = self.sleeping.is_some_and(waits_for_keys);
        let current = self.target;
        waiting_for_keys
            && became_usable.is_some_and(|id| {
                self.key(id).is_some_and(|k| {
                    k.target == current && self.surely_in_play(k) && k.free_by <= now
                })
            })
    }

    /// Invariant 14's other half, for a key removed or marked bad (`change`, already applied)
    /// while the machine sleeps for cooling keys: `Some(true)` when no key of the current
    /// target could be ready by the sleep's end any more (the sleep waits for nothing and
    /// must end now), `Some(false)` when a key surely in play is surely free by then (the
    /// sleep goes on), `None` when the model cannot tell or the sleep waits for something
    /// else. A key that a mark with an end already past frees at once is the first half's
    /// case, not this one.
    fn expect_after_loss(&self, now: Time, change: &PoolChange) -> Option<bool> {
        match change {
            PoolChange::Removed { .. } | PoolChange::MarkedBad { until: None, .. } => {}
            PoolChange::MarkedBad { until: Some(t), .. } if *t > now => {}
            _ => return None,
        }
        let waiting_for_keys = waits_for_keys(self.sleeping?);
        if !waiting_for_keys || now >= self.sleep_until {
            return None;
        }
        let until = self.sleep_until;
        let on_target = || self.keys.iter().filter(|k| k.target == self.target);
        // Surely due before the sleep's end: the machine holds a key's stated reset, which may
        // round apart from the world's clock, so a key due within `SELECTION_MARGIN_MS` of
        // the end may be due just after it in the machine's reading (a fuzzed world: a key
        // due 1 ms after the sleep's end by its own answer, and the sleep moved by 1 ms).
        if on_target().any(|k| {
            self.surely_in_play(k) && k.strikes == 0 && !k.revoked && surely_free(k, until)
        }) {
            return Some(false);
        }
        if on_target().all(|k| !self.in_play(k) || k.blocked_until > until) {
            return Some(true);
        }
        None
    }

    fn action(&mut self, now: Time, action: &Action, input: &Input<'_>, answered_success: bool) {
        if let Some((_, last)) = self.last_send {
            self.benched_since_send |= !self.surely_usable(last, now);
        }
        if self.ended {
            self.violation(now, 6, format!("{} after the call ended", action.kind()));
        }
        // Invariant 23: a `Rotate` announces the send that follows it, and a send with
        // another key than the last one is announced.
        match (self.rotating.take(), action) {
            (Some(to), Action::Send(send)) if (to.target, to.key) != (send.target, send.key) => {
                self.violation(
                    now,
                    23,
                    format!(
                        "a rotation to key {} of target {} followed by a send with key {} of target {}",
                        to.key, to.target, send.key, send.target
                    ),
                );
            }
            (Some(_), Action::Send(_)) => {}
            (Some(to), other) => self.violation(
                now,
                23,
                format!(
                    "a rotation to key {} followed by a {}, not its send",
                    to.key,
                    other.kind()
                ),
            ),
            (None, Action::Send(send)) => {
                if let Some((t, k)) = self.last_send {
                    if (t, k) != (send.target, send.key) {
                        self.violation(
                            now,
                            23,
                            format!(
                                "a send with key {} of target {} after key {k} of target {t}, with no rotation",
                                send.key, send.target
                            ),
                        );
                    }
                }
            }
            (None, _) => {}
        }
        if let Input::Answer(truth) = input {
            self.server_words(now, action, truth);
        }
        if let Action::Sleep {
            until,
            reason: SleepReason::ServerHint { .. },
        } = action
        {
            self.capped_server_wait(now, *until);
        }
        match action {
            Action::Send(send) => {
                // Every send with another key than the last is the selection's choice at
                // the moment it goes, whatever ended the sleep before it.
                let lost = self.lost_in_this_sleep.contains(&send.key);
                self.selection_order(now, send, lost);
                self.same_key_after_transient(now, send);
                if let Input::Answer(truth) = input {
                    if truth.reason == Reason::ContentFilter
                        && !truth.says_retry
                        && !self.policy.fallback_on_content_filter
                    {
                        self.violation(
                            now,
                            5,
                            format!("a send to target {} after a content filter refused the request, which the policy does not fall back on", send.target),
                        );
                    }
                    self.early_fallback(now, send, truth);
                    if send.target == self.target {
                        self.upstream_fallback(now, truth, "a retry of the same target");
                        self.overload_ladder(now, truth, "a retry of the same target");
                    }
                }
                self.send(now, send)
            }
            Action::Sleep { until, reason } => {
                if let Input::Answer(truth) = input {
                    self.upstream_fallback(now, truth, "a sleep");
                    self.overload_ladder(now, truth, "a sleep");
                    self.long_wait(now, truth, *until, reason);
                }
                if self.committed && !self.restart_granted {
                    self.violation(now, 12, "a sleep after the response was committed");
                }
                if *until >= self.deadline {
                    self.violation(
                        now,
                        4,
                        format!(
                            "sleep until {until} ends at or after the deadline {}, when no send may start",
                            self.deadline
                        ),
                    );
                }
                if *until <= now {
                    self.violation(now, 4, format!("a sleep until {until}, which is not later"));
                }
                let after_rate_limit = match reason {
                    SleepReason::AllKeysCooling => true,
                    SleepReason::Backoff { after } | SleepReason::ServerHint { after, .. } => {
                        *after == Reason::RateLimited
                    }
                    // A wait for the retry budget: another ready key would cost the same
                    // retry the budget cannot pay.
                    _ => false,
                };
                let budget_wait = matches!(reason, SleepReason::RetryBudget { .. });
                if budget_wait {
                    self.budget_wait(now, *until);
                }
                if self.guarded_now {
                    self.guarded_sleep(now);
                }
                if self.guard_maybe {
                    // A backoff the ejection guard chose waits for the target as a whole,
                    // with other keys ready or not (invariant 29).
                } else {
                    if let SleepReason::Backoff {
                        after: Reason::RateLimited,
                    }
                    | SleepReason::ServerHint {
                        after: Reason::RateLimited,
                        ..
                    } = reason
                    {
                        // Labelled as the failed key's own wait: no other key of the target
                        // may be waiting too (that sleep is `all_keys_cooling`).
                        let failed = self.last_send.map(|(_, k)| k);
                        let other = self.keys.iter().find(|k| {
                            Some(k.id) != failed
                                && k.target == self.target
                                && self.surely_in_play(k)
                                && k.blocked_until > now
                        });
                        if let Some(k) = other {
                            self.violation(
                                now,
                                9,
                                format!(
                                    "a sleep labelled as one key's own wait while key {} of target {} is waiting too",
                                    k.id, self.target
                                ),
                            );
                        }
                    }
                    if after_rate_limit {
                        let ready = self.keys.iter().find(|k| {
                            k.target == self.target && self.surely_in_play(k) && k.free_by <= now
                        });
                        if let Some(k) = ready {
                            self.violation(
                                now,
                                9,
                                format!(
                                    "sleep after a rate limit while key {} of target {} is ready",
                                    k.id, self.target
                                ),
                            );
                        }
                    }
                }
                // Retries after an overload spend the deadline, not the transient limit.
                let after_overload = matches!(
                    reason,
                    SleepReason::Backoff {
                        after: Reason::Overloaded
                    } | SleepReason::ServerHint {
                        after: Reason::Overloaded,
                        ..
                    }
                );
                // A wait for a breaker is no retry (issue #14): it is not counted. A wait for
                // a later target's breaker means the call fell back to it.
                // A breaker wait is labelled as an overload's backoff (the breaker opened on
                // the provider's faults); a sleep with another label that happens to end when
                // a breaker closes is no breaker wait.
                let breaker_wait = if after_overload {
                    self.breaker_waited_for(now, *until)
                } else {
                    None
                };
                // A backoff after a transient fault whose retry the budget cannot pay is no
                // wait while a later target could take the call now: the machine falls back.
                if let (
                    None,
                    SleepReason::Backoff { after } | SleepReason::ServerHint { after, .. },
                ) = (breaker_wait, reason)
                {
                    let transient = is_transient(*after) || self.last_says_retry;
                    if transient && !self.budget_pays(now, *after) {
                        if let Some(t) = self.fallback_ready(now) {
                            self.violation(
                                now,
                                19,
                                format!("a backoff after {after} whose retry the budget cannot pay, while target {t} could take the call now"),
                            );
                        }
                    }
                }
                // The call's first backoff, after its first answer, drew from a range the
                // policy alone fixes (invariant 30). A breaker's wait is not a draw.
                if let (None, SleepReason::Backoff { after }, Input::Answer(_)) =
                    (breaker_wait, reason, input)
                {
                    if self.sends == 1 && !self.slept && *after != Reason::RateLimited {
                        self.first_backoff(now, *until, *after);
                    } else if *after != Reason::RateLimited {
                        self.later_backoff(now, *until, *after);
                    }
                }
                // A backoff or a server's wait after an answer, on the way that draws a
                // backoff (not a breaker's wait), is a retry the next draw counts.
                if let (
                    None,
                    SleepReason::Backoff { .. } | SleepReason::ServerHint { .. },
                    Input::Answer(_),
                ) = (breaker_wait, reason, input)
                {
                    self.drawn_here += 1;
                }
                if let Some(t) = breaker_wait.filter(|_| !budget_wait) {
                    self.breaker_wait_allowed(now, t);
                }
                match breaker_wait {
                    // Nor is a wait for the budget's refill: it follows a wait that counted.
                    // But straight after an answer, a wait for the budget or for this
                    // target's breaker follows a backoff that drew no time, and that retry
                    // counted.
                    _ if budget_wait => self.retry_before_gate(input),
                    Some(t) if t == self.target => self.retry_before_gate(input),
                    None if !after_overload => self.transient += 1,
                    None => {}
                    Some(t) if t > self.target => {
                        self.target = t;
                        self.target_sends = 0;
                        self.transient = 0;
                        self.transient_maybe = 0;
                        self.target_waits = 0;
                        self.target_overloads = 0;
                        self.drawn_here = 0;
                    }
                    Some(_) => {}
                }
                self.target_waits += 1;
                self.slept = true;
                self.sleeping = Some(*reason);
                self.sleep_until = *until;
                self.lost_in_this_sleep.clear();
                self.fresh_answer = None;
            }
            Action::Rotate { from, to, why } => self.rotate(now, *from, *to, *why),
            Action::Succeeded { .. } => {
                if !answered_success {
                    self.violation(now, 18, "`Succeeded` without a successful answer");
                }
                self.committed = true;
                self.restart_granted = false;
            }
            Action::Abort(abort) => {
                self.ended = true;
                if abort.message.trim().is_empty() {
                    self.violation(now, 8, format!("abort {} without a message", abort.reason));
                }
                self.abort_message(now, abort);
                // Invariant 21: `circuit_open` only when waiting for the breaker does not fit:
                // a breaker that admits again before the deadline, with sends left, is waited
                // for (the time is the abort's own promise of a retry).
                if let (AbortReason::CircuitOpen, Some(t)) = (abort.reason, abort.retry_at) {
                    if t < self.deadline
                        && self.sends < self.policy.max_attempts
                        && self.target_sends < self.policy.max_attempts_per_target
                    {
                        self.violation(
                            now,
                            21,
                            format!("`circuit_open` although the breaker admits again at {t}, before the deadline, and sends are left"),
                        );
                    }
                }
                if let Some(fragment) = canary::leaked(&abort.message) {
                    self.violation(
                        now,
                        15,
                        format!("a secret canary fragment {fragment:?} in the abort message"),
                    );
                }
                // A wait of a day or more is a clamped hint whose true end is unknown: no
                // retry time is promised for it.
                if let Some(t) = abort.retry_at.filter(|t| t.since(now).0 >= A_DAY_MS) {
                    self.violation(
                        now,
                        8,
                        format!(
                            "abort `{}` promises a retry at {t}, a day or more away: a clamped wait's end is unknown",
                            abort.reason
                        ),
                    );
                }
                // A message must not contradict itself: "the only way forward ends past the
                // deadline" with a retry time before the deadline, or the reverse.
                let contradiction = match (abort.reason, abort.retry_at) {
                    (AbortReason::DeadlineExceeded, Some(t)) => {
                        t < self.deadline && now < self.deadline
                    }
                    (AbortReason::ServerWaitTooLong, Some(t)) => t >= self.deadline,
                    _ => false,
                };
                if contradiction {
                    self.violation(
                        now,
                        8,
                        format!(
                            "abort `{}` says a retry could succeed at {:?}, against the deadline {}",
                            abort.reason, abort.retry_at, self.deadline
                        ),
                    );
                }
                self.abort_reason(now, abort.reason, input);
                self.overload_abort(now, abort.reason);
            }
        }
    }

    /// The keys of target `t`, in the pool's order (configured, then added).
    fn target_keys(&self, t: usize) -> impl Iterator<Item = (usize, &KeyModel)> {
        self.keys.iter().filter(move |k| k.target == t).enumerate()
    }

    /// Invariant 22: a key the machine chooses is the one its selection names among the
    /// keys the model knows are ready: no such key comes before it in configured order
    /// (priority), in order after the last key used (round robin), or by last use
    /// (least recently used, never-used keys first, ties in configured order). A resend
    /// of the key just used is a retry, not a choice.
    ///
    /// With `lost` (the key sent last was removed or marked bad since), a resend of it is a
    /// choice too: the machine forgot it as the key to resume with.
    fn selection_order(&mut self, now: Time, send: &relent::Send, lost: bool) {
        if !lost && self.last_send.map(|(_, k)| k) == Some(send.key) {
            return;
        }
        let t = send.target;
        let count = self.target_keys(t).count();
        let Some(chosen) = self
            .target_keys(t)
            .find(|(_, k)| k.id == send.key)
            .map(|(i, k)| (i, k.last_used))
        else {
            return;
        };
        let cursor = self.cursors.get(t).copied().unwrap_or(0);
        // Where a key stands in the selection's order: lower goes first.
        let rank = |i: usize, last_used: Option<Time>| -> (u64, usize) {
            match self.policy.selection {
                Selection::Priority => (0, i),
                Selection::RoundRobin => (0, (i + count - cursor % count) % count),
                Selection::LeastRecentlyUsed => (last_used.map_or(0, |t| t.0 + 1), i),
            }
        };
        let chosen_rank = rank(chosen.0, chosen.1);
        let ahead = self
            .target_keys(t)
            .filter(|(_, k)| k.id != send.key && self.surely_in_play(k) && surely_free(k, now))
            .find(|(i, k)| rank(*i, k.last_used) < chosen_rank)
            .map(|(_, k)| k.id);
        if let Some(ahead) = ahead {
            self.violation(
                now,
                22,
                format!(
                    "sent key {} of target {t} while key {ahead}, ready, comes first by {:?} selection",
                    send.key, self.policy.selection
                ),
            );
        }
    }

    /// A key's label, as configured or added.
    fn label(&self, id: KeyId) -> Option<&str> {
        self.names
            .labels
            .iter()
            .chain(&self.added_labels)
            .find(|(k, _)| *k == id)
            .map(|(_, l)| l.as_str())
    }

    /// Invariant 35: an abort message says what happened and what to do, in terms the
    /// model derives from the policy, the targets and the actions: see the module doc.
    fn abort_message(&mut self, now: Time, abort: &relent::Abort) {
        let m = abort.message.as_str();
        let mut missing: Vec<String> = Vec::new();
        let mut need = |what: String| {
            if !m.contains(&what) {
                missing.push(what);
            }
        };
        // A message about keys names the target whose keys answered last: the target of
        // the last send, though the call may have moved on to a fallback since without a
        // send (and found nothing usable there). Any other message names the target the
        // call gave up on: the last one sent to, or a later one it moved to without a send
        // (a fallback that found its limits spent).
        let about_keys = matches!(
            abort.reason,
            AbortReason::AuthPermanent | AbortReason::QuotaExhausted
        );
        let named_target = match self.last_send {
            Some((t, _)) if about_keys => t,
            _ => self.target,
        };
        let targets = &self.names.targets;
        let gave_up_on = || {
            targets[self.target.min(targets.len())..]
                .iter()
                .find(|(p, model)| m.contains(p.as_str()) && m.contains(model.as_str()))
        };
        let found = if about_keys { None } else { gave_up_on() };
        let Some((provider, model)) = found.or(targets.get(named_target)).cloned() else {
            return;
        };
        let last_key = self.last_send.map(|(_, k)| k);
        match abort.reason {
            AbortReason::AuthPermanent | AbortReason::QuotaExhausted => {
                need(provider.clone());
                // The key whose answer ended the call, and every key of the target this
                // call saw rejected (an auth_permanent names them all).
                // (An auth_permanent names it when a rejection ended the call.)
                let ended_by_key = abort.reason == AbortReason::QuotaExhausted
                    || self.last_truth == Some(Reason::KeyRejected);
                let mut named: Vec<KeyId> = last_key.filter(|_| ended_by_key).into_iter().collect();
                if abort.reason == AbortReason::AuthPermanent {
                    named.extend(self.rejected_here.iter().copied().filter(|k| {
                        self.key(*k)
                            .is_some_and(|m| m.target == named_target && m.revoked && !m.removed)
                    }));
                }
                for k in named {
                    if let Some(label) = self.label(k) {
                        need(format!("\"{label}\""));
                    }
                }
            }
            AbortReason::NotRetryable => {
                need(provider.clone());
                need(model.clone());
                let advice = match self.last_truth {
                    Some(Reason::ContextOverflow) => Some("context window"),
                    Some(Reason::PayloadTooLarge) => Some("smaller"),
                    Some(Reason::ContentFilter) => Some("content filter"),
                    Some(Reason::ModelNotFound) => Some("model name"),
                    Some(Reason::BlockedByWaf) => Some("firewall"),
                    Some(Reason::TlsCertificate) => Some("certificate"),
                    Some(Reason::MalformedRequest) => Some("invalid"),
                    _ => None,
                };
                if let Some(advice) = advice {
                    need(advice.to_string());
                }
            }
            AbortReason::ServerWaitTooLong => {
                need(provider.clone());
                // The cap is named when it is what the wait ran into: the policy has one
                // and the wait (unknown, or until the promised retry) is longer.
                let over_cap = self
                    .policy
                    .max_server_wait_ms
                    .filter(|cap| abort.retry_at.is_none_or(|t| t.since(now).0 > *cap));
                match over_cap {
                    Some(cap) => need(format!("max_server_wait_ms ({cap} ms)")),
                    None if m.contains("max_server_wait_ms") => {
                        missing.push("no mention of a cap the wait did not run into".into())
                    }
                    None => {}
                }
            }
            AbortReason::AttemptsExhausted
            | AbortReason::RetryBudgetExhausted
            | AbortReason::CircuitOpen
            | AbortReason::PermissionDenied
            | AbortReason::FailedAfterCommit
            | AbortReason::NoUsableKey
            | AbortReason::ServerSaidNoRetry => need(provider.clone()),
            _ => {}
        }
        // The number of sends, where the message counts them, in good English.
        if matches!(
            abort.reason,
            AbortReason::DeadlineExceeded
                | AbortReason::AttemptsExhausted
                | AbortReason::RetryBudgetExhausted
                | AbortReason::Cancelled
        ) {
            let n = self.sends;
            let counted = if n == 1 {
                m.contains("1 attempt") && !m.contains("1 attempts")
            } else {
                m.contains(&format!("{n} attempts"))
            };
            if !counted {
                missing.push(format!("the count of {n} send(s)"));
            }
        }
        // A promised retry time is stated.
        if let Some(t) = abort.retry_at {
            if matches!(
                abort.reason,
                AbortReason::DeadlineExceeded
                    | AbortReason::ServerWaitTooLong
                    | AbortReason::CircuitOpen
            ) && !m.contains(&t.to_string())
            {
                missing.push(format!("the retry time {t}"));
            }
        }
        if !missing.is_empty() {
            self.violation(
                now,
                35,
                format!(
                    "the `{}` message lacks {}: {m:?}",
                    abort.reason,
                    missing.join(", ")
                ),
            );
        }
    }

    /// Whether the model knows key `id` can be sent now: in play, not rejected in this call
    /// or elsewhere, and surely free.
    fn surely_usable(&self, id: KeyId, now: Time) -> bool {
        self.key(id).is_some_and(|k| {
            self.surely_in_play(k) && k.strikes == 0 && !k.revoked && surely_free(k, now)
        })
    }

    /// Invariant 34: after a transient fault, a send to the same target with another key
    /// while the failed key is, for the model, surely still usable.
    fn same_key_after_transient(&mut self, now: Time, send: &relent::Send) {
        let Some((target, last)) = self.last_send else {
            return;
        };
        let transient = self.last_truth.is_some_and(is_transient);
        if send.target != target || send.key == last || !transient {
            return;
        }
        if !self.benched_since_send && !self.lost_in_sleep.contains(&last) {
            self.violation(
                now,
                34,
                format!(
                    "key {} of target {target} retried a {} with key {last}, which is still usable",
                    send.key,
                    self.last_truth.map_or("?", Reason::name)
                ),
            );
        }
    }

    /// Invariant 24: after a server error, a dropped connection, a timeout, an unknown
    /// fault or an overload, the call moves to a later target only "after a few tries"
    /// (the behaviour table): not while a retry of this target is due for sure. A retry is
    /// due when the transient-retry and send limits, the overload count before fallback,
    /// the retry budget and this target's breaker all allow it, the server did not say no,
    /// and the longest wait it could take (the server's announced reset, else the backoff's
    /// cap) is within `max_wait_before_fallback_ms` and ends before the deadline.
    fn early_fallback(&mut self, now: Time, send: &relent::Send, truth: &Truth) {
        let r = truth.reason;
        let retried_here = matches!(
            r,
            Reason::ServerError
                | Reason::Timeout
                | Reason::ConnectionFailed
                | Reason::Unknown
                | Reason::Overloaded
        );
        if send.target <= self.target || !retried_here || truth.says_no_retry {
            return;
        }
        let p = &self.policy;
        let overload = r == Reason::Overloaded;
        let backoff = if overload {
            p.congestion_backoff
        } else {
            p.backoff
        };
        // The wait before the retry: the announced reset, else the transient fault's
        // stated wait (a zero wait says nothing: the backoff), else the longest backoff.
        let stated = truth.stated_wait_ms.filter(|w| *w > 0);
        let wait = match (truth.reset_at, stated) {
            (Some(at), _) => at.0.saturating_sub(now.0),
            (None, Some(w)) => w,
            (None, None) => backoff.cap_ms,
        };
        // A server's wait over the caller's cap is not slept on (a zero one is measured
        // by its backoff), nor one of a day or more (invariant 32).
        let within_cap = wait < A_DAY_MS
            && match (truth.stated_wait_ms, p.max_server_wait_ms) {
                (Some(_), Some(cap)) => wait <= cap,
                _ => true,
            };
        let due = (overload
            || self.transient + self.transient_maybe < p.transient_retries_per_target)
            && !(overload && self.target_overloads >= p.overload_attempts_before_fallback)
            && self.sends < p.max_attempts
            && self.target_sends < p.max_attempts_per_target
            && self.budget_pays(now, r)
            && matches!(
                self.overload.verdict(p, self.target, now),
                Verdict::Pass | Verdict::Probe
            )
            && wait <= p.max_wait_before_fallback_ms
            && within_cap
            && now.0.saturating_add(wait) < self.deadline.0
            // A key of the target to retry with: the failed one, unless a pool change took
            // it while the request was out (then a backoff that draws no time moves on).
            && self.keys.iter().any(|k| {
                k.target == self.target && self.surely_in_play(k) && k.free_by <= now
            });
        if due {
            self.violation(
                now,
                24,
                format!(
                    "moved to target {} after {r} on target {} while a retry there was due",
                    send.target, self.target
                ),
            );
        }
    }

    /// A send moves the round-robin cursor past its key and stamps the key's last use.
    fn note_used(&mut self, t: usize, key: KeyId, now: Time) {
        let count = self.target_keys(t).count();
        let index = self
            .target_keys(t)
            .find(|(_, k)| k.id == key)
            .map(|(i, _)| i);
        if let (Some(i), Some(cursor)) = (index, self.cursors.get_mut(t)) {
            *cursor = (i + 1) % count;
        }
        if let Some(k) = self.key_mut(key) {
            k.last_used = Some(now);
        }
    }

    /// Invariant 23: a rotation starts from the key the call last sent with (none before
    /// the first send) and names the fault of the call's last answer.
    fn rotate(&mut self, now: Time, from: Option<relent::KeyRef>, to: relent::KeyRef, why: Reason) {
        let last = from.map(|f| (f.target, f.key));
        // Invariant 29: after a rate limit the ejection guard read as shared by the keys
        // of the target, another key of it draws the same answer.
        if self.guarded_now && to.target == self.target {
            self.violation(
                now,
                29,
                format!(
                    "a rotation to key {} of target {} after a rate limit the ejection guard read as shared by its keys",
                    to.key, to.target
                ),
            );
        }
        if last != self.last_send {
            self.violation(
                now,
                23,
                format!(
                    "a rotation from {last:?}, but the last send was with {:?}",
                    self.last_send
                ),
            );
        }
        if let Some(answer) = self.last_truth.filter(|r| *r != why) {
            self.violation(
                now,
                23,
                format!("a rotation after {why}, but the last answer was {answer}"),
            );
        }
        self.rotating = Some(to);
    }

    fn send(&mut self, now: Time, send: &relent::Send) {
        if self.committed && !self.restart_granted {
            self.violation(now, 12, "a send after the response was committed");
        }
        self.overload_send(now, send);
        if now >= self.deadline {
            self.violation(
                now,
                4,
                format!(
                    "a send at {now}, at or after the deadline {}",
                    self.deadline
                ),
            );
        }
        match self.idempotency {
            None => self.idempotency = Some(send.idempotency_key),
            Some(first) if first != send.idempotency_key => self.violation(
                now,
                17,
                "the sends of one call carry different idempotency keys",
            ),
            Some(_) => {}
        }
        let timeout = relent::Millis(self.policy.attempt_timeout_ms);
        if send.timeout_at > now + timeout || send.timeout_at <= now {
            self.violation(
                now,
                4,
                format!("attempt timeout at {} for a send at {now}", send.timeout_at),
            );
        }
        // Counting: a resend of the same key right after a transient fault, with no sleep,
        // is a transient retry too.
        let same_key_again = self.last_send.map(|(_, k)| k) == Some(send.key);
        // (After a wait or at once.)
        self.retried_when_told |= same_key_again
            && self.last_says_retry
            && self.last_send.map(|(t, _)| t) == Some(send.target)
            && self.last_truth.is_some_and(|r| !is_transient(r));
        if let Some(truth) = self.fresh_answer.take() {
            // A resend straight after a transient fault retries the target (with another of
            // its keys when the first is no longer usable); after other faults only the same
            // key again is a retry.
            if send.target == self.target && (same_key_again || truth.transient()) {
                self.target_waits += 1;
                self.retry_with_no_wait(truth, same_key_again);
            }
        }
        // Invariant 26: a retry after a timeout or a dropped connection on a fresh one.
        if matches!(
            self.last_truth,
            Some(Reason::Timeout | Reason::ConnectionFailed)
        ) && self.last_send.map(|(t, _)| t) == Some(send.target)
            && !send.fresh_connection
        {
            self.violation(
                now,
                26,
                format!(
                    "send {} after {} reuses the pooled connection",
                    send.attempt,
                    self.last_truth.map_or("?", |r| r.name())
                ),
            );
        }
        // Invariant 27: after a context overflow, only a known larger window helps.
        if send.target > self.target && self.last_truth == Some(Reason::ContextOverflow) {
            let current = self.contexts.get(self.target).copied().flatten();
            let next = self.contexts.get(send.target).copied().flatten();
            let larger = next.is_some_and(|n| current.is_none_or(|c| n > c));
            if !larger {
                self.violation(
                    now,
                    27,
                    format!(
                        "after a context overflow on target {} ({current:?} tokens), a move to target {} ({next:?} tokens)",
                        self.target, send.target
                    ),
                );
            }
        }
        if send.target != self.target {
            if send.target < self.target {
                self.violation(
                    now,
                    5,
                    format!(
                        "climbed back up the chain from target {} to {}",
                        self.target, send.target
                    ),
                );
            }
            self.target = send.target;
            self.target_sends = 0;
            self.transient = 0;
            self.transient_maybe = 0;
            self.target_waits = 0;
            self.target_overloads = 0;
            self.drawn_here = 0;
        }
        self.sends += 1;
        self.target_sends += 1;
        if send.attempt != self.sends {
            self.violation(
                now,
                3,
                format!(
                    "send numbered {} is send {} of the call",
                    send.attempt, self.sends
                ),
            );
        }
        if self.sends > self.policy.max_attempts
            || self.target_sends > self.policy.max_attempts_per_target
        {
            self.violation(
                now,
                3,
                format!(
                    "send {} ({} to target {}) exceeds the limits",
                    self.sends, self.target_sends, send.target
                ),
            );
        }
        if self.transient > self.policy.transient_retries_per_target {
            self.violation(
                now,
                13,
                format!(
                    "{} transient retries on target {}, over the limit",
                    self.transient, send.target
                ),
            );
        }
        if self.refused.contains(&send.target) {
            self.violation(
                now,
                5,
                format!(
                    "resent to target {} after it refused the request",
                    send.target
                ),
            );
        }
        let retry_allowed = self.retry_allowed.take();
        if let Some(k) = self.key(send.key).filter(|k| now < k.escalated_until) {
            let (n, until) = (k.cooldowns, k.escalated_until);
            self.violation(
                now,
                25,
                format!(
                    "send at {now} with key {}, cooled after hint-less rate limit {n} in a row until at least {until}",
                    send.key
                ),
            );
        }
        match self.key(send.key) {
            None => self.violation(now, 2, format!("send with unknown key {}", send.key)),
            Some(k) => {
                let k = k.clone();
                let probe = self.reprobe_allowed(&k, now);
                let revoked = k.revoked || k.strikes >= 2 || self.rejected_here.contains(&k.id);
                self.probing = (probe && revoked).then_some(k.id);
                let problem = if k.target != send.target {
                    Some(format!("key {} belongs to target {}", k.id, k.target))
                } else if k.removed {
                    Some(format!("key {} was removed", k.id))
                } else if k.marked_dead {
                    Some(format!("key {} was marked bad for good", k.id))
                } else if (k.revoked || k.strikes >= 2) && !probe && k.lifted_at.is_none() {
                    Some(format!(
                        "key {} was rejected and may not be used again",
                        k.id
                    ))
                } else if self.excluded.contains(&k.id) {
                    Some(format!("key {} is not entitled to this target", k.id))
                } else if now < k.blocked_until {
                    Some(format!(
                        "key {} is blocked until {} (announced reset, outside mark or quota cooldown)",
                        k.id, k.blocked_until
                    ))
                } else if self.rejected_here.contains(&k.id)
                    && retry_allowed != Some(k.id)
                    && !probe
                {
                    Some(format!(
                        "key {} was rejected and resent later than at once",
                        k.id
                    ))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    self.violation(now, 2, format!("send at {now}: {problem}"));
                }
            }
        }
        self.last_send = Some((send.target, send.key));
        self.lost_in_sleep.clear();
        self.lost_in_this_sleep.clear();
        self.benched_since_send = false;
        self.note_used(send.target, send.key, now);
        self.sleeping = None;
    }

    /// Counts a retry of the current target that drew a backoff of no time right after
    /// `truth`: a send at once, or a wait for the retry budget or the target's breaker
    /// straight after the answer. After a transient fault (not an overload, which spends
    /// the deadline instead) it is a transient retry. After a rate limit, a resend of the
    /// same key (`same_key`) is one when the ejection guard held the key (a backoff on the
    /// target), but not when the key was benched for no time and picked again; where the
    /// model cannot tell whether the guard held, the machine may have counted it.
    fn retry_with_no_wait(&mut self, truth: Truth, same_key: bool) {
        if truth.transient() && truth.reason != Reason::Overloaded {
            self.transient += 1;
        } else if truth.reason == Reason::RateLimited && !truth.transient() && same_key {
            if self.guarded_now {
                self.transient += 1;
            } else if self.guard_maybe {
                self.transient_maybe += 1;
            }
        }
    }

    /// A wait for the retry budget or a breaker that `input` caused: straight after an
    /// answer (or a restarted stream's failure, a dropped connection), the retry it gates
    /// drew a backoff of no time (`retry_with_no_wait`).
    fn retry_before_gate(&mut self, input: &Input<'_>) {
        let truth = match input {
            Input::Answer(truth) => *truth,
            Input::StreamFailed => Truth::of(Reason::ConnectionFailed),
            _ => return,
        };
        self.retry_with_no_wait(truth, true);
    }

    /// Whether a sleep until `until` waits for a breaker the model has open (or with its
    /// probes out) on the way forward, until the very time the model says it admits a send.
    fn breaker_wait(&self, now: Time, until: Time) -> bool {
        self.breaker_waited_for(now, until).is_some()
    }

    /// The target a breaker wait until `until` waits for (see [`Self::breaker_wait`]).
    fn breaker_waited_for(&self, now: Time, until: Time) -> Option<usize> {
        let mut blocked = (self.target..self.contexts.len()).filter(|t| {
            matches!(
                self.overload.verdict(&self.policy, *t, now),
                Verdict::Open(u) | Verdict::ProbesOut(u) if u == until
            )
        });
        let first = blocked.next()?;
        // Breakers of several targets may admit a send again at the same instant. The
        // machine, held back at one, falls back to the next that has a key it can use now,
        // is held back there too, and so on: it waits at the last of them it reached.
        let reachable = |t: usize| {
            !self.refused.contains(&t)
                && self
                    .keys
                    .iter()
                    .any(|k| k.target == t && self.in_play(k) && surely_free(k, now))
        };
        Some(blocked.rfind(|t| reachable(*t)).unwrap_or(first))
    }

    /// Invariants 19–21 (issue #14) for a send: a retry is paid from the budget, which
    /// never goes below zero; no send to an open target; a half-open target admits no more
    /// sends than its probes.
    fn overload_send(&mut self, now: Time, send: &relent::Send) {
        // The first send to a target (the call's, or a fallback's) is free.
        let retry_after = self.last_truth.filter(|r| {
            self.target_sends > 0 && send.target == self.target && !overload_model::free_after(*r)
        });
        let cost = retry_after.map_or(0, |r| OverloadModel::cost(&self.policy, r));
        if !self.overload.affords(&self.policy, now, cost) {
            let balance = self.overload.tokens_at(&self.policy, now);
            self.violation(
                now,
                19,
                format!("a retry costing {cost} tokens sent with {balance} left: the budget would go below zero"),
            );
        }
        self.overload.pay(&self.policy, now, cost);
        self.charged = cost;
        match self.overload.verdict(&self.policy, send.target, now) {
            Verdict::Open(until) => self.violation(
                now,
                20,
                format!(
                    "a send to target {} whose breaker is open until {until}",
                    send.target
                ),
            ),
            Verdict::ProbesOut(_) => self.violation(
                now,
                21,
                format!(
                    "a send to target {} whose half-open breaker has all {} probes out",
                    send.target, self.policy.overload.breaker.half_open_probes
                ),
            ),
            Verdict::Pass | Verdict::Probe => {}
        }
        self.overload.sent(&self.policy, send.target, now);
    }

    /// Invariant 19 for a wait for the retry budget: only when the model's budget cannot
    /// pay for the retry now, and ending exactly when its refill does.
    /// Whether the model's budget pays now for a retry after `reason` on the current target
    /// (the first send to a target, and a move after a key's own fault, are free).
    fn budget_pays(&self, now: Time, reason: Reason) -> bool {
        let cost = if self.target_sends > 0 && !overload_model::free_after(reason) {
            OverloadModel::cost(&self.policy, reason)
        } else {
            0
        };
        self.overload.affords(&self.policy, now, cost)
    }

    /// A later target that could take the call now, after `reason`, when the send limits,
    /// the deadline and the budget allow a send at all (invariants 28 and 29).
    fn fallback_due(&self, now: Time, reason: Reason) -> Option<usize> {
        if self.sends >= self.policy.max_attempts
            || now >= self.deadline
            || !self.budget_pays(now, reason)
        {
            return None;
        }
        self.fallback_ready(now)
    }

    /// Invariant 29: a rate limit the ejection guard held back is one the keys share, so
    /// the call waits on its target only when no later target could take it now (the
    /// limits and the budget allowing a send, as for invariant 28).
    fn guarded_sleep(&mut self, now: Time) {
        if let Some(t) = self.fallback_due(now, Reason::RateLimited) {
            self.violation(
                now,
                29,
                format!(
                    "a sleep after a rate limit the ejection guard read as shared by target {}, while target {t} could take the call now",
                    self.target
                ),
            );
        }
    }

    /// Invariants 9 and 24, on a sleep until `until` straight after an answer: a wait longer
    /// than `max_wait_before_fallback_ms` is no wait while a later target could take the
    /// call now. That holds for a backoff (or the server's wait) after a transient fault
    /// (24) and for a wait for a key of the target (every key cooling, or the failed key's
    /// own wait) after a fault of a key (9). A rate limit the ejection guard may have held
    /// is left to invariant 29.
    fn long_wait(&mut self, now: Time, truth: &Truth, until: Time, reason: &SleepReason) {
        let waited = until.since(now).0;
        if self.guard_maybe
            || truth.says_no_retry
            || waited <= self.policy.max_wait_before_fallback_ms
        {
            return;
        }
        let key_fault = matches!(
            truth.reason,
            Reason::RateLimited
                | Reason::QuotaExhausted
                | Reason::KeyRejected
                | Reason::PermissionDenied
        );
        let (invariant, waited_for) = match reason {
            SleepReason::Backoff { .. } | SleepReason::ServerHint { .. } if truth.transient() => {
                (24, "on")
            }
            SleepReason::AllKeysCooling if key_fault => (9, "for a key of"),
            SleepReason::Backoff { after } | SleepReason::ServerHint { after, .. }
                if key_fault && *after == Reason::RateLimited =>
            {
                (9, "for a key of")
            }
            _ => return,
        };
        if let Some(t) = self.fallback_due(now, truth.reason) {
            self.violation(
                now,
                invariant,
                format!(
                    "a wait of {waited} ms {waited_for} target {} after {}, longer than max_wait_before_fallback_ms, while target {t} could take the call now",
                    self.target, truth.reason
                ),
            );
        }
    }

    /// Invariant 24, the other way: after the policy's `overload_attempts_before_fallback`
    /// overloads on the current target, the call moves on when a later target could take
    /// it now and the limits and the budget allow a send; `instead` is what it did.
    fn overload_ladder(&mut self, now: Time, truth: &Truth, instead: &str) {
        if truth.reason != Reason::Overloaded
            || truth.says_no_retry
            || self.target_overloads < self.policy.overload_attempts_before_fallback
        {
            return;
        }
        if let Some(t) = self.fallback_due(now, truth.reason) {
            self.violation(
                now,
                24,
                format!(
                    "{instead} after {} overloads on target {}, while target {t} could take the call now",
                    self.target_overloads, self.target
                ),
            );
        }
    }

    /// Invariant 28: after an aggregator's upstream rate limit (the key is fine, the
    /// upstream provider is busy) the call falls back at once when a later target could
    /// take it now and the limits and the budget allow a send; `instead` is what it did.
    fn upstream_fallback(&mut self, now: Time, truth: &Truth, instead: &str) {
        if truth.reason != Reason::UpstreamRateLimited {
            return;
        }
        if let Some(t) = self.fallback_due(now, truth.reason) {
            self.violation(
                now,
                28,
                format!(
                    "{instead} after an upstream rate limit on target {}, while target {t} could take the call now",
                    self.target
                ),
            );
        }
    }

    /// A later target the call could move to now, as far as the model is sure: it has not
    /// refused the request, its breaker admits a send, and a key of it is surely ready.
    fn fallback_ready(&self, now: Time) -> Option<usize> {
        self.keys
            .iter()
            .filter(|k| {
                k.target > self.target
                    && !self.refused.contains(&k.target)
                    && self.surely_in_play(k)
                    && surely_free(k, now)
            })
            .map(|k| k.target)
            .find(|t| {
                matches!(
                    self.overload.verdict(&self.policy, *t, now),
                    Verdict::Pass | Verdict::Probe
                )
            })
    }

    /// Invariant 21 for a wait on target `t`'s breaker: a send must be able to follow it
    /// (on `t`, the limits not spent), and no later target could take the call now (the
    /// machine falls back before it waits; after a context overflow only a larger window
    /// would do, which the model does not weigh, so that case is left out).
    fn breaker_wait_allowed(&mut self, now: Time, t: usize) {
        let on_t = if t == self.target {
            self.target_sends
        } else {
            0
        };
        if self.sends >= self.policy.max_attempts || on_t >= self.policy.max_attempts_per_target {
            self.violation(
                now,
                21,
                format!(
                    "a wait for target {t}'s breaker after {} sends ({on_t} on it), when the limits allow no more",
                    self.sends
                ),
            );
        }
        let later = self
            .fallback_ready(now)
            .filter(|u| *u > t && self.last_truth != Some(Reason::ContextOverflow));
        if let Some(u) = later {
            self.violation(
                now,
                21,
                format!("a wait for target {t}'s breaker while target {u} could take the call now"),
            );
        }
    }

    fn budget_wait(&mut self, now: Time, until: Time) {
        // A wait is for a send: none may be left after it, and a free fallback comes first.
        if self.sends >= self.policy.max_attempts
            || self.target_sends >= self.policy.max_attempts_per_target
        {
            self.violation(
                now,
                19,
                format!(
                    "a wait for the retry budget after {} sends ({} on this target), when the limits allow no more",
                    self.sends, self.target_sends
                ),
            );
        }
        if let Some(t) = self.fallback_ready(now) {
            self.violation(
                now,
                19,
                format!("a wait for the retry budget while target {t} could take the call now"),
            );
        }
        let cost = self
            .last_truth
            .filter(|r| self.target_sends > 0 && !overload_model::free_after(*r))
            .map_or(0, |r| OverloadModel::cost(&self.policy, r));
        if self.overload.affords(&self.policy, now, cost) {
            let left = self.overload.tokens_at(&self.policy, now);
            self.violation(
                now,
                19,
                format!("a wait for the retry budget, which holds {left} tokens for a retry costing {cost}"),
            );
            return;
        }
        let ready = self.overload.affords_from(&self.policy, now, cost);
        if ready != Some(until) {
            self.violation(
                now,
                19,
                format!("a wait for the retry budget until {until}; its refill pays for the retry at {ready:?}"),
            );
        }
    }

    /// Invariants 19 and 21 for an abort: `retry_budget_exhausted` only for a retry (never a
    /// first attempt) the model's budget cannot pay; `circuit_open` only while the model has
    /// a breaker on the way forward open or its probes out.
    fn overload_abort(&mut self, now: Time, reason: AbortReason) {
        match reason {
            AbortReason::RetryBudgetExhausted => {
                let problem = match self.last_truth {
                    _ if self.sends == 0 => {
                        Some("a first attempt was denied by the retry budget".to_string())
                    }
                    None => Some("`retry_budget_exhausted` before any answer".to_string()),
                    Some(r) if overload_model::free_after(r) => Some(format!(
                        "`retry_budget_exhausted` after {r}, whose next send is free"
                    )),
                    Some(r) => {
                        // Ended only when the refill does not pay for the retry before the
                        // deadline.
                        let cost = OverloadModel::cost(&self.policy, r);
                        let ready = self.overload.affords_from(&self.policy, now, cost);
                        ready.filter(|at| *at < self.deadline).map(|at| {
                            format!(
                                "`retry_budget_exhausted` with {} tokens left for a retry costing {cost}, which the budget pays at {at}, before the deadline {}",
                                self.overload.tokens_at(&self.policy, now),
                                self.deadline
                            )
                        })
                    }
                };
                if let Some(problem) = problem {
                    self.violation(now, 19, problem);
                }
            }
            AbortReason::CircuitOpen => {
                let blocked = (self.target..self.contexts.len()).any(|t| {
                    matches!(
                        self.overload.verdict(&self.policy, t, now),
                        Verdict::Open(_) | Verdict::ProbesOut(_)
                    )
                });
                if !blocked {
                    self.violation(
                        now,
                        21,
                        "`circuit_open` while every breaker on the way forward admits a send",
                    );
                }
            }
            _ => {}
        }
    }

    /// Invariant 16: the abort names the cause the model sees.
    fn abort_reason(&mut self, now: Time, reason: AbortReason, input: &Input<'_>) {
        let cancelled = matches!(input, Input::Cancel);
        let stream_failed = matches!(input, Input::StreamFailed);
        let limits_spent = self.sends >= self.policy.max_attempts
            || self.target_sends >= self.policy.max_attempts_per_target
            || self.transient + self.transient_maybe >= self.policy.transient_retries_per_target;
        let answer = match input {
            Input::Answer(truth) => Some(*truth),
            // A restarted stream's failure is a dropped connection.
            Input::StreamFailed => Some(Truth::of(Reason::ConnectionFailed)),
            _ => None,
        };
        let wrong = |why: &str| Some(why.to_string());
        let problem = match reason {
            AbortReason::Cancelled if !cancelled => wrong("`cancelled` without a cancel"),
            AbortReason::FailedAfterCommit if !stream_failed => {
                wrong("`failed_after_commit` without a failed stream")
            }
            AbortReason::AttemptsExhausted if !limits_spent => wrong(&format!(
                "`attempts_exhausted` after {} sends ({} to this target) and {} transient retries",
                self.sends, self.target_sends, self.transient
            )),
            AbortReason::ServerWaitTooLong if self.policy.max_server_wait_ms.is_none() => {
                wrong("`server_wait_too_long` under a policy with no cap on server waits")
            }
            AbortReason::ServerSaidNoRetry if !answer.is_some_and(|t| t.says_no_retry) => {
                wrong("`server_said_no_retry` but the server said no such thing")
            }
            // The server said the request may succeed as sent: the retry is limited by the
            // send limits, the budget and the deadline, each with its own reason.
            AbortReason::NotRetryable if answer.is_some_and(|t| t.says_retry) => wrong(
                "`not_retryable` after an answer the server marked retryable (`x-should-retry: true`)",
            ),
            AbortReason::DeadlineExceeded if !self.deadline_is_the_cause(now, answer) => wrong(
                &format!(
                    "`deadline_exceeded` at {now} with the deadline at {} and a way forward before it",
                    self.deadline
                ),
            ),
            _ => None,
        };
        let own = answer.and_then(|t| match t.reason {
            Reason::KeyRejected => Some(AbortReason::AuthPermanent),
            Reason::QuotaExhausted => Some(AbortReason::QuotaExhausted),
            Reason::PermissionDenied => Some(AbortReason::PermissionDenied),
            _ => None,
        });
        // A key-scoped failure with nothing else to try ends with its own reason.
        let problem = problem.or_else(|| match (own, answer) {
            (Some(own), Some(_)) if reason != own => {
                let key = self.last_send.map(|(_, k)| k).unwrap_or(KeyId(0));
                (self.alternative(key) == Alternative::No
                    && !matches!(
                        reason,
                        AbortReason::Cancelled | AbortReason::FailedAfterCommit
                    )
                    // The way forward was a re-probe of a revoked key, behind an open breaker.
                    && !(reason == AbortReason::CircuitOpen && self.reprobe_possible(now)))
                .then(|| format!("`{reason}` where the failure that ended the call says `{own}`"))
            }
            _ => None,
        });
        // No key of the current target can ever be used again (all removed, revoked or
        // not entitled): unless the failure's own reason names it, that is the reason.
        let no_key = !self
            .keys
            .iter()
            .any(|k| k.target == self.target && self.in_play(k));
        let problem = problem.or_else(|| match reason {
            AbortReason::NoUsableKey if !no_key => Some(
                "`no_usable_key` while a key of the current target is still in play".to_string(),
            ),
            // (When the limits are spent too, either cause may be named; after a transient
            // fault the machine waits out the fault first, and a wait that overshoots the
            // deadline is a true cause as well.)
            AbortReason::DeadlineExceeded | AbortReason::AttemptsExhausted
                if no_key
                    && own.is_none()
                    && now < self.deadline
                    && !limits_spent
                    && !answer.is_some_and(|t| t.transient()) =>
            {
                Some(format!(
                    "`{reason}` although no key of the current target is left: `no_usable_key`"
                ))
            }
            AbortReason::NotRetryable => answer
                .and_then(|t| self.open_fallback(now, t.reason))
                .map(|t| format!("`not_retryable` although target {t} could take the request now")),
            _ => None,
        });
        if let Some(problem) = problem {
            self.violation(now, 16, problem);
        }
    }

    /// Invariant 32: a sleep on a server's say-so lasts no longer than the caller's cap,
    /// `max_server_wait_ms` (a longer wait is never shortened: the machine rotates, falls
    /// back or aborts instead).
    fn capped_server_wait(&mut self, now: Time, until: Time) {
        if let Some(cap) = self.policy.max_server_wait_ms {
            let wait = until.since(now).0;
            if wait > cap {
                self.violation(
                    now,
                    32,
                    format!("a sleep of {wait} ms on a server's hint, over the policy's max_server_wait_ms ({cap} ms)"),
                );
            }
        }
    }

    /// The least delay the policy's backoffs (either of them) can draw: none under full
    /// jitter; half the first exponential step under equal jitter; the base (capped)
    /// under decorrelated jitter or none.
    fn least_backoff_ms(&self) -> u64 {
        [self.policy.backoff, self.policy.congestion_backoff]
            .iter()
            .map(|b| {
                let first = b.base_ms.min(b.cap_ms.max(1));
                match b.jitter {
                    relent::Jitter::Full => 0,
                    relent::Jitter::Equal => first / 2,
                    relent::Jitter::Decorrelated | relent::Jitter::None => first,
                }
            })
            .min()
            .unwrap_or(0)
    }

    /// Invariants 16, 32 and 33 on what the server said about retrying and waiting, for each
    /// action of a step that answered a send (`truth` is the world's answer):
    ///
    /// * **16**: after an answer that says not to retry (`x-should-retry: false`), the call
    ///   does not wait for the target (no sleep for its keys or its backoff) and, after a
    ///   transient fault, sends nothing more to it; an abort in that step says
    ///   `server_said_no_retry` unless another cause the model sees ended it first (no key
    ///   left, a send limit spent, the deadline passed, the breaker or the budget);
    /// * **32**: `server_wait_too_long` never follows a transient fault whose stated wait is
    ///   within the cap (a zero wait, which says nothing, is not judged); and an abort that
    ///   ends the call on such a wait (its end past the cap, or past the deadline) promises
    ///   the time a retry could succeed: the wait's end, or, after a rate limit of the only
    ///   key of its target that could come back, the server's announced reset (within the
    ///   reading's slack and `SELECTION_MARGIN_MS`); never for a wait of a day or more;
    /// * **33**: a zero wait (`retry-after: 0`) says nothing: after a transient fault with a
    ///   zero wait or none, the call resends to the same target only after a backoff, so not
    ///   in the same step when the policy's backoffs cannot draw zero.
    fn server_words(&mut self, now: Time, action: &Action, truth: &Truth) {
        let transient = truth.transient();
        match action {
            Action::Sleep { reason, .. } if truth.says_no_retry => {
                let waits_here = match reason {
                    SleepReason::ServerHint { .. } | SleepReason::AllKeysCooling => true,
                    // A breaker's wait is labelled as an overload's backoff.
                    SleepReason::Backoff { after } => *after != Reason::Overloaded,
                    _ => false,
                };
                if waits_here {
                    self.violation(
                        now,
                        16,
                        format!("a sleep ({reason:?}) after an answer that said not to retry"),
                    );
                }
            }
            Action::Send(send) if send.target == self.target && transient => {
                if truth.says_no_retry {
                    self.violation(
                        now,
                        16,
                        format!(
                            "a resend to target {} after a {} that said not to retry",
                            send.target, truth.reason
                        ),
                    );
                } else if truth.stated_wait_ms.is_none_or(|w| w == 0) && self.least_backoff_ms() > 0
                {
                    self.violation(
                        now,
                        33,
                        format!(
                            "a resend to target {} at once after a {} with a wait of {:?} ms, where the backoff draws at least {} ms",
                            send.target,
                            truth.reason,
                            truth.stated_wait_ms,
                            self.least_backoff_ms()
                        ),
                    );
                }
            }
            Action::Abort(abort) => {
                let reason = abort.reason;
                let send_limit = self.sends >= self.policy.max_attempts
                    || self.target_sends >= self.policy.max_attempts_per_target;
                let other_cause = match reason {
                    AbortReason::ServerSaidNoRetry
                    | AbortReason::NoUsableKey
                    | AbortReason::Cancelled
                    | AbortReason::CircuitOpen
                    | AbortReason::RetryBudgetExhausted => true,
                    AbortReason::AttemptsExhausted => send_limit,
                    AbortReason::DeadlineExceeded => now >= self.deadline,
                    _ => false,
                };
                if truth.says_no_retry && !other_cause {
                    self.violation(
                        now,
                        16,
                        format!(
                            "`{reason}` after a {} that said not to retry: `server_said_no_retry`",
                            truth.reason
                        ),
                    );
                }
                let cap = self.policy.max_server_wait_ms;
                if let (true, Some(w), Some(cap)) = (transient, truth.stated_wait_ms, cap) {
                    if reason == AbortReason::ServerWaitTooLong && w > 0 && w <= cap {
                        self.violation(
                            now,
                            32,
                            format!("`server_wait_too_long` after a {} whose stated wait of {w} ms is within max_server_wait_ms ({cap} ms)", truth.reason),
                        );
                    }
                }
                let ends_on_wait = matches!(
                    reason,
                    AbortReason::DeadlineExceeded | AbortReason::ServerWaitTooLong
                ) && now < self.deadline;
                // After a transient fault with a stated wait: its end.
                let promised = match truth.stated_wait_ms {
                    Some(w) if transient && !truth.says_no_retry && w > 0 && w < A_DAY_MS => {
                        Some((now + relent::Millis(w), now + relent::Millis(w)))
                    }
                    _ => None,
                };
                // After a rate limit with an announced reset, of the only key of its target
                // that could come back (no outside mark holds it longer): the reset.
                let promised = promised.or_else(|| {
                    let reset = truth.reset_at.filter(|r| {
                        truth.reason == Reason::RateLimited && r.since(now).0 < A_DAY_MS && *r > now
                    })?;
                    let (t, key) = self.last_send?;
                    let k = self.key(key)?;
                    let lone = k.target == t
                        && !k.dead()
                        && !self.excluded.contains(&key)
                        && k.blocked_until <= reset
                        && self
                            .keys
                            .iter()
                            .all(|o| o.id == key || o.target != t || !self.in_play(o));
                    let limits_open = self.sends < self.policy.max_attempts;
                    let on_wait = ends_on_wait
                        || matches!(
                            reason,
                            AbortReason::ServerSaidNoRetry | AbortReason::AttemptsExhausted
                        );
                    let margin = relent::Millis(SELECTION_MARGIN_MS);
                    (lone && limits_open && on_wait && now < self.deadline).then(|| {
                        (
                            Time(reset.0.saturating_sub(SELECTION_MARGIN_MS)),
                            reset + relent::Millis(truth.reset_slack_ms) + margin,
                        )
                    })
                });
                let judged = ends_on_wait || truth.reason == Reason::RateLimited;
                if let Some((earliest, latest)) = promised.filter(|_| judged) {
                    let kept = abort.retry_at.is_some_and(|t| earliest <= t && t <= latest);
                    if !kept {
                        self.violation(
                            now,
                            32,
                            format!(
                                "`{reason}` after a {} ends on a wait until {earliest}..{latest} but promises a retry at {:?}",
                                truth.reason, abort.retry_at
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// Whether some key of the current target or a later one may be probed again now.
    fn reprobe_possible(&self, now: Time) -> bool {
        self.keys
            .iter()
            .any(|k| k.target >= self.target && self.reprobe_allowed(k, now))
    }

    /// Whether a key the provider rejected may be probed again now: the policy allows it,
    /// its revocation is old enough, and no other key of its target is known to be ready.
    fn reprobe_allowed(&self, k: &KeyModel, now: Time) -> bool {
        let Some(after) = self.policy.revoked_reprobe_after_ms else {
            return false;
        };
        let due = k
            .revoked_at
            .is_some_and(|at| at + relent::Millis(after) <= now);
        let other_ready = self.keys.iter().any(|o| {
            o.id != k.id
                && o.target == k.target
                && self.surely_in_play(o)
                && o.strikes == 0
                && o.free_by <= now
        });
        // An outside mark with an end holds a revoked key back like any other.
        due && !k.removed && !k.marked_dead && !other_ready && k.blocked_until <= now
    }

    /// A later target that could take a request refused with `reason`, with a key ready now
    /// and the limits allowing a send; `None` when there is none.
    fn open_fallback(&self, now: Time, reason: Reason) -> Option<usize> {
        let allowed = |t: usize| match reason {
            Reason::ContextOverflow => {
                let here = self.contexts.get(self.target).copied().flatten();
                let there = self.contexts.get(t).copied().flatten();
                there.is_some_and(|c| here.is_none_or(|h| c > h))
            }
            Reason::ContentFilter => self.policy.fallback_on_content_filter,
            Reason::PayloadTooLarge
            | Reason::ModelNotFound
            | Reason::TlsCertificate
            | Reason::BlockedByWaf => true,
            _ => false,
        };
        if self.sends >= self.policy.max_attempts || now >= self.deadline {
            return None;
        }
        self.keys
            .iter()
            .find(|k| {
                k.target > self.target
                    && allowed(k.target)
                    && self.surely_in_play(k)
                    && k.free_by <= now
            })
            .map(|k| k.target)
    }

    /// Whether the model agrees that no send could start before the deadline.
    fn deadline_is_the_cause(&self, now: Time, answer: Option<Truth>) -> bool {
        if now >= self.deadline {
            return true;
        }
        let left = self.deadline.since(now).0;
        let cap = self
            .policy
            .congestion_backoff
            .cap_ms
            .max(self.policy.backoff.cap_ms);
        match answer {
            // A transient fault that states a wait: the wait (clamped to a day) decides.
            Some(t) if t.transient() && t.stated_wait_ms.is_some_and(|w| w > 0) => {
                t.stated_wait_ms.is_some_and(|w| w.min(A_DAY_MS) >= left)
            }
            // A transient fault with no announced wait: the machine's own backoff, at most
            // the larger cap, decides (unless no key is left to retry with: below).
            Some(t) if t.transient() && t.reset_at.is_none() && left <= cap => true,
            // A rate limit the ejection guard read as shared by the target's keys is waited
            // out on the target as a whole (invariant 29): its backoff decides too. Where the
            // model cannot tell whether the guard held, the key's own cooldown may have
            // decided instead (below).
            Some(t) if self.guarded_now && t.reason == Reason::RateLimited => left <= cap,
            Some(t) if self.guard_maybe && t.reason == Reason::RateLimited && left <= cap => true,
            Some(t) if t.transient() && t.reset_at.is_some() => true,
            // Otherwise a key must be the way forward: one of this target that is free before
            // the deadline, or one of a later target that is free now, means there was one.
            _ => !self.keys.iter().any(|k| {
                self.surely_in_play(k)
                    && ((k.target == self.target && k.free_by < self.deadline)
                        || (k.target > self.target && k.free_by <= now))
            }),
        }
    }

    /// After the call: the end-time bound (4) and liveness (11). `end` is when the call
    /// ended, `heal_at` when every fault of the world was over, `last_change` the time of
    /// the last pool change, `settle_ms` one attempt's worth of time after healing.
    pub fn finish(
        &mut self,
        end: Time,
        aborted: Option<AbortReason>,
        heal_at: Option<Time>,
        last_change: Option<Time>,
        settle_ms: u64,
    ) -> bool {
        let limit = self.deadline + relent::Millis(self.policy.attempt_timeout_ms);
        if self.started && end > limit {
            self.violation(
                end,
                4,
                format!("the call ended at {end}, after the deadline plus one attempt timeout ({limit})"),
            );
        }
        // Liveness is owed once every fault, pool changes included, is over, and while a key
        // the model knows is alive can be reached (the chain is never climbed back up).
        let Some(heal) = heal_at.filter(|h| last_change.is_none_or(|c| c <= *h)) else {
            return false;
        };
        let alive = self.keys.iter().any(|k| {
            k.target >= self.target && self.surely_in_play(k) && k.strikes == 0 && k.free_by <= heal
        });
        if !alive {
            return false;
        }
        let settled = heal + relent::Millis(settle_ms);
        if let Some(reason) = aborted {
            // Overload control may end a call after healing: the budget spent or a breaker
            // still open (invariants 19 and 21 check that the model agrees).
            let overload = matches!(
                reason,
                AbortReason::RetryBudgetExhausted | AbortReason::CircuitOpen
            );
            if reason != AbortReason::Cancelled && !overload && end > settled && end < self.deadline
            {
                self.violation(
                    end,
                    11,
                    format!("aborted ({reason}) at {end} although every fault healed at {heal}"),
                );
            }
        }
        end > settled
    }

    /// Searches text the machine produced (a trace's JSON, a `Debug` dump) for canaries.
    pub fn scan(&mut self, what: &str, text: &str) {
        if let Some(fragment) = canary::leaked(text) {
            let detail = format!("a secret canary fragment {fragment:?} in {what}");
            self.violation(Time::ZERO, 15, detail);
        }
    }
}

fn kinds(actions: &[Action]) -> Vec<&'static str> {
    actions.iter().map(Action::kind).collect()
}
