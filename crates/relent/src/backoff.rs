//! Backoff delays with jitter, drawn from the machine's seeded RNG.
//!
//! The three jitter kinds are those of the AWS Architecture blog post "Exponential Backoff and
//! Jitter": full `U(0, e)`, equal `e/2 + U(0, e/2)` and decorrelated `min(cap, U(base, 3·prev))`,
//! where `e = min(cap, base · 2^n)`.

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How to spread retries in time.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// `U(0, e)`: spreads load best under contention.
    Full,
    /// `e/2 + U(0, e/2)`: never waits less than half the exponential delay. The default:
    /// a near-zero wait after an overload is a wasted call.
    #[default]
    Equal,
    /// `min(cap, U(base, 3·previous))`.
    Decorrelated,
    /// Exactly `e`; for tests and comparisons only.
    None,
}

/// Exponential backoff parameters.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backoff {
    /// The jitter kind.
    pub jitter: Jitter,
    /// The first delay's scale, in milliseconds.
    pub base_ms: u64,
    /// No delay exceeds this, in milliseconds.
    pub cap_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            jitter: Jitter::Equal,
            base_ms: 1_000,
            cap_ms: 30_000,
        }
    }
}

impl Backoff {
    /// The delay before retry number `n` (0 for the first retry); `previous_ms` is the last
    /// delay (for decorrelated jitter).
    pub fn delay_ms(&self, n: u32, previous_ms: u64, rng: &mut ChaCha8Rng) -> u64 {
        let cap = self.cap_ms.max(1);
        let exp = self
            .base_ms
            .saturating_mul(1u64.checked_shl(n.min(63)).unwrap_or(u64::MAX))
            .min(cap);
        match self.jitter {
            Jitter::Full => uniform(rng, 0, exp),
            Jitter::Equal => exp / 2 + uniform(rng, 0, exp - exp / 2),
            Jitter::Decorrelated => {
                let low = self.base_ms.min(cap);
                let high = previous_ms.max(self.base_ms).saturating_mul(3).min(cap);
                uniform(rng, low, high.max(low))
            }
            Jitter::None => exp,
        }
    }
}

/// A uniform integer in `[low, high]`.
pub(crate) fn uniform(rng: &mut ChaCha8Rng, low: u64, high: u64) -> u64 {
    let span = high.saturating_sub(low);
    if span == 0 {
        return low;
    }
    // The modulo bias is below 2^-40 for spans under a day in milliseconds.
    low + rng.next_u64() % (span + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn delays_stay_within_their_bounds() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for jitter in [
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
            Jitter::None,
        ] {
            let b = Backoff {
                jitter,
                base_ms: 1000,
                cap_ms: 30_000,
            };
            let mut prev = 0;
            for n in 0..80 {
                let d = b.delay_ms(n, prev, &mut rng);
                let exp = (1000u64 << n.min(20)).min(30_000);
                assert!(d <= 30_000, "{jitter:?} n={n} d={d}");
                match jitter {
                    Jitter::Full => assert!(d <= exp),
                    Jitter::Equal => assert!(d >= exp / 2 && d <= exp),
                    Jitter::Decorrelated => assert!(d >= 1000),
                    Jitter::None => assert_eq!(d, exp),
                }
                prev = d;
            }
        }
    }

    #[test]
    fn same_seed_same_delays() {
        let b = Backoff::default();
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..10)
                .map(|n| b.delay_ms(n, 0, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
