//! Secret canaries: API keys that never existed, planted by the simulated provider in the
//! bytes it answers with (messages, codes, URLs inside messages), in every shape relent
//! claims to redact. The checker searches everything the machine says for any of them, and
//! for any 12-character window of one, without asking relent's redactor: a check that used
//! the redactor's own test would share its blind spots.
//!
//! Key labels and model names are not canaries, so text a message must show is never
//! reported as a leak.

use std::sync::OnceLock;

/// How long a fragment of a canary must be to count as a leak.
pub const WINDOW: usize = 12;

/// The canary secrets, one per key shape. Made up for the simulator: none is a real key.
pub const CANARIES: [&str; 11] = [
    // OpenAI project key.
    "sk-proj-Qm7vT2xLp9RkW4nZc8HsJd3FbYg6NtUe1AaVoXi5MqSr0KwPlEuGh",
    // Anthropic key.
    "sk-ant-api03-Zt4Hq8LmV2pN6sR1xW9cK3yB7dF5gJ0aE-uQiOoTlMnPr",
    // Google API key.
    "AIzaSyD4xK9mQ2vL7pT1wR8nZ3cB6hJ0fG5yUeA",
    // Groq key.
    "gsk_W8yH2kP5tQ9mN3vX7cL1rB4jF6dS0gZaEeUiOoTqRwYnMb",
    // xAI key.
    "xai-R5tY8uI2oP4aS6dF9gH1jK3lZ7xC0vB5nM8qW2eR4tY6uI9oP1aS3dF5gH7",
    // OpenRouter key.
    "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",
    // GitHub token.
    "ghp_Nq4Xw8Ey2Rt6Yu0Io3Pa7Sd1Fg5Hj9Kl2Zx",
    // A JWT (header.payload.signature).
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnktdXNlciJ9.Xq9LmT4vR2pN7sK1wZ8cY3bH6fJ0dG5a",
    // An AWS access key id (its secret follows in the same message).
    "AKIAQX7RZ4MN2PL9WT3V",
    // An AWS secret access key.
    "wJalrXUtnF3MI7K9MDENGbPxRfiCYq2zKx8Lm4Vn",
    // A credential of no known shape (a proxy's or a self-hosted gateway's key): its
    // pieces between `_` and `-` are too short for the opaque-token rule, so only the
    // context it stands in (a parameter name, a scheme, a tag, a cookie) marks it.
    "Vq7f_kP2-hLm9Zr_T4wYb8Nc-Jd3Vg6sQ1aE",
];

/// How each canary is planted in a provider's message: a shape in which real error bodies,
/// client logs and proxies carry keys. `{}` is replaced by the canary. There are more
/// contexts than canaries, and their numbers share no factor, so the replies meet many
/// pairings of a canary and a context.
pub const CONTEXTS: [&str; 16] = [
    "(api_key={})",
    "[x-api-key:{}]",
    "(see https://generativelanguage.googleapis.com/v1beta/models?key={}&alt=sse)",
    "(key:{})",
    "(Authorization: Bearer {})",
    "(Authorization:Bearer:{})",
    "(token={})",
    "(bearer={})",
    "(secret={})",
    "(password={})",
    // An XML error echoing the request's header.
    "<ApiKey>{}</ApiKey>",
    // A proxy echoing the request's cookies.
    "(Cookie: session={}; theme=dark)",
    // Full-width brackets and colon, as CJK gateways write them.
    "（api_key：{}）",
    // A command line echoed in a log.
    "(curl --api-key {} failed)",
    // A header as a name and value pair, as HAR files and request dumps hold it.
    r#"({"name":"X-Api-Key","value":"{}"})"#,
    // A sentence of a log or a gateway's message: no `=` or `:` marks the value.
    "(request sent with key {} by the proxy)",
];

/// The canary of no known shape: only its context marks it, so it is the one that tests a
/// context rule.
pub const SHAPELESS: &str = CANARIES[CANARIES.len() - 1];

/// Canary `i` (modulo their number) in context `i` (modulo theirs), then [`SHAPELESS`] in
/// another context, to put in front of a provider's message. The shapeless canary goes
/// along with every reply, so the replies of the swarm meet it in every context (a test
/// below checks that over every fault of every provider); a canary of a known shape is
/// found by its shape wherever it stands.
/// It names no fault, so it does not change how the reply is classified (the checker
/// verifies that too: every classification must match the fault the world scripted).
pub fn planted(i: usize) -> String {
    let context = |c: usize, canary: &str| CONTEXTS[c % CONTEXTS.len()].replace("{}", canary);
    format!(
        "{} {}",
        context(i, CANARIES[i % CANARIES.len()]),
        context(i + 1, SHAPELESS)
    )
}

/// Every `WINDOW`-byte window of every canary, in an open-addressed table keyed by the
/// window's bytes. The search runs over every abort message and recorded code of every
/// world, and over whole `Debug` dumps in the deep-scanned ones, so it is built for speed.
/// Any `WINDOW` bytes of a text hold the `HALF` bytes (half a window) that start at some
/// multiple of `STRIDE` (`WINDOW - HALF + 1`, so one of any `STRIDE` consecutive starts is
/// such a multiple), and those bytes are then `HALF` consecutive bytes of a canary. So the
/// search looks only at every `STRIDE`-th position, in a bit set of the canaries' `HALF`-byte
/// pieces, and only where one may be there are the windows holding it looked up: first in a
/// bit set of their first four bytes, then in the table.
struct Windows {
    /// One bit per hash of a `HALF`-byte piece of a canary (see [`half_bit`]).
    halves: Vec<u64>,
    /// One bit per hash of a window's first four bytes (see [`quad_bit`]).
    quads: Vec<u64>,
    /// Windows packed little-endian into the low 96 bits; 0 marks an empty slot (no canary
    /// holds a NUL byte, so no window packs to 0).
    slots: Vec<u128>,
    /// `slots.len() - 1` (a power of two, minus one).
    mask: usize,
}

/// The bytes of one window as a number: equal windows pack equal, different ones differ.
fn pack(window: &[u8]) -> u128 {
    let mut bytes = [0u8; 16];
    bytes[..WINDOW].copy_from_slice(window);
    u128::from_le_bytes(bytes)
}

/// Half a window: the length of the pieces the search looks at.
const HALF: usize = WINDOW / 2;

/// How far apart the pieces the search looks at start: any `WINDOW` bytes hold one.
const STRIDE: usize = WINDOW - HALF + 1;

/// The bit of [`Windows::halves`] for these `HALF` bytes.
fn half_bit(piece: &[u8]) -> usize {
    let mut bytes = [0u8; 8];
    bytes[..HALF].copy_from_slice(&piece[..HALF]);
    (u64::from_le_bytes(bytes).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - QUAD_BITS)) as usize
}

/// The bit of [`Windows::quads`] for a window starting with these four bytes.
fn quad_bit(window: &[u8]) -> usize {
    let quad = u32::from_le_bytes([window[0], window[1], window[2], window[3]]);
    (quad.wrapping_mul(0x9e37_79b1) >> (32 - QUAD_BITS)) as usize
}

/// log2 of the number of bits in [`Windows::quads`]: 65 536 bits for about 450 windows.
const QUAD_BITS: u32 = 16;

fn slot_of(key: u128, mask: usize) -> usize {
    let mixed =
        (key as u64 ^ ((key >> 64) as u64).rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 32) as usize & mask
}

impl Windows {
    fn build() -> Self {
        let mut halves = vec![0u64; (1 << QUAD_BITS) / 64];
        let mut quads = vec![0u64; (1 << QUAD_BITS) / 64];
        let mut keys: Vec<u128> = Vec::new();
        for canary in CANARIES {
            let bytes = canary.as_bytes();
            for piece in bytes.windows(HALF) {
                let bit = half_bit(piece);
                halves[bit / 64] |= 1 << (bit % 64);
            }
            for window in bytes.windows(WINDOW) {
                let bit = quad_bit(window);
                quads[bit / 64] |= 1 << (bit % 64);
                keys.push(pack(window));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        // At most a quarter full, so probe chains stay short.
        let size = (keys.len() * 4).next_power_of_two();
        let mask = size - 1;
        let mut slots = vec![0u128; size];
        for key in keys {
            let mut at = slot_of(key, mask);
            while slots[at] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = key;
        }
        Windows {
            halves,
            quads,
            slots,
            mask,
        }
    }

    /// Whether these `HALF` bytes may be a piece of a canary (no means no).
    fn may_hold_half(&self, piece: &[u8]) -> bool {
        let bit = half_bit(piece);
        self.halves[bit / 64] & (1 << (bit % 64)) != 0
    }

    fn holds(&self, window: &[u8]) -> bool {
        let bit = quad_bit(window);
        if self.quads[bit / 64] & (1 << (bit % 64)) == 0 {
            return false;
        }
        let key = pack(window);
        let mut at = slot_of(key, self.mask);
        loop {
            match self.slots[at] {
                0 => return false,
                k if k == key => return true,
                _ => at = (at + 1) & self.mask,
            }
        }
    }
}

fn windows() -> &'static Windows {
    static TABLE: OnceLock<Windows> = OnceLock::new();
    TABLE.get_or_init(Windows::build)
}

/// The first canary fragment found in `text`, if any: the first `WINDOW` bytes of `text`
/// that are also `WINDOW` consecutive bytes of some canary.
pub fn leaked(text: &str) -> Option<&str> {
    let table = windows();
    let bytes = text.as_bytes();
    let last_start = bytes.len().checked_sub(WINDOW)?;
    // Windows starting before `checked` were looked up already.
    let mut checked = 0;
    let mut at = 0;
    while at + HALF <= bytes.len() {
        if table.may_hold_half(&bytes[at..at + HALF]) {
            // The windows that hold these bytes start from `at + HALF - WINDOW` to `at`, in
            // order, so the first fragment found is the first in the text.
            let until = at.min(last_start);
            for from in (at + HALF).saturating_sub(WINDOW).max(checked)..=until {
                if table.holds(&bytes[from..from + WINDOW]) {
                    // Canary bytes are ASCII, so both ends are character boundaries.
                    return Some(&text[from..from + WINDOW]);
                }
            }
            checked = checked.max(until + 1);
        }
        at += STRIDE;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_window_of_every_canary_is_found_and_labels_are_not() {
        for canary in CANARIES {
            assert!(canary.len() >= 20, "{canary} is too short to be a key");
            for i in 0..=canary.len() - WINDOW {
                let text = format!("before {} after", &canary[i..i + WINDOW]);
                assert!(leaked(&text).is_some(), "window {i} of {canary}");
            }
        }
        for innocent in [
            "key t0-k1 (openai, model-0) was rejected",
            "xai-main",
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            "sk-proj-********************abcd",
        ] {
            assert_eq!(leaked(innocent), None, "{innocent}");
        }
    }

    /// The first fragment by brute force: every window of `text` against every window of
    /// every canary.
    fn leaked_naively(text: &str) -> Option<&str> {
        let bytes = text.as_bytes();
        (0..bytes.len().saturating_sub(WINDOW - 1)).find_map(|start| {
            let window = &bytes[start..start + WINDOW];
            CANARIES
                .iter()
                .any(|c| c.as_bytes().windows(WINDOW).any(|w| w == window))
                .then(|| &text[start..start + WINDOW])
        })
    }

    proptest::proptest! {
        /// Texts made of canary pieces of any length, cut anywhere, glued to words, other
        /// key-like bytes and non-ASCII text: the table search finds exactly what brute force
        /// finds, at the same place.
        #[test]
        fn the_table_finds_what_brute_force_finds(
            pieces in proptest::collection::vec(
                (0usize..CANARIES.len(), 0usize..90, 0usize..20, "[a-zA-Z0-9_.=é -]{0,14}"),
                0..6,
            )
        ) {
            let mut text = String::new();
            for (which, from, len, glue) in pieces {
                let canary = CANARIES[which];
                let from = from.min(canary.len());
                let to = (from + len).min(canary.len());
                text.push_str(&canary[from..to]);
                text.push_str(&glue);
            }
            proptest::prop_assert_eq!(leaked(&text), leaked_naively(&text));
        }
    }

    /// Over every fault of every provider, the shapeless canary stands in every context:
    /// what the swarm plants tests every context rule.
    #[test]
    fn the_shapeless_canary_meets_every_context() {
        use crate::respond::{fault, Reply};
        use crate::schedule::FaultKind;
        let mut met = [false; CONTEXTS.len()];
        for provider in relent::Provider::ALL {
            for kind in FaultKind::ALL {
                let Reply::Http { body, .. } = fault(provider, kind, 0, 1_000) else {
                    continue;
                };
                let body = String::from_utf8_lossy(&body);
                for (c, context) in CONTEXTS.iter().enumerate() {
                    let text = context.replace("{}", SHAPELESS);
                    // As it is, or as a JSON string holds it.
                    let json = serde_json::to_string(&text).unwrap_or_default();
                    met[c] |= body.contains(&text) || body.contains(&json[1..json.len() - 1]);
                }
            }
        }
        let missing: Vec<_> = (0..CONTEXTS.len())
            .filter(|&c| !met[c])
            .map(|c| CONTEXTS[c])
            .collect();
        assert!(
            missing.is_empty(),
            "never planted with the shapeless canary: {missing:?}"
        );
    }

    #[test]
    fn each_planted_text_holds_its_canary() {
        for i in 0..CANARIES.len() * CONTEXTS.len() {
            let canary = CANARIES[i % CANARIES.len()];
            assert!(planted(i).contains(canary));
            assert!(leaked(&planted(i)).is_some());
        }
    }
}
