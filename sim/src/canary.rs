//! Secret canaries: API keys that never existed, planted by the simulated provider in the
//! bytes it answers with (messages, codes, URLs inside messages), in every shape relent
//! claims to redact. The checker searches everything the machine says for any of them, and
//! for any 12-character window of one, without asking relent's redactor: a check that used
//! the redactor's own test would share its blind spots.
//!
//! Key labels and model names are not canaries, so text a message must show is never
//! reported as a leak.

use aho_corasick::AhoCorasick;
use std::sync::OnceLock;

/// How long a fragment of a canary must be to count as a leak.
pub const WINDOW: usize = 12;

/// The canary secrets, one per key shape. Made up for the simulator: none is a real key.
pub const CANARIES: [&str; 10] = [
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
];

/// How each canary is planted in a provider's message: a shape in which real error bodies,
/// client logs and proxies carry keys. `{}` is replaced by the canary.
pub const CONTEXTS: [&str; 10] = [
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
];

/// Canary `i` (modulo their number) in its context, to put in front of a provider's message.
/// It names no fault, so it does not change how the reply is classified (the checker
/// verifies that too: every classification must match the fault the world scripted).
pub fn planted(i: usize) -> String {
    let i = i % CANARIES.len();
    CONTEXTS[i].replace("{}", CANARIES[i])
}

fn windows() -> &'static AhoCorasick {
    static AUTOMATON: OnceLock<AhoCorasick> = OnceLock::new();
    AUTOMATON.get_or_init(|| {
        let mut patterns: Vec<&str> = CANARIES
            .iter()
            .flat_map(|c| (0..=c.len() - WINDOW).map(move |i| &c[i..i + WINDOW]))
            .collect();
        patterns.sort_unstable();
        patterns.dedup();
        // A full DFA: a few hundred short patterns make a small one, and the search runs
        // on every abort message and recorded code of every world.
        AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(patterns)
            .expect("canary windows build an automaton")
    })
}

/// The first canary fragment found in `text`, if any.
pub fn leaked(text: &str) -> Option<&str> {
    windows().find(text).map(|m| &text[m.start()..m.end()])
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

    #[test]
    fn each_planted_text_holds_its_canary() {
        for (i, canary) in CANARIES.iter().enumerate() {
            assert!(planted(i).contains(canary));
            assert!(leaked(&planted(i)).is_some());
        }
    }
}
