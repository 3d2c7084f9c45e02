//! The classifier's verdicts on replies seen before, kept per thread.
//!
//! The simulated server answers from a few hundred bodies, and classifying them was most of
//! what a world cost. Each thread keeps relent's own [`VerdictCache`]: a verdict on the same
//! provider, status, body and body headers is kept, and its wait is read afresh from each
//! reply's headers and clock, so a kept verdict is the one the machine would reach itself
//! (`crates/relent/tests/corpus.rs` holds the cache to that on the whole corpus). The runner
//! hands kept verdicts to the machine as [`relent::Event::Classified`]; the swarm's
//! determinism check runs each checked world a second time with the raw bytes instead
//! ([`crate::RunOptions::raw_responses`]) and compares the traces, so the two paths are held
//! to the same steps.

use crate::respond::Reply;
use relent::{Classified, Provider, VerdictCache};
use std::cell::RefCell;

/// Slots in each thread's cache.
const SLOTS: usize = 1 << 13;

thread_local! {
    static CACHE: RefCell<VerdictCache> = RefCell::new(VerdictCache::new(SLOTS));
}

/// Calls `f` with the verdict on `reply` (an HTTP reply) from `provider`, classified with
/// the wall clock `now_unix_ms`, kept or not. `None` for a reply that is not HTTP.
pub fn with_verdict<R>(
    reply: &Reply,
    provider: Provider,
    now_unix_ms: u64,
    f: impl FnOnce(&Classified) -> R,
) -> Option<R> {
    if !matches!(reply, Reply::Http { .. }) {
        return None;
    }
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        reply.observe(|seen| f(cache.classify(provider, &seen, Some(now_unix_ms))))
    })
}

#[cfg(test)]
fn http(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    Reply::Http {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: u64 = 1_790_000_000_000;

    fn direct(reply: &Reply, provider: Provider, clock: u64) -> Classified {
        reply
            .observe(|seen| Classified::new(provider, &seen, Some(clock)))
            .unwrap()
    }

    /// Kept verdicts are the classifier's own, for equal bytes in other allocations, for
    /// replies that differ in one byte, and for a reply whose wait reads the clock.
    #[test]
    fn kept_verdicts_are_the_classifiers() {
        let quota = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota"}}"#;
        let mut limited = quota.to_vec();
        limited[30] = b'X';
        let replies = [
            http(429, &[], quota),
            http(429, &[], &limited),
            http(429, &[("retry-after", "3")], quota),
            http(429, &[("retry-after", "4")], quota),
            http(503, &[], quota),
            http(
                429,
                &[("retry-after", "Mon, 21 Sep 2026 14:18:20 GMT")],
                b"",
            ),
        ];
        for clock in [CLOCK, CLOCK + 1_000, CLOCK + 60_000] {
            for provider in [Provider::Openai, Provider::Gemini] {
                for reply in &replies {
                    // A fresh allocation of the same bytes each time.
                    let copy = match reply {
                        Reply::Http {
                            status,
                            headers,
                            body,
                        } => Reply::Http {
                            status: *status,
                            headers: headers.to_vec().into(),
                            body: body.to_vec().into(),
                        },
                        _ => unreachable!(),
                    };
                    let kept = with_verdict(&copy, provider, clock, Clone::clone).unwrap();
                    assert_eq!(kept, direct(reply, provider, clock));
                }
            }
        }
        assert!(with_verdict(&Reply::Hang, Provider::Openai, CLOCK, |_| ()).is_none());
    }
}
