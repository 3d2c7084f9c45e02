//! The classifier's verdicts on replies seen before, kept per thread.
//!
//! The simulated server answers from a few hundred bodies and header sets, and classifying
//! them is most of what a world costs. The classifier is a pure function of the provider,
//! the bytes and (only for absolute reset times, which [`Classified::reads_the_clock`] owns
//! up to) the wall clock, so a verdict kept for the same provider and the same bytes is the
//! verdict the machine would reach itself. The runner hands kept verdicts to the machine as
//! [`relent::Event::Classified`]; the swarm's determinism check runs each checked world a
//! second time with the raw bytes instead ([`crate::RunOptions::raw_responses`]) and
//! compares the traces, so the two paths are held to the same steps.
//!
//! The table is direct-mapped and bounded: a slot holds one reply, found by a hash of all of
//! it and confirmed by comparing every byte, so a collision costs a classification, never a
//! wrong verdict.

use crate::respond::Reply;
use relent::{Classified, Provider};
use std::cell::RefCell;
use std::sync::Arc;

/// Slots in each thread's table (a power of two).
const SLOTS: usize = 1 << 13;

struct Kept {
    hash: u64,
    provider: Provider,
    status: u16,
    headers: Arc<[(String, String)]>,
    body: Arc<[u8]>,
    verdict: Classified,
}

thread_local! {
    static TABLE: RefCell<Vec<Option<Kept>>> = RefCell::new((0..SLOTS).map(|_| None).collect());
}

/// Calls `f` with the verdict on `reply` (an HTTP reply) from `provider`, classified with
/// the wall clock `now_unix_ms` unless a verdict on the same bytes is kept. `None` for a
/// reply that is not HTTP.
pub fn with_verdict<R>(
    reply: &Reply,
    provider: Provider,
    now_unix_ms: u64,
    f: impl FnOnce(&Classified) -> R,
) -> Option<R> {
    let (status, headers, body) = match reply {
        Reply::Http {
            status,
            headers,
            body,
        } => (*status, headers, body),
        _ => return None,
    };
    let hash = hash_reply(provider, status, headers, body);
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let slot = &mut table[(hash as usize) & (SLOTS - 1)];
        let same = |k: &Kept| {
            k.hash == hash
                && k.provider == provider
                && k.status == status
                && (Arc::ptr_eq(&k.headers, headers) || k.headers == *headers)
                && (Arc::ptr_eq(&k.body, body) || k.body == *body)
        };
        if let Some(kept) = slot.as_ref().filter(|k| same(k)) {
            return Some(f(&kept.verdict));
        }
        let verdict = reply
            .observe(|seen| Classified::new(provider, &seen, Some(now_unix_ms)))
            .expect("an HTTP reply is observed");
        let result = f(&verdict);
        if !verdict.reads_the_clock() {
            *slot = Some(Kept {
                hash,
                provider,
                status,
                headers: headers.clone(),
                body: body.clone(),
                verdict,
            });
        }
        Some(result)
    })
}

/// A quick hash of all of a reply (word at a time, multiply and rotate).
fn hash_reply(provider: Provider, status: u16, headers: &[(String, String)], body: &[u8]) -> u64 {
    let mut h = Mix(0x243f_6a88_85a3_08d3 ^ u64::from(status));
    h.bytes(provider.name().as_bytes());
    for (name, value) in headers {
        h.bytes(name.as_bytes());
        h.bytes(value.as_bytes());
    }
    h.bytes(body);
    h.0
}

struct Mix(u64);

impl Mix {
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        // The length ends each piece, so ("ab", "c") and ("a", "bc") differ.
        self.word(u64::from_le_bytes(tail) ^ ((bytes.len() as u64) << 56));
    }
}

/// An HTTP reply, for tests.
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
