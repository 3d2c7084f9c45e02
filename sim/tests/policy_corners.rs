//! Generated worlds under policies far from the generator's own tweaks: tiny attempt limits,
//! no transient retries, deadlines and attempt timeouts shorter than the latency, zero
//! backoffs, one-millisecond cooldowns, cancels and healing at the first instant. A
//! hand-written schedule may set any of these; the checker must then hold the machine to the
//! same catalog without false alarms, and the machine must keep it.
//!
//! This probe found, when first run: liveness demanded of worlds whose every answer arrives
//! after the attempt timeout, and the policies `quota_cooldown_ms: 0` and
//! `revoked_reprobe_after_ms: 0`, which sent to a key again at the instant it failed (now
//! refused by `Policy::validate`).

use rand_chacha::rand_core::{RngCore, SeedableRng};
use relent_sim::generate::generate;
use relent_sim::runner::{run, RunOptions};
use relent_sim::schedule::Schedule;

/// Seed `seed`'s world with its policy pushed into corners, by a generator of its own (the
/// world generator's draws are untouched).
fn cornered(seed: u64) -> Schedule {
    let mut s = generate(seed);
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x00c0_4e55);
    let mut pick = |xs: &[u64]| xs[(r.next_u32() as usize) % xs.len()];
    let p = &mut s.policy;
    if pick(&[0, 1]) == 1 {
        p.max_attempts = pick(&[1, 2, 3, 5]) as u32;
    }
    if pick(&[0, 1]) == 1 {
        p.max_attempts_per_target = pick(&[1, 2, 3]) as u32;
    }
    if pick(&[0, 1]) == 1 {
        p.transient_retries_per_target = pick(&[0, 1, 2]) as u32;
    }
    if pick(&[0, 1, 2]) == 1 {
        p.deadline_ms = pick(&[300, 1_000, 2_500, 7_000]);
    }
    if pick(&[0, 1, 2]) == 1 {
        p.attempt_timeout_ms = pick(&[100, 250, 1_000, 3_000]);
    }
    if pick(&[0, 1, 2]) == 1 {
        s.latency_ms = pick(&[0, 1, 10, 900, 4_000]);
    }
    if pick(&[0, 1, 2]) == 1 {
        p.quota_cooldown_ms = pick(&[1, 500, 5_000]);
    }
    if pick(&[0, 1, 2]) == 1 {
        p.backoff.base_ms = pick(&[0, 1, 50]);
        p.backoff.cap_ms = p.backoff.base_ms.max(pick(&[0, 1, 100, 20_000]));
    }
    if pick(&[0, 1, 2]) == 1 {
        p.congestion_backoff.base_ms = pick(&[0, 1, 50]);
        p.congestion_backoff.cap_ms = p.congestion_backoff.base_ms.max(pick(&[0, 1, 100, 90_000]));
    }
    if pick(&[0, 1, 2]) == 1 {
        p.revoked_reprobe_after_ms = Some(pick(&[1, 100, 10_000]));
    }
    if pick(&[0, 1, 2]) == 1 {
        p.max_wait_before_fallback_ms = pick(&[0, 1, 100]);
    }
    if pick(&[0, 1, 2]) == 1 {
        p.max_server_wait_ms = Some(pick(&[0, 1, 100, 3_000]));
    }
    if pick(&[0, 1, 2]) == 1 {
        p.key_cooldown.base_ms = pick(&[0, 1, 100]);
        p.key_cooldown.max_ms = p.key_cooldown.base_ms.max(pick(&[0, 1, 200, 100_000]));
        p.key_cooldown.jitter_percent = pick(&[0, 100]) as u8;
    }
    if pick(&[0, 1, 2]) == 1 {
        p.key_cooldown.enabled = false;
    }
    if pick(&[0, 1, 2]) == 1 {
        p.max_ejection_percent = pick(&[0, 1, 99, 100]) as u8;
    }
    if pick(&[0, 1, 2, 3]) == 1 {
        p.restart_after_commit = true;
    }
    if pick(&[0, 1, 2, 3]) == 1 {
        p.fallback_on_content_filter = true;
    }
    if pick(&[0, 1, 2, 3]) == 1 {
        s.cancel_at_ms = Some(pick(&[0, 1, 150, 2_000]));
    }
    if pick(&[0, 1, 2, 3]) == 1 {
        s.heal_at_ms = Some(pick(&[0, 1, 500]));
    }
    s
}

#[test]
fn worlds_under_corner_policies_keep_the_catalog() {
    let (mut ran, mut failing) = (0, Vec::new());
    for seed in 0..4_000 {
        let schedule = cornered(seed);
        if schedule.policy.validate().is_err() {
            continue;
        }
        ran += 1;
        let report = run(
            &schedule,
            RunOptions {
                deep_secret_scan: seed % 8 == 0,
                ..RunOptions::default()
            },
        );
        if let Some(v) = report.violations.first() {
            failing.push(format!(
                "seed {seed}: invariant {}: {}",
                v.invariant, v.detail
            ));
        }
    }
    // Nearly every cornered policy is valid: the probe is not vacuous.
    assert!(
        ran > 3_500,
        "only {ran} of 4 000 cornered policies were valid"
    );
    assert!(
        failing.is_empty(),
        "{} failing: {:#?}",
        failing.len(),
        &failing[..failing.len().min(10)]
    );
}
