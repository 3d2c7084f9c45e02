#!/bin/sh
# Issue #11's five planted bugs, each planted alone in a scratch worktree of HEAD and run
# against the swarm (`relent sim --seeds 200000`). Every bug must make the swarm report
# failing seeds; the script prints, per bug, the failing seeds, the first failing seed and
# the invariants that caught the failures the summary lists, and exits non-zero when a bug passes or when
# its anchor line is no longer in the code (a plant that does not apply would pass for
# nothing). Not part of CI: it builds the release binary five times.
#
#   sh sim/planted_bugs.sh [SEEDS]        (default 200000; run from anywhere in the repo)
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

failed=0
for bug in deadline restart wake quota rotation; do
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
    esac
    (cd "$work" && cargo build --quiet --release -p relent-cli) || {
        echo "$bug: the planted tree does not build" >&2
        failed=1
        continue
    }
    "$CARGO_TARGET_DIR/release/relent" sim --seeds "$seeds" --json >"$scratch/$bug.json" || true
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
