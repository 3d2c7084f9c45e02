#!/bin/sh
# A standing catalog of planted bugs: issue #11's five, then the ones earlier sessions
# planted by hand (docs/MUTATION.md: the seventh session's neighbours of the behaviour
# table, the tenth session's survivors, the eleventh session's kills). Each is planted alone
# in a scratch worktree of HEAD and run against the swarm (`relent sim --seeds 200000`).
# Every bug must make the swarm report failing seeds; the script prints, per bug, the
# failing seeds, the first failing seed and the invariants that caught the failures the
# summary lists, and exits non-zero when a bug passes or when its anchor line is no longer
# in the code (a plant that does not apply would pass for nothing). Not part of CI: it
# builds the release binary once per bug.
#
#   sh sim/planted_bugs.sh [SEEDS]        (default 200000; run from anywhere in the repo)
#
# Environment:
#   BUGS="name1 name2"  run only these bugs (names as in the `case` below; default: all,
#                       in catalog order)
#   SIM_JOBS=N          pass `--jobs N` to `relent sim` (default: let relent choose)
#   CARGO_BUILD_JOBS=N  as usual for cargo (set it to 1 on a shared machine)
#
# The scratch worktree and its target directory live under a temporary directory that is
# removed at the end. Needs git, cargo, perl and python3.
set -eu
seeds=${1:-200000}
repo=$(git rev-parse --show-toplevel)
scratch=$(mktemp -d)
work="$scratch/tree"
git -C "$repo" worktree add --quiet --detach "$work" HEAD
cleanup() {
    git -C "$repo" worktree remove --force "$work" || true
    rm -rf "$scratch"
}
trap cleanup EXIT INT TERM
export CARGO_TARGET_DIR="$scratch/target"

# plant FILE ANCHOR REPLACEMENT: replaces the one line of FILE that is exactly ANCHOR
# (leading spaces included) with REPLACEMENT (which may span lines); fails unless ANCHOR
# occurs exactly once.
plant() {
    file="$work/$1"
    count=$(grep -c -x -F -- "$2" "$file" || true)
    if [ "$count" != 1 ]; then
        echo "anchor found $count times in $1: $2" >&2
        return 1
    fi
    ANCHOR="$2" REPLACEMENT="$3" perl -0pi -e \
        's/^\Q$ENV{ANCHOR}\E$/$ENV{REPLACEMENT}/m' "$file"
}

all_bugs="deadline restart wake quota rotation
    quota_reset_ignored quota_any_hint rate_hint_ignored no_exclusion never_fresh
    any_larger should_retry_ignored upstream_no_fallback guard_off probe_end_and
    no_retry_ignored cap_guard_off retry_time_flip hintless_cap zero_wait cap_equal
    pool_change_wake preference_flip backoff_product breaker_wait_equal probe_mark_lost"
sim_jobs=""
if [ -n "${SIM_JOBS:-}" ]; then
    sim_jobs="--jobs $SIM_JOBS"
fi

failed=0
for bug in ${BUGS:-$all_bugs}; do
    git -C "$work" checkout --quiet -- .
    case $bug in
    deadline) # the call's deadline doubled
        plant crates/relent/src/machine/mod.rs \
            '        self.deadline = now + Millis(self.policy.deadline_ms);' \
            '        self.deadline = now + Millis(self.policy.deadline_ms * 2);' ;;
    restart) # a committed stream restarted after it failed, whatever the policy says
        plant crates/relent/src/machine/decide.rs \
            '        if self.policy.restart_after_commit {' \
            '        if true {' ;;
    wake) # no wake-up when a key is added during a sleep for cooling keys
        plant crates/relent/src/machine/decide.rs \
            '        let touched = self.pool.apply(&change)?;' \
            '        let touched = self.pool.apply(&change)?;
        let touched = if matches!(change, PoolChange::Added { .. }) { None } else { touched };' ;;
    quota) # a spent quota handled exactly like a rate limit
        plant crates/relent/src/machine/decide.rs \
            '        let why = c.reason;' \
            '        let why = if c.reason == Reason::QuotaExhausted { Reason::RateLimited } else { c.reason };' ;;
    rotation) # each rotation charges two transient retries
        plant crates/relent/src/machine/decide.rs \
            '        if announce {' \
            '        if announce {
            self.transient_retries += 2;' ;;
    # The seventh session's neighbours of the behaviour table.
    quota_reset_ignored) # a quota's own reset (Gemini's RetryInfo) ignored: every spent key waits quota_cooldown_ms
        plant crates/relent/src/machine/decide.rs \
            '                let quota_reset = hint.filter(|h| h.source == HintSource::RetryInfo);' \
            '                let quota_reset = hint.filter(|h| h.source == HintSource::RetryInfo && false);' ;;
    quota_any_hint) # any wait hint (a rate limit's retry-after) taken as the quota's reset
        plant crates/relent/src/machine/decide.rs \
            '                let quota_reset = hint.filter(|h| h.source == HintSource::RetryInfo);' \
            '                let quota_reset = hint.filter(|h| h.source == HintSource::RetryInfo || h.after_ms > 0);' ;;
    rate_hint_ignored) # a rate limit's hint ignored: the key cools for a computed backoff
        plant crates/relent/src/machine/decide.rs \
            '                let (mut wait_ms, own_wait) = self.wait_for(why, hint);' \
            '                let (mut wait_ms, own_wait) = self.wait_for(why, None);' ;;
    no_exclusion) # a key-scoped fault's key not excluded for the rest of the call
        plant crates/relent/src/machine/decide.rs \
            '                self.excluded.push(at.key);' \
            '                let _ = at.key;' ;;
    never_fresh) # no send ever asks for a fresh connection
        plant crates/relent/src/machine/decide.rs \
            '            fresh_connection: connection == Connection::Fresh || after_transport_fault,' \
            '            fresh_connection: (connection == Connection::Fresh || after_transport_fault) && false,' ;;
    any_larger) # the fallback after a context overflow takes any later target, not a larger window
        plant crates/relent/src/machine/decide.rs \
            '            let larger = context.is_some_and(|c| current_context.is_none_or(|cur| c > cur));' \
            '            let larger = context.is_some_and(|c| current_context.is_none_or(|cur| c > cur)) || true;' ;;
    should_retry_ignored) # `x-should-retry: true` on a 400 ignored: the call ends not_retryable
        plant crates/relent/src/machine/decide.rs \
            '            Rule::Abort if server == ServerSays::Retry => {' \
            '            Rule::Abort if false && server == ServerSays::Retry => {' ;;
    upstream_no_fallback) # an aggregator's upstream rate limit never falls back (always retries the same target)
        plant crates/relent/src/machine/decide.rs \
            '            Rule::FallbackThenRetry => {' \
            '            Rule::FallbackThenRetry => {
                if true { return self.retry_same(now, at, why, hint, Connection::Reuse, server); }' ;;
    guard_off) # the ejection guard never holds: every hint-less rate limit benches its key
        plant crates/relent/src/machine/decide.rs \
            '                if hint.is_none_or(|h| h.after_ms == 0) && self.ejection_guard(now, at) =>' \
            '                if false && hint.is_none_or(|h| h.after_ms == 0) && self.ejection_guard(now, at) =>' ;;
    # The tenth session's survivors, planted by hand.
    probe_end_and) # end_probe also acts on a key that is not revoked or has no revocation time
        plant crates/relent/src/machine/decide.rs \
            '        if entry.state != KeyState::Revoked || entry.revoked_at.is_none() {' \
            '        if entry.state != KeyState::Revoked && entry.revoked_at.is_none() {' ;;
    no_retry_ignored) # a rate limit that said x-should-retry: false no longer ends server_said_no_retry
        plant crates/relent/src/machine/decide.rs \
            '            _ if server == ServerSays::NoRetry => AbortReason::ServerSaidNoRetry,' \
            '            _ if false && server == ServerSays::NoRetry => AbortReason::ServerSaidNoRetry,' ;;
    cap_guard_off) # a key's wait over max_server_wait_ms ends deadline_exceeded, not server_wait_too_long
        plant crates/relent/src/machine/decide.rs \
            '            _ if beyond_cap && ready_at.is_some_and(|t| t < self.deadline) => {' \
            '            _ if false && beyond_cap && ready_at.is_some_and(|t| t < self.deadline) => {' ;;
    retry_time_flip) # an abort promises a retry time only for a clamped wait, never for a known one
        plant crates/relent/src/machine/decide.rs \
            '        let retry_at = ready_at.filter(|t| t.since(now).0 < MAX_HINT_MS);' \
            '        let retry_at = ready_at.filter(|t| t.since(now).0 > MAX_HINT_MS);' ;;
    hintless_cap) # a transient fault's backoff (no hint) held to max_server_wait_ms
        plant crates/relent/src/machine/decide.rs \
            '        let too_long = hint.is_some() && self.too_long_to_sleep(delay_ms);' \
            '        let too_long = hint.is_some() || self.too_long_to_sleep(delay_ms);' ;;
    zero_wait) # a server's wait of 0 resends at once instead of backing off
        plant crates/relent/src/machine/decide.rs \
            '        match hint.filter(|h| h.after_ms > 0) {' \
            '        match hint {' ;;
    cap_equal) # max_server_wait_ms applies only to a wait of exactly the cap
        plant crates/relent/src/machine/decide.rs \
            '                .is_some_and(|cap| wait_ms > cap)' \
            '                .is_some_and(|cap| wait_ms == cap)' ;;
    # The eleventh session's kills.
    pool_change_wake) # a sleep whose keys were removed or marked bad ends only when a key is still due
        plant crates/relent/src/machine/decide.rs \
            '            if waiting_for_keys && !still_due {' \
            '            if waiting_for_keys && still_due {' ;;
    preference_flip) # a removed or marked key stays the sleep's preferred key (another key is forgotten instead)
        plant crates/relent/src/machine/decide.rs \
            '            if resume.prefer == Some(key) {' \
            '            if resume.prefer != Some(key) {' ;;
    backoff_product) # the backoff's retry count is transient times overload retries (0 on a plain retry)
        plant crates/relent/src/machine/decide.rs \
            '            self.transient_retries + self.overload_retries,' \
            '            self.transient_retries * self.overload_retries,' ;;
    breaker_wait_equal) # an open breaker is waited for only when it admits exactly at the deadline
        plant crates/relent/src/machine/gate.rs \
            '        let may_wait = until < self.deadline' \
            '        let may_wait = until == self.deadline' ;;
    probe_mark_lost) # a re-probe answered by a rate limit or spent quota lifts a key past an outside mark
        plant crates/relent/src/machine/decide.rs \
            '                    Some(until) if until > now => KeyState::CoolingDown(until),' \
            '                    Some(until) if false && until > now => KeyState::CoolingDown(until),' ;;
    *)
        echo "$bug: no such planted bug" >&2
        failed=1
        continue ;;
    esac
    (cd "$work" && cargo build --quiet --release -p relent-cli) || {
        echo "$bug: the planted tree does not build" >&2
        failed=1
        continue
    }
    # shellcheck disable=SC2086 # $sim_jobs is empty or two words
    "$CARGO_TARGET_DIR/release/relent" sim --seeds "$seeds" $sim_jobs --json >"$scratch/$bug.json" || true
    python3 - "$bug" "$scratch/$bug.json" <<'EOF' || failed=1
import json, sys
bug, path = sys.argv[1], sys.argv[2]
summary = json.load(open(path))
failures = summary["failures"]
if summary["failing_seeds"] == 0:
    print(f"{bug}: NOT CAUGHT (0 failing seeds)")
    sys.exit(1)
first = failures[0]["seed"] if failures else "?"
# How many of the reported failing seeds each invariant caught (the summary lists the
# first failures only).
caught = {}
for failure in failures:
    for invariant in {v["invariant"] for v in failure["violations"]}:
        caught[invariant] = caught.get(invariant, 0) + 1
by_invariant = ", ".join(f"{n} ({caught[n]})" for n in sorted(caught))
print(
    f"{bug}: {summary['failing_seeds']} failing seeds, first {first}; invariants in the "
    f"{len(failures)} listed: {by_invariant}"
)
EOF
done
exit $failed
