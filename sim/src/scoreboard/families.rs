//! The fault suite: named families of worlds, each generated from a seed.

use crate::generate::generate;
use crate::schedule::{Fault, FaultKind, FaultScope, HintFormat, Schedule};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use relent::{KeyId, KeySpec, Policy, Provider, Target};
use std::rc::Rc;

/// A family of worlds: a name, a description, and the world for each seed.
#[derive(Clone)]
pub struct Family {
    /// Its name (a sweep point's name carries its parameter, as in `overload-529-90s`).
    pub name: String,
    /// What it is.
    pub about: String,
    build: Rc<dyn Fn(u64) -> Schedule>,
}

impl std::fmt::Debug for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family").field("name", &self.name).finish()
    }
}

impl Family {
    /// A family built by `build`.
    pub fn new(
        name: impl Into<String>,
        about: impl Into<String>,
        build: impl Fn(u64) -> Schedule + 'static,
    ) -> Self {
        Family {
            name: name.into(),
            about: about.into(),
            build: Rc::new(build),
        }
    }

    /// The world for `seed`.
    pub fn world(&self, seed: u64) -> Schedule {
        (self.build)(seed)
    }
}

/// The overload lengths swept, in seconds.
pub const OVERLOAD_SECONDS: [u64; 4] = [5, 30, 90, 180];
/// The Retry-After values swept for a single key's 429, in seconds.
pub const RETRY_AFTER_SECONDS: [u64; 5] = [5, 30, 60, 90, 300];

/// Every single-call family and sweep point, in report order.
pub fn all() -> Vec<Family> {
    let mut v = vec![
        Family::new(
            "single-dead-key",
            "one key, rejected (401 / 400 API_KEY_INVALID) from the start",
            single_dead_key,
        ),
        Family::new(
            "dead-key-in-pool-of-3",
            "three keys, one of them (any) rejected",
            dead_key_in_pool,
        ),
        Family::new(
            "credit-exhausted-1-of-2",
            "two keys, one (either) out of credit (429 insufficient_quota, 402, credit balance)",
            credit_exhausted,
        ),
        Family::new(
            "rate-limit-retry-after",
            "two keys, one (either) or both rate limited for 2-20 s, with retry-after",
            |s| rate_limited(s, HintFormat::RetryAfterSeconds),
        ),
        Family::new(
            "rate-limit-reset-and-retry-after",
            "as rate-limit-retry-after, with x-ratelimit-reset-* headers beside retry-after",
            |s| rate_limited(s, HintFormat::ResetHeadersAndRetryAfter),
        ),
        Family::new(
            "rate-limit-no-hint",
            "as rate-limit-retry-after, with no hint at all (no retry-after, no reset header)",
            |s| rate_limited(s, HintFormat::None),
        ),
        Family::new(
            "shared-limit",
            "one rate limit shared by every key (an organisation's), 2-20 s, with retry-after",
            shared_limit,
        ),
    ];
    for secs in RETRY_AFTER_SECONDS {
        v.push(Family::new(
            format!("one-key-429-retry-after-{secs}s"),
            format!("one key rate limited for {secs} s, saying so with retry-after"),
            move |s| one_key_retry_after(s, secs),
        ));
    }
    for secs in OVERLOAD_SECONDS {
        v.push(Family::new(
            format!("overload-529-{secs}s"),
            format!("Anthropic 529 on every send for {secs} s, two keys"),
            move |s| overload(s, secs),
        ));
    }
    v.extend([
        Family::new(
            "overload-50pct-60s",
            "Anthropic 529 on half the sends for 60 s, two keys",
            overload_half,
        ),
        Family::new(
            "one-off-401",
            "two keys; one (either) answers a single 401, then works",
            one_off_401,
        ),
        Family::new(
            "flaky-401-30pct",
            "two keys; one (either) answers 401 on 30 % of its sends",
            flaky_401,
        ),
        Family::new("flaky-5xx-20pct", "20 % of sends get a 500", flaky),
        Family::new(
            "slow-timeouts",
            "30 % of sends hang past the 60 s attempt timeout",
            slow,
        ),
        Family::new(
            "context-overflow-fallback",
            "the first target's context is too small; a larger one follows",
            context_overflow,
        ),
        Family::new(
            "mixed",
            "the simulator's swarm worlds (no pool changes, cancels or broken streams)",
            mixed,
        ),
    ]);
    v
}

/// A family of call sequences: each world is played as `calls` calls in a row over one
/// client, whose state (relent's pool, hermes-agent's credential pool, LiteLLM's cooldowns)
/// carries from call to call.
#[derive(Clone, Debug)]
pub struct Sequence {
    /// Its name.
    pub name: &'static str,
    /// What it is.
    pub about: &'static str,
    /// Calls per world.
    pub calls: u32,
    /// Time between call starts, ms.
    pub gap_ms: u64,
    /// The world for a seed.
    pub build: fn(u64) -> Schedule,
}

/// Every sequence family.
pub fn sequences() -> Vec<Sequence> {
    vec![Sequence {
        name: "sequence-20-calls",
        about: "one client, 20 calls 3 s apart; of its three keys one (any) is dead and another rate limited for 10-40 s with retry-after",
        calls: 20,
        gap_ms: 3_000,
        build: sequence_world,
    }, Sequence {
        name: "sequence-20-calls-no-hint",
        about: "one client, 20 calls 3 s apart; of its three keys one (any) draws 429s with no hint for 30-60 s",
        calls: 20,
        gap_ms: 3_000,
        build: sequence_no_hint_world,
    }]
}

fn sequence_no_hint_world(seed: u64) -> Schedule {
    let mut rng = dice(seed);
    let p = pick(&mut rng, &[Provider::Openai, Provider::Anthropic]);
    let limited = 1 + (rng.next_u64() % 3) as u32;
    world(
        seed,
        vec![Target::new(p, "model", keys(3))],
        vec![Fault {
            until_ms: Some(30_000 + rng.next_u64() % 30_000),
            ..fault(
                FaultScope::Key(KeyId(limited)),
                FaultKind::RateLimited {
                    hint: HintFormat::None,
                },
            )
        }],
    )
}

fn sequence_world(seed: u64) -> Schedule {
    let mut rng = dice(seed);
    let p = pick(&mut rng, &[Provider::Openai, Provider::Anthropic]);
    let dead = 1 + (rng.next_u64() % 3) as u32;
    let limited = 1 + (dead + rng.next_u64() as u32 % 2) % 3;
    world(
        seed,
        vec![Target::new(p, "model", keys(3))],
        vec![
            fault(FaultScope::Key(KeyId(dead)), FaultKind::KeyRejected),
            Fault {
                until_ms: Some(10_000 + rng.next_u64() % 30_000),
                ..fault(
                    FaultScope::Key(KeyId(limited)),
                    FaultKind::RateLimited {
                        hint: HintFormat::RetryAfterSeconds,
                    },
                )
            },
        ],
    )
}

fn dice(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ 0x5c0e_b0a2_d000_0000)
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[(rng.next_u64() % items.len() as u64) as usize]
}

fn keys(n: u32) -> Vec<KeySpec> {
    (1..=n)
        .map(|i| KeySpec::new(i, format!("key-{i}")))
        .collect()
}

fn world(seed: u64, targets: Vec<Target>, faults: Vec<Fault>) -> Schedule {
    Schedule {
        name: None,
        seed,
        policy: Policy::default(),
        targets,
        faults,
        pool_changes: Vec::new(),
        cancel_at_ms: None,
        latency_ms: 300,
        heal_at_ms: None,
        calls: Vec::new(),
    }
}

fn fault(scope: FaultScope, kind: FaultKind) -> Fault {
    Fault {
        scope,
        from_ms: 0,
        until_ms: None,
        first_sends: None,
        probability: 1.0,
        kind,
    }
}

const KEY_PROVIDERS: [Provider; 6] = [
    Provider::Openai,
    Provider::Anthropic,
    Provider::Gemini,
    Provider::Groq,
    Provider::Deepseek,
    Provider::Xai,
];

fn single_dead_key(seed: u64) -> Schedule {
    let p = pick(&mut dice(seed), &KEY_PROVIDERS);
    world(
        seed,
        vec![Target::new(p, "model", keys(1))],
        vec![fault(FaultScope::Key(KeyId(1)), FaultKind::KeyRejected)],
    )
}

fn dead_key_in_pool(seed: u64) -> Schedule {
    let mut rng = dice(seed);
    let p = pick(&mut rng, &KEY_PROVIDERS);
    let dead = KeyId(1 + (rng.next_u64() % 3) as u32);
    world(
        seed,
        vec![Target::new(p, "model", keys(3))],
        vec![fault(FaultScope::Key(dead), FaultKind::KeyRejected)],
    )
}

fn credit_exhausted(seed: u64) -> Schedule {
    let mut rng = dice(seed);
    let p = pick(
        &mut rng,
        &[
            Provider::Openai,
            Provider::Anthropic,
            Provider::Deepseek,
            Provider::Openrouter,
        ],
    );
    let spent = KeyId(1 + (rng.next_u64() % 2) as u32);
    world(
        seed,
        vec![Target::new(p, "model", keys(2))],
        vec![fault(
            FaultScope::Key(spent),
            FaultKind::QuotaExhausted { reset: false },
        )],
    )
}

fn rate_limited(seed: u64, hint: HintFormat) -> Schedule {
    let mut rng = dice(seed);
    let p = if hint == HintFormat::ResetHeadersAndRetryAfter {
        pick(&mut rng, &[Provider::Openai, Provider::Groq])
    } else {
        pick(
            &mut rng,
            &[Provider::Openai, Provider::Anthropic, Provider::Groq],
        )
    };
    let first = 1 + (rng.next_u64() % 2) as u32;
    let mut limited = vec![first];
    if rng.next_u64() % 2 == 0 {
        limited.push(3 - first);
    }
    let faults = limited
        .into_iter()
        .map(|k| Fault {
            until_ms: Some(2_000 + rng.next_u64() % 18_000),
            ..fault(FaultScope::Key(KeyId(k)), FaultKind::RateLimited { hint })
        })
        .collect();
    world(seed, vec![Target::new(p, "model", keys(2))], faults)
}

fn shared_limit(seed: u64) -> Schedule {
    let mut rng = dice(seed);
    let p = pick(
        &mut rng,
        &[Provider::Openai, Provider::Anthropic, Provider::Groq],
    );
    let n = 2 + (rng.next_u64() % 2) as u32;
    world(
        seed,
        vec![Target::new(p, "model", keys(n))],
        vec![Fault {
            until_ms: Some(2_000 + rng.next_u64() % 18_000),
            ..fault(
                FaultScope::Target(0),
                FaultKind::RateLimited {
                    hint: HintFormat::RetryAfterSeconds,
                },
            )
        }],
    )
}

fn one_key_retry_after(seed: u64, secs: u64) -> Schedule {
    let p = pick(
        &mut dice(seed),
        &[Provider::Openai, Provider::Anthropic, Provider::Groq],
    );
    world(
        seed,
        vec![Target::new(p, "model", keys(1))],
        vec![Fault {
            until_ms: Some(secs * 1000),
            ..fault(
                FaultScope::Key(KeyId(1)),
                FaultKind::RateLimited {
                    hint: HintFormat::RetryAfterSeconds,
                },
            )
        }],
    )
}

fn overload_half(seed: u64) -> Schedule {
    world(
        seed,
        vec![Target::new(Provider::Anthropic, "claude", keys(2))],
        vec![Fault {
            until_ms: Some(60_000),
            probability: 0.5,
            ..fault(FaultScope::Target(0), FaultKind::Overloaded)
        }],
    )
}

fn one_off_401(seed: u64) -> Schedule {
    let mut rng = dice(seed);
    let p = pick(&mut rng, &KEY_PROVIDERS);
    let key = KeyId(1 + (rng.next_u64() % 2) as u32);
    world(
        seed,
        vec![Target::new(p, "model", keys(2))],
        vec![Fault {
            first_sends: Some(1),
            ..fault(FaultScope::Key(key), FaultKind::KeyRejected)
        }],
    )
}

fn flaky_401(seed: u64) -> Schedule {
    let mut rng = dice(seed);
    let p = pick(&mut rng, &KEY_PROVIDERS);
    let key = KeyId(1 + (rng.next_u64() % 2) as u32);
    world(
        seed,
        vec![Target::new(p, "model", keys(2))],
        vec![Fault {
            probability: 0.3,
            ..fault(FaultScope::Key(key), FaultKind::KeyRejected)
        }],
    )
}

fn overload(seed: u64, secs: u64) -> Schedule {
    world(
        seed,
        vec![Target::new(Provider::Anthropic, "claude", keys(2))],
        vec![Fault {
            until_ms: Some(secs * 1000),
            ..fault(FaultScope::Target(0), FaultKind::Overloaded)
        }],
    )
}

fn flaky(seed: u64) -> Schedule {
    let p = pick(&mut dice(seed), &KEY_PROVIDERS);
    world(
        seed,
        vec![Target::new(p, "model", keys(2))],
        vec![Fault {
            probability: 0.2,
            ..fault(FaultScope::Target(0), FaultKind::ServerError)
        }],
    )
}

fn slow(seed: u64) -> Schedule {
    let p = pick(&mut dice(seed), &KEY_PROVIDERS);
    world(
        seed,
        vec![Target::new(p, "model", keys(2))],
        vec![Fault {
            probability: 0.3,
            ..fault(FaultScope::Target(0), FaultKind::Slow)
        }],
    )
}

fn context_overflow(seed: u64) -> Schedule {
    let p = pick(
        &mut dice(seed),
        &[
            Provider::Openai,
            Provider::Anthropic,
            Provider::Deepseek,
            Provider::Mistral,
        ],
    );
    let small = Target {
        provider: p,
        model: "small".into(),
        context_tokens: Some(32_000),
        keys: keys(1),
    };
    let large = Target {
        provider: Provider::Gemini,
        model: "large".into(),
        context_tokens: Some(1_048_576),
        keys: vec![KeySpec::new(10, "large-1")],
    };
    world(
        seed,
        vec![small, large],
        vec![fault(FaultScope::Target(0), FaultKind::ContextOverflow)],
    )
}

fn mixed(seed: u64) -> Schedule {
    let mut s = generate(seed);
    s.pool_changes.clear();
    s.cancel_at_ms = None;
    s.faults
        .retain(|f| !matches!(f.kind, FaultKind::ErrorIn200 | FaultKind::StreamFailsMidway));
    // The swarm draws tiny retry budgets and touchy breakers in a quarter of its worlds to
    // exercise the checker; the scoreboard measures relent's own overload settings.
    s.policy.overload = relent::OverloadPolicy::default();
    s
}
