//! The fault suite: named families of worlds, each generated from a seed.

use crate::generate::generate;
use crate::schedule::{Fault, FaultKind, FaultScope, HintFormat, Schedule};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use relent::{KeyId, KeySpec, Policy, Provider, Target};

/// A family of worlds.
#[derive(Copy, Clone, Debug)]
pub struct Family {
    /// Its name.
    pub name: &'static str,
    /// What it is.
    pub about: &'static str,
    build: fn(u64) -> Schedule,
}

impl Family {
    /// The world for `seed`.
    pub fn world(&self, seed: u64) -> Schedule {
        (self.build)(seed)
    }
}

/// Every single-call family, in report order.
pub fn all() -> Vec<Family> {
    vec![
        Family {
            name: "single-dead-key",
            about: "one key, rejected (401 / 400 API_KEY_INVALID) from the start",
            build: single_dead_key,
        },
        Family {
            name: "dead-key-in-pool-of-3",
            about: "three keys, one of them (any) rejected",
            build: dead_key_in_pool,
        },
        Family {
            name: "credit-exhausted-1-of-2",
            about:
                "two keys, one (either) out of credit (429 insufficient_quota, 402, credit balance)",
            build: credit_exhausted,
        },
        Family {
            name: "rate-limit-retry-after",
            about: "two keys rate limited for 2-20 s, with retry-after",
            build: |s| rate_limited(s, HintFormat::RetryAfterSeconds),
        },
        Family {
            name: "rate-limit-reset-headers",
            about: "two keys rate limited for 2-20 s, only x-ratelimit-reset headers",
            build: |s| rate_limited(s, HintFormat::ResetHeaders),
        },
        Family {
            name: "overload-529-30s",
            about: "Anthropic 529 for 30 s, two keys",
            build: overload,
        },
        Family {
            name: "flaky-5xx-20pct",
            about: "20 % of sends get a 500",
            build: flaky,
        },
        Family {
            name: "slow-timeouts",
            about: "30 % of sends hang past the 60 s attempt timeout",
            build: slow,
        },
        Family {
            name: "context-overflow-fallback",
            about: "the first target's context is too small; a larger one follows",
            build: context_overflow,
        },
        Family {
            name: "mixed",
            about: "the simulator's swarm worlds (no pool changes, cancels or broken streams)",
            build: mixed,
        },
    ]
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
    let p = if hint == HintFormat::ResetHeaders {
        pick(&mut rng, &[Provider::Openai, Provider::Groq])
    } else {
        pick(
            &mut rng,
            &[Provider::Openai, Provider::Anthropic, Provider::Groq],
        )
    };
    let mut faults = vec![Fault {
        until_ms: Some(2_000 + rng.next_u64() % 18_000),
        ..fault(FaultScope::Key(KeyId(1)), FaultKind::RateLimited { hint })
    }];
    if rng.next_u64() % 2 == 0 {
        faults.push(Fault {
            until_ms: Some(2_000 + rng.next_u64() % 18_000),
            ..fault(FaultScope::Key(KeyId(2)), FaultKind::RateLimited { hint })
        });
    }
    world(seed, vec![Target::new(p, "model", keys(2))], faults)
}

fn overload(seed: u64) -> Schedule {
    world(
        seed,
        vec![Target::new(Provider::Anthropic, "claude", keys(2))],
        vec![Fault {
            until_ms: Some(30_000),
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
    s
}
