//! Verdicts on responses seen before, kept so that a repeated error body is read once.

use super::{judge, BodyHeaders, Classified, Observation, Pending, Provider};

/// A bounded memo of the classifier's verdicts, for a driver that sees the same error bodies
/// again and again (a storm of 429s, a dead key's 401 on every call).
///
/// A verdict depends on the provider, the status, the body, three body headers
/// (`x-amzn-errortype` or `:exception-type`, `content-type`, and a CDN firewall's
/// `cf-mitigated` or `x-vercel-mitigated`) and, through the wait only, on the other headers
/// and the wall clock. The cache keeps what the first group decides, found by a hash of it
/// and confirmed by comparing every byte, and reads the wait from each response's own headers
/// and clock. So [`VerdictCache::classify`] returns exactly what [`Classified::new`] would
/// for the same arguments, hit or miss; a 429 whose `retry-after` changes from one response
/// to the next still hits.
///
/// The table is direct-mapped: a slot holds one body, and a body that lands on a taken slot
/// replaces it. Bodies over [`VerdictCache::MAX_KEPT_BODY`] bytes and transport failures are
/// classified every time. The cache holds the raw bodies it keeps, which may quote a key;
/// its `Debug` output shows only counts.
pub struct VerdictCache {
    slots: Box<[Option<Slot>]>,
    /// The verdict on the last observation that was not kept.
    fresh: Option<Classified>,
    hits: u64,
    misses: u64,
}

struct Slot {
    hash: u64,
    provider: Provider,
    status: u16,
    body: Box<[u8]>,
    aws_type: Option<Box<str>>,
    content_type: Option<Box<str>>,
    waf_mitigated: bool,
    pending: Pending,
    verdict: Classified,
}

impl Slot {
    fn holds(
        &self,
        hash: u64,
        provider: Provider,
        status: u16,
        body: &[u8],
        h: &BodyHeaders,
    ) -> bool {
        self.hash == hash
            && self.provider == provider
            && self.status == status
            && self.waf_mitigated == h.waf_mitigated
            && *self.body == *body
            && self.aws_type.as_deref() == h.aws_type
            && self.content_type.as_deref() == h.content_type
    }
}

impl VerdictCache {
    /// The largest body kept, in bytes (larger ones are classified every time).
    pub const MAX_KEPT_BODY: usize = 16 * 1024;

    /// The most slots a cache has.
    pub const MAX_SLOTS: usize = 1 << 16;

    /// A cache of `slots` slots, rounded up to a power of two between 1 and
    /// [`VerdictCache::MAX_SLOTS`]. It holds at most that many bodies, each of at most
    /// [`VerdictCache::MAX_KEPT_BODY`] bytes (16 MiB in all for 1 024 slots, at worst), with
    /// a verdict and a few hundred bytes of bookkeeping each.
    pub fn new(slots: usize) -> Self {
        let slots = slots.clamp(1, Self::MAX_SLOTS).next_power_of_two();
        VerdictCache {
            slots: (0..slots).map(|_| None).collect(),
            fresh: None,
            hits: 0,
            misses: 0,
        }
    }

    /// The verdict on `seen` from `provider`, as [`Classified::new`] gives it for the same
    /// arguments; kept for the next response with the same status, body and body headers.
    pub fn classify(
        &mut self,
        provider: Provider,
        seen: &Observation<'_>,
        now_unix_ms: Option<u64>,
    ) -> &Classified {
        let response = match seen {
            Observation::Http(r) if r.body.len() <= Self::MAX_KEPT_BODY => r,
            _ => {
                self.misses += 1;
                return self
                    .fresh
                    .insert(Classified::new(provider, seen, now_unix_ms));
            }
        };
        let h = BodyHeaders::of(response.headers);
        let hash = hash_key(provider, response.status, response.body, &h);
        let index = (hash as usize) & (self.slots.len() - 1);
        let slot = &mut self.slots[index];
        match slot {
            Some(kept) if kept.holds(hash, provider, response.status, response.body, &h) => {
                self.hits += 1;
            }
            _ => {
                self.misses += 1;
                let judged = judge(provider, response.status, response.body, h);
                *slot = Some(Slot {
                    hash,
                    provider,
                    status: response.status,
                    body: response.body.into(),
                    aws_type: h.aws_type.map(Into::into),
                    content_type: h.content_type.map(Into::into),
                    waf_mitigated: h.waf_mitigated,
                    pending: judged.pending,
                    verdict: Classified::of_http(provider, response.status, judged.classification),
                });
            }
        }
        let Some(kept) = slot.as_mut() else {
            unreachable!("the slot was just checked or filled")
        };
        kept.pending.settle(
            kept.verdict.classification_mut(),
            response.headers,
            now_unix_ms,
        );
        &kept.verdict
    }

    /// Verdicts found kept.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Verdicts classified afresh (not kept, or kept and replaced since).
    pub fn misses(&self) -> u64 {
        self.misses
    }
}

impl Default for VerdictCache {
    /// A cache of 1 024 slots.
    fn default() -> Self {
        VerdictCache::new(1024)
    }
}

impl std::fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerdictCache")
            .field("slots", &self.slots.len())
            .field("kept", &self.slots.iter().flatten().count())
            .field("hits", &self.hits)
            .field("misses", &self.misses)
            .finish()
    }
}

/// A quick hash of what a verdict on a body depends on (word at a time, multiply and rotate).
fn hash_key(provider: Provider, status: u16, body: &[u8], h: &BodyHeaders) -> u64 {
    let mut m = Mix(0x243f_6a88_85a3_08d3 ^ u64::from(status) ^ (u64::from(h.waf_mitigated) << 16));
    m.bytes(provider.name().as_bytes());
    for value in [h.aws_type, h.content_type] {
        match value {
            Some(v) => m.bytes(v.as_bytes()),
            None => m.word(0x9e37),
        }
    }
    m.bytes(body);
    m.0
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
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.word(u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        // The length ends each piece, so ("ab", "c") and ("a", "bc") differ.
        self.word(u64::from_le_bytes(tail) ^ ((bytes.len() as u64) << 56));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot count is rounded up to a power of two and bounded on both sides: no request,
    /// however odd, makes a cache without slots or one of absurd size.
    #[test]
    fn slot_counts_are_powers_of_two_within_bounds() {
        for (asked, slots) in [
            (0, 1),
            (1, 1),
            (3, 4),
            (1024, 1024),
            (1025, 2048),
            (usize::MAX, VerdictCache::MAX_SLOTS),
        ] {
            assert_eq!(VerdictCache::new(asked).slots.len(), slots, "{asked}");
        }
        assert_eq!(VerdictCache::default().slots.len(), 1024);
    }
}
