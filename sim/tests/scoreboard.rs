//! The bar of `docs/SCOREBOARD.md` (issue #12): in every family and sweep point relent is on
//! the Pareto front of (success at 120 s, wasted sends per call, p50 time to outcome) among
//! all contenders (peak amplification instead of wasted sends in the multi-client
//! families), and where the oracle wastes at least 0.5 sends per call relent wastes at most
//! 1.2× as many. The points where it is not are listed below, each with the issue that is
//! to change relent's policy; every other point must meet the bar, and a listed point that
//! starts meeting it must be taken off the list (and out of the doc's misses).

use relent_sim::scoreboard::file::FamilyFile;
use relent_sim::scoreboard::{run, verdict, Row, Scoreboard};
use std::sync::OnceLock;

/// The seeds of `docs/SCOREBOARD.md`.
const SEEDS: u64 = 500;

fn board() -> &'static Scoreboard {
    static BOARD: OnceLock<Scoreboard> = OnceLock::new();
    BOARD.get_or_init(|| run(SEEDS))
}

fn family(name: &str) -> &'static relent_sim::scoreboard::FamilyReport {
    board()
        .families
        .iter()
        .find(|f| f.family == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

/// Known misses, each with its reason and the issue that changes relent's policy.
const KNOWN_MISSES: [(&str, &str); 6] = [
    (
        "single-dead-key",
        "one fresh-connection retry of a lone rejected key, by design (docs/POLICY.md); #13 revisits the rule",
    ),
    (
        "shared-limit",
        "rotates through keys that share one organisation-wide limit: #13 (server waits) and #14 (correlated signals)",
    ),
    (
        "overload-529-180s",
        "spends its deadline probing an outage no policy outlasts within 120 s, the price of winning overload-529-90s (no policy can tell them apart in time): #14 bounds the load",
    ),
    (
        "flaky-401-30pct",
        "revokes a key on one 401 where LiteLLM cools it 5 s: #13 (revocation re-probe)",
    ),
    (
        "sequence-20-calls",
        "rotates from a rate-limited key into an untried (here dead) one where hermes-agent waits out the same key's Retry-After: #13 (server waits)",
    ),
    (
        "sequence-20-calls-no-hint",
        "escalates a key's hint-less cooldowns from 5 s, where hermes-agent benches the key longer: the base trades this waste for single-call latency (docs/POLICY.md, key_cooldown)",
    ),
];

#[test]
fn relent_is_on_the_pareto_front_except_the_known_misses() {
    for f in &board().families {
        match KNOWN_MISSES.iter().find(|(name, _)| *name == f.family) {
            Some((_, why)) => assert!(
                !f.relent_meets_bar,
                "{} now meets the bar ({why}): take it off KNOWN_MISSES and out of the misses in docs/SCOREBOARD.md",
                f.family
            ),
            None => assert!(f.relent_meets_bar, "{}: {:?}", f.family, f.notes),
        }
    }
}

/// Each known miss is the miss the doc describes, with its numbers.
#[test]
fn the_known_misses_are_the_documented_ones() {
    let relent = |name: &str| family(name).row("relent").unwrap().clone();
    let single = relent("single-dead-key");
    assert_eq!((single.successes, single.upstream_per_call), (0, 2.0));
    let shared = relent("shared-limit");
    assert_eq!(shared.successes, SEEDS);
    assert!(shared.wasted_per_call > 2.0, "{shared:?}");
    assert_eq!(
        family("shared-limit")
            .row("openai-sdk")
            .unwrap()
            .wasted_per_call,
        1.0
    );
    // The 90 s outage is outlasted inside the deadline; the 180 s one cannot be, and the
    // same probing that wins the first spends sends on the second.
    assert_eq!(relent("overload-529-90s").successes, SEEDS);
    let long = relent("overload-529-180s");
    assert_eq!(long.successes, 0);
    assert!(long.upstream_per_call > 6.0, "{long:?}");
    assert_eq!(
        family("overload-529-180s").row("oracle").unwrap().successes,
        0
    );
    let seq = relent("sequence-20-calls");
    let hermes_seq = family("sequence-20-calls").row("hermes-agent").unwrap();
    assert_eq!(seq.successes, hermes_seq.successes);
    assert!(hermes_seq.wasted_per_call < seq.wasted_per_call);
    assert!(
        hermes_seq.p99_ms > 10 * seq.p99_ms,
        "hermes-agent pays in time"
    );
    // Escalating key cooldowns (issue #14 item 2) halve the waste of a key that keeps
    // drawing hint-less 429s, but hermes-agent, which benches it longer, wastes less still.
    let no_hint = relent("sequence-20-calls-no-hint");
    let hermes_no_hint = family("sequence-20-calls-no-hint")
        .row("hermes-agent")
        .unwrap();
    assert_eq!(no_hint.successes, hermes_no_hint.successes);
    assert!(hermes_no_hint.wasted_per_call < no_hint.wasted_per_call);
    assert!(no_hint.wasted_per_call < 0.1, "{no_hint:?}");
}

/// The retry budget shared by a client's calls (issue #14): over the 20 s outage of
/// many-clients-overload relent adds at most 10 % to the load, in no 5-s window more than
/// 20 % (issue #14 item 5), and loses no call that the best baseline keeps.
#[test]
fn the_retry_budget_holds_the_outage_load_without_losing_calls() {
    let f = family("many-clients-overload");
    let relent = f.row("relent").unwrap();
    let best = f
        .rows
        .iter()
        .filter(|r| r.policy != "relent" && r.policy != "oracle")
        .map(|r| r.successes)
        .max()
        .unwrap();
    assert!(relent.successes >= best, "{relent:?}");
    let steady = relent.steady_amplification.expect("a multi-client family");
    assert!(steady <= 1.1, "{relent:?}");
    let peak = relent.peak_amplification.expect("a multi-client family");
    assert!(peak <= 1.2, "{relent:?}");
    // Unlimited, it was 2.26x; hermes-agent, which also keeps every call, is above 2x.
    let hermes = f.row("hermes-agent").unwrap();
    assert!(hermes.steady_amplification.expect("a multi-client family") > 2.0 * steady);
}

/// relent loses only what its 120 s deadline forbids where attempts hang.
#[test]
fn relent_loses_to_slow_timeouts_only_what_the_deadline_forbids() {
    let f = family("slow-timeouts");
    assert_eq!(
        f.row("relent").unwrap().successes,
        f.row("oracle").unwrap().successes
    );
}

fn row(policy: &'static str, successes: u64, wasted: f64, p50: u64) -> Row {
    Row {
        policy,
        calls: 100,
        successes,
        successes_no_deadline: successes,
        upstream_per_call: wasted + 1.0,
        wasted_per_call: wasted,
        p50_ms: p50,
        p99_ms: p50,
        time_to_error_ms: None,
        peak_amplification: None,
        steady_amplification: None,
        recovery_ms: None,
    }
}

/// The verdict is the Pareto front and the 1.2× oracle rule, nothing looser.
#[test]
fn the_verdict_is_the_pareto_front_and_the_oracle_rule() {
    let oracle = row("oracle", 100, 0.0, 100);
    // Better on one axis and no worse on the others: dominated.
    for b in [
        row("b", 91, 1.0, 500),
        row("b", 90, 0.9, 500),
        row("b", 90, 1.0, 499),
    ] {
        let (ok, notes) = verdict(&[row("relent", 90, 1.0, 500), b, oracle.clone()], false);
        assert!(!ok && notes.len() == 1, "{notes:?}");
    }
    // Better on one axis, worse on another: not dominated.
    let (ok, _) = verdict(
        &[
            row("relent", 90, 1.0, 500),
            row("b", 95, 1.1, 300),
            oracle.clone(),
        ],
        false,
    );
    assert!(ok);
    // Within 1.2× the oracle's waste where the oracle wastes at least 0.5 per call.
    let wasteful = row("oracle", 100, 0.5, 100);
    assert!(verdict(&[row("relent", 90, 0.6, 500), wasteful.clone()], false).0);
    assert!(!verdict(&[row("relent", 90, 0.61, 500), wasteful], false).0);
    assert!(
        verdict(
            &[row("relent", 90, 0.61, 500), row("oracle", 100, 0.49, 1)],
            false
        )
        .0
    );
}

/// The example family files load, and a sweep makes one family per value.
#[test]
fn example_family_files_load() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/families");
    let sweep =
        FamilyFile::parse(&std::fs::read_to_string(format!("{dir}/overload-sweep.json")).unwrap())
            .unwrap();
    let families = sweep.families().unwrap();
    let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "my-overload-45000",
            "my-overload-60000",
            "my-overload-75000"
        ]
    );
    assert_eq!(families[1].world(3).faults[0].until_ms, Some(60_000));
    let drawn =
        FamilyFile::parse(&std::fs::read_to_string(format!("{dir}/flaky-key.json")).unwrap())
            .unwrap();
    let family = &drawn.families().unwrap()[0];
    let keys: std::collections::BTreeSet<String> = (0..50)
        .map(|s| format!("{:?}", family.world(s).faults[0].scope))
        .collect();
    assert_eq!(
        keys.len(),
        3,
        "the seed chooses which key is faulty: {keys:?}"
    );
    for s in 0..50 {
        let until = family.world(s).faults[0].until_ms.unwrap();
        assert!((1_000..=30_000).contains(&until));
    }
    assert!(FamilyFile::parse(
        r#"{"name":"x","template":{"targets":[]},"params":[{"path":"/nope","range":[1,2]}]}"#
    )
    .is_err());
    let bad_choice = r#"{"name":"x","template":{"targets":[],"faults":[{"scope":{"target":0},"kind":{"type":"overloaded"}}]},"params":[{"path":"/faults/0/kind","choices":[{"type":"overloaded"},{"type":"no_such_fault"}]}]}"#;
    assert!(
        FamilyFile::parse(bad_choice).is_err(),
        "every choice is checked when loaded"
    );
}

// ----- the fleet family (issue #19) -----

use relent_sim::scoreboard::fleet::{
    self, news_everywhere_by, play_fleet, FleetRun, FleetWorld, Sharing, StoreModel,
};

/// Worlds of the fleet tests (the doc's table has more).
const FLEET_SEEDS: u64 = 100;

fn fleet_worlds() -> &'static [FleetWorld] {
    static WORLDS: OnceLock<Vec<FleetWorld>> = OnceLock::new();
    WORLDS.get_or_init(|| (0..FLEET_SEEDS).map(fleet::world).collect())
}

fn fleet_runs(sharing: Sharing) -> &'static [FleetRun] {
    static RUNS: OnceLock<Vec<Vec<FleetRun>>> = OnceLock::new();
    let all = RUNS.get_or_init(|| {
        Sharing::ALL
            .iter()
            .map(|s| {
                fleet_worlds()
                    .iter()
                    .map(|w| play_fleet(w, *s, &StoreModel::default()))
                    .collect()
            })
            .collect()
    });
    let i = Sharing::ALL.iter().position(|s| *s == sharing).unwrap();
    &all[i]
}

/// The target of issue #19 on one run, from the world and the store's timing alone: the
/// first rejection of the dead key reaches its process one latency after its send; the
/// store (as `sharing` models it) has that news in every process's pool by
/// `news_everywhere_by`. So no send reaches the dead key once that time is past, and at most
/// one send per call that was running before it (the first, plus what the delay allows).
fn dead_key_within_propagation(
    sharing: Sharing,
    world: &FleetWorld,
    run: &FleetRun,
) -> Result<(), String> {
    let dead: Vec<_> = run.dead_key_sends(world).collect();
    let Some(first) = dead.first() else {
        return Ok(());
    };
    let learned = first.sent_ms + world.schedule.latency_ms;
    let by = news_everywhere_by(sharing, &StoreModel::default(), world, learned)
        .ok_or("no store: no news to bound")?;
    if let Some(late) = dead.iter().find(|s| s.sent_ms > by) {
        return Err(format!(
            "seed {}: a send to the dead key at {} ms, after the news was everywhere ({by} ms): {late:?}",
            world.schedule.seed, late.sent_ms
        ));
    }
    let running = run
        .calls
        .iter()
        .filter(|c| c.start_ms <= by && c.end_ms >= first.sent_ms)
        .count();
    if dead.len() > running {
        return Err(format!(
            "seed {}: {} sends to the dead key, more than the {running} calls running before the news was everywhere",
            world.schedule.seed,
            dead.len()
        ));
    }
    Ok(())
}

/// With the shared store, fleet-wide sends to a dead key stay at the first one plus what
/// the propagation delay allows (pub/sub, the 1 s re-read, an outage's resync); without it
/// every process that calls after the death finds out alone (about N).
#[test]
fn fleet_dead_key_sends_stay_within_what_the_store_propagation_allows() {
    let worlds = fleet_worlds();
    for sharing in [Sharing::Store, Sharing::RereadOnly, Sharing::Outage] {
        for (world, run) in worlds.iter().zip(fleet_runs(sharing)) {
            dead_key_within_propagation(sharing, world, run)
                .unwrap_or_else(|e| panic!("{}: {e}", sharing.name()));
        }
    }
    // Where nothing can be shared, each process learns alone: every process with a call
    // starting after the death (without a store), or after the death and before the store
    // is back (an outage), sends to the dead key (first in order) at least once.
    let no_store: fn(&FleetWorld) -> u64 = |_| u64::MAX;
    let until_back: fn(&FleetWorld) -> u64 = |w| w.outage_ms.1;
    for (sharing, alone_until) in [(Sharing::Alone, no_store), (Sharing::Outage, until_back)] {
        for (world, run) in worlds.iter().zip(fleet_runs(sharing)) {
            let calling: std::collections::BTreeSet<usize> = run
                .calls
                .iter()
                .filter(|c| (world.dies_at_ms..alone_until(world)).contains(&c.start_ms))
                .map(|c| c.process)
                .collect();
            let paid: std::collections::BTreeSet<usize> =
                run.dead_key_sends(world).map(|s| s.process).collect();
            assert!(
                paid.is_superset(&calling),
                "{}: seed {}",
                sharing.name(),
                world.schedule.seed
            );
        }
    }
    let mean = |sharing| {
        worlds
            .iter()
            .zip(fleet_runs(sharing))
            .map(|(w, r)| r.dead_key_sends(w).count())
            .sum::<usize>() as f64
            / worlds.len() as f64
    };
    let (alone, store) = (mean(Sharing::Alone), mean(Sharing::Store));
    assert!(alone >= fleet::PROCESSES as f64, "{alone}");
    assert!(store * 2.0 < alone, "store {store}, alone {alone}");
    assert!(mean(Sharing::RereadOnly) >= store);
    assert!(mean(Sharing::Outage) > store);
}

/// Break-test of the bound: the same check fails on runs where nothing is shared (the store
/// switched off), in most worlds.
#[test]
fn fleet_bound_fails_without_sharing() {
    let failed = fleet_worlds()
        .iter()
        .zip(fleet_runs(Sharing::Alone))
        .filter(|(w, r)| dead_key_within_propagation(Sharing::Store, w, r).is_err())
        .count();
    assert!(failed * 10 >= 9 * FLEET_SEEDS as usize, "{failed}");
}

/// The shared cooldown: fewer sends into the rate limit with the store, and no call lost
/// in any mode (keys 3 and 4 always work).
#[test]
fn fleet_shares_the_rate_limit_and_loses_no_call() {
    let worlds = fleet_worlds();
    let rows: Vec<_> = Sharing::ALL
        .iter()
        .map(|s| fleet::fleet_row(*s, worlds, fleet_runs(*s)))
        .collect();
    for r in &rows {
        assert_eq!(r.successes, r.calls, "{r:?}");
    }
    let row = |s: Sharing| rows.iter().find(|r| r.sharing == s).unwrap();
    assert!(row(Sharing::Store).limited_key_sends * 2.0 < row(Sharing::Alone).limited_key_sends);
    assert!(row(Sharing::Store).wasted_per_call < row(Sharing::Alone).wasted_per_call);
}
