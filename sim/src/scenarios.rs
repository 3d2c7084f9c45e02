//! Built-in scenarios: small hand-written worlds that each show one behaviour of the
//! machine. `relent scenario NAME` runs them; `sim/tests/scenarios.rs` snapshots their traces.

use crate::schedule::{Fault, FaultKind, FaultScope, HintFormat, Schedule, TimedChange};
use relent::{KeyId, KeySpec, Policy, PoolChange, Provider, Target};

/// A named scenario.
pub struct Scenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it shows.
    pub about: &'static str,
    /// The world.
    pub schedule: Schedule,
}

fn keys(n: u32) -> Vec<KeySpec> {
    (1..=n)
        .map(|i| KeySpec::new(i, format!("key-{i}")))
        .collect()
}

fn world(name: &str, targets: Vec<Target>, faults: Vec<Fault>) -> Schedule {
    Schedule {
        name: Some(name.to_string()),
        seed: 1,
        policy: Policy::default(),
        targets,
        faults,
        pool_changes: Vec::new(),
        cancel_at_ms: None,
        latency_ms: 150,
        heal_at_ms: None,
        calls: Vec::new(),
    }
}

fn on_key(id: u32, kind: FaultKind) -> Fault {
    Fault {
        scope: FaultScope::Key(KeyId(id)),
        from_ms: 0,
        until_ms: None,
        first_sends: None,
        probability: 1.0,
        kind,
    }
}

fn on_target(t: usize, kind: FaultKind) -> Fault {
    Fault {
        scope: FaultScope::Target(t),
        from_ms: 0,
        until_ms: None,
        first_sends: None,
        probability: 1.0,
        kind,
    }
}

fn openai(n: u32) -> Target {
    Target {
        provider: Provider::Openai,
        model: "gpt-4o".into(),
        context_tokens: Some(128_000),
        keys: keys(n),
    }
}

/// Every built-in scenario, in a stable order.
pub fn all() -> Vec<Scenario> {
    let mut list = Vec::new();
    let mut add = |name: &'static str, about: &'static str, schedule: Schedule| {
        list.push(Scenario {
            name,
            about,
            schedule,
        })
    };

    add(
        "single-key-401-twice",
        "The only key is dead: one retry on a fresh connection, no sleep, then auth_permanent.",
        world(
            "single-key-401-twice",
            vec![openai(1)],
            vec![on_key(1, FaultKind::KeyRejected)],
        ),
    );
    add(
        "single-key-401-then-success",
        "A one-off 401 (a bad proxy node): the fresh-connection retry succeeds.",
        world(
            "single-key-401-then-success",
            vec![openai(1)],
            vec![Fault {
                first_sends: Some(1),
                ..on_key(1, FaultKind::KeyRejected)
            }],
        ),
    );
    add(
        "three-keys-first-revoked",
        "Three keys, the first dead: rotate at once, revoke it, succeed with the second.",
        world(
            "three-keys-first-revoked",
            vec![openai(3)],
            vec![on_key(1, FaultKind::KeyRejected)],
        ),
    );
    add(
        "rate-limit-two-keys",
        "429 with retry-after on one of two keys: rotate to the other with no sleep.",
        world(
            "rate-limit-two-keys",
            vec![openai(2)],
            vec![Fault {
                until_ms: Some(20_000),
                ..on_key(
                    1,
                    FaultKind::RateLimited {
                        hint: HintFormat::RetryAfterSeconds,
                    },
                )
            }],
        ),
    );
    let mut cooling = world(
        "all-keys-cooling-key-added",
        vec![openai(2)],
        vec![
            Fault {
                until_ms: Some(30_000),
                ..on_key(
                    1,
                    FaultKind::RateLimited {
                        hint: HintFormat::RetryAfterSeconds,
                    },
                )
            },
            Fault {
                until_ms: Some(30_000),
                ..on_key(
                    2,
                    FaultKind::RateLimited {
                        hint: HintFormat::ResetHeaders,
                    },
                )
            },
        ],
    );
    cooling.pool_changes.push(TimedChange {
        on_reprobe: false,
        at_ms: 5_000,
        change: PoolChange::Added {
            target: 0,
            key: KeySpec::new(3, "key-3-new"),
        },
    });
    add(
        "all-keys-cooling-key-added",
        "Both keys cool for 30 s; a key added at 5 s ends the sleep at once.",
        cooling,
    );
    add(
        "overload-then-success",
        "Anthropic 529 twice: backoff on the same key (overload is provider-wide), then success.",
        world(
            "overload-then-success",
            vec![Target {
                provider: Provider::Anthropic,
                model: "claude-sonnet-4".into(),
                context_tokens: Some(200_000),
                keys: keys(2),
            }],
            vec![Fault {
                first_sends: Some(2),
                ..on_target(0, FaultKind::Overloaded)
            }],
        ),
    );
    add(
        "quota-only-key",
        "OpenAI 429 insufficient_quota on the only key: not a rate limit, abort quota_exhausted at once.",
        world("quota-only-key", vec![openai(1)], vec![on_key(1, FaultKind::QuotaExhausted { reset: false })]),
    );
    add(
        "context-overflow-no-fallback",
        "Context window exceeded with no larger target: abort not_retryable, nothing resent.",
        world(
            "context-overflow-no-fallback",
            vec![openai(1)],
            vec![on_target(0, FaultKind::ContextOverflow)],
        ),
    );
    add(
        "context-overflow-fallback",
        "Context window exceeded: fall back to the larger-context target, which succeeds.",
        world(
            "context-overflow-fallback",
            vec![
                openai(1),
                Target {
                    provider: Provider::Gemini,
                    model: "gemini-2.5-pro".into(),
                    context_tokens: Some(1_048_576),
                    keys: vec![KeySpec::new(10, "gemini-1")],
                },
            ],
            vec![on_target(0, FaultKind::ContextOverflow)],
        ),
    );
    add(
        "deadline-rate-limited",
        "The only key is rate limited for 5 minutes: abort deadline_exceeded now, saying when a retry could succeed.",
        world(
            "deadline-rate-limited",
            vec![openai(1)],
            vec![Fault { until_ms: Some(300_000), ..on_key(1, FaultKind::RateLimited { hint: HintFormat::RetryAfterSeconds }) }],
        ),
    );
    add(
        "committed-stream-fails",
        "A stream fails after its first chunk was handed over: reported, never retried.",
        world(
            "committed-stream-fails",
            vec![openai(1)],
            vec![on_key(1, FaultKind::StreamFailsMidway)],
        ),
    );
    let mut cancel = world(
        "cancel-during-sleep",
        vec![openai(1)],
        vec![on_target(0, FaultKind::ServerError)],
    );
    cancel.cancel_at_ms = Some(400);
    add(
        "cancel-during-sleep",
        "The caller cancels while the machine backs off: abort cancelled, nothing more sent.",
        cancel,
    );
    let anthropic = |n: u32| Target {
        provider: Provider::Anthropic,
        model: "claude-sonnet-4".into(),
        context_tokens: Some(200_000),
        keys: keys(n),
    };
    let fallback_target = || Target {
        provider: Provider::Gemini,
        model: "gemini-2.5-pro".into(),
        context_tokens: Some(1_048_576),
        keys: vec![KeySpec::new(10, "gemini-1")],
    };
    add(
        "overload-outage-spends-the-deadline",
        "Anthropic 529 on every send for 90 s, one target: back off (capped, jittered) until the outage ends inside the 120 s deadline, then succeed.",
        world(
            "overload-outage-spends-the-deadline",
            vec![anthropic(2)],
            vec![Fault {
                until_ms: Some(90_000),
                ..on_target(0, FaultKind::Overloaded)
            }],
        ),
    );
    add(
        "overload-falls-back-after-two",
        "Anthropic 529 on every send, a Gemini fallback ready: two overloads on the first target, then the fallback.",
        world(
            "overload-falls-back-after-two",
            vec![anthropic(2), fallback_target()],
            vec![on_target(0, FaultKind::Overloaded)],
        ),
    );
    add(
        "cooling-keys-fall-back",
        "Both keys of the first target rate limited for 30 s, a fallback ready: go there instead of sleeping 30 s.",
        world(
            "cooling-keys-fall-back",
            vec![openai(2), fallback_target()],
            vec![Fault {
                until_ms: Some(30_000),
                ..on_target(
                    0,
                    FaultKind::RateLimited {
                        hint: HintFormat::RetryAfterSeconds,
                    },
                )
            }],
        ),
    );
    add(
        "long-retry-after-honoured",
        "The only key is rate limited for 90 s and says so: sleep the whole wait inside the 120 s deadline, then succeed.",
        world(
            "long-retry-after-honoured",
            vec![openai(1)],
            vec![Fault {
                until_ms: Some(90_000),
                ..on_key(
                    1,
                    FaultKind::RateLimited {
                        hint: HintFormat::RetryAfterSeconds,
                    },
                )
            }],
        ),
    );
    let mut reprobe = world(
        "revoked-key-reprobed",
        vec![openai(1)],
        vec![Fault {
            first_sends: Some(2),
            ..on_key(1, FaultKind::KeyRejected)
        }],
    );
    reprobe.policy.revoked_reprobe_after_ms = Some(60_000);
    reprobe.calls = vec![0, 30_000, 120_000];
    add(
        "revoked-key-reprobed",
        "The only key is rejected twice (a provider-side auth incident), then works again: revoked; a call 30 s later sends nothing; a call after the 60 s re-probe time (at 120 s) probes it and succeeds.",
        reprobe,
    );
    let mut removed = world(
        "removed-key-ends-the-wait",
        vec![openai(1)],
        vec![Fault {
            until_ms: Some(30_000),
            ..on_key(
                1,
                FaultKind::RateLimited {
                    hint: HintFormat::RetryAfterSeconds,
                },
            )
        }],
    );
    removed.pool_changes.push(TimedChange {
        on_reprobe: false,
        at_ms: 5_000,
        change: PoolChange::Removed { key: KeyId(1) },
    });
    add(
        "removed-key-ends-the-wait",
        "The only key is rate limited for 30 s and the machine sleeps for it; the key is removed at 5 s: the sleep ends then, with no_usable_key, instead of running to 30 s.",
        removed,
    );
    let mut at_limit = world(
        "rejected-key-at-the-attempt-limit",
        vec![openai(1)],
        vec![on_key(1, FaultKind::KeyRejected)],
    );
    at_limit.policy.max_attempts = 1;
    add(
        "rejected-key-at-the-attempt-limit",
        "The only key is rejected on the one attempt the policy allows: the call ends auth_permanent (the failure's own reason), not attempts_exhausted.",
        at_limit,
    );
    list
}

/// The scenario with this name.
pub fn find(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}
