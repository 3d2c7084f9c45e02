//! What relent knows about each provider, in one table: its name and aliases, the body
//! shapes it answers with, its authentication style, and the two provider-specific rule
//! switches the classifier has (Google's quota wording, an aggregator's wrapped upstream
//! errors). Phrases and codes are not per provider: the phrase families in `rules.rs` are
//! shared, because gateways and OpenAI-compatible servers repeat each other's wordings.
//!
//! Adding a provider: see the checklist in `docs/CLASSIFIER.md`.

use super::Provider;

/// One provider's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSpec {
    /// The provider.
    pub provider: Provider,
    /// The lowercase name used in configs and on the command line.
    pub name: &'static str,
    /// Other names accepted when parsing (lowercase).
    pub aliases: &'static [&'static str],
    /// The error body shapes it sends, as `body.rs` reads them (documentation for humans).
    pub shapes: &'static str,
    /// How a request carries its key (documentation for humans and drivers).
    pub auth: &'static str,
    /// Google's wording: a per-minute limit is worded as "You exceeded your current quota"
    /// and is a rate limit unless a daily quota or `limit: 0` is named.
    pub google_quota_wording: bool,
    /// An aggregator: "Provider returned error" with `metadata.raw` is the upstream's answer,
    /// so an upstream auth failure is not this key's and an upstream 429 is not this key's.
    pub wraps_upstreams: bool,
}

const OPENAI_SHAPE: &str = r#"{"error":{"message","type","param","code"}}"#;

/// Every provider, in the order of [`Provider::ALL`].
pub const SPECS: [ProviderSpec; 12] = [
    ProviderSpec {
        provider: Provider::Openai,
        name: "openai",
        aliases: &["open_ai"],
        shapes: OPENAI_SHAPE,
        auth: "Authorization: Bearer",
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Azure,
        name: "azure",
        aliases: &["azure_openai"],
        shapes: r#"{"error":{"code","message","innererror":{"code"}}}"#,
        auth: "api-key header, or Authorization: Bearer (Entra ID)",
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Anthropic,
        name: "anthropic",
        aliases: &[],
        shapes: r#"{"type":"error","error":{"type","message"}}; SSE event: error"#,
        auth: "x-api-key",
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Gemini,
        name: "gemini",
        aliases: &[],
        shapes: r#"{"error":{"code","message","status","details":[RetryInfo, ErrorInfo, QuotaFailure]}}, also in a list"#,
        auth: "x-goog-api-key, or ?key=",
        google_quota_wording: true,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Vertex,
        name: "vertex",
        aliases: &[],
        shapes: r#"{"error":{"code","message","status","details"}}, also in a list"#,
        auth: "Authorization: Bearer (OAuth access token)",
        google_quota_wording: true,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Bedrock,
        name: "bedrock",
        aliases: &[],
        shapes: r#"{"message"} with x-amzn-errortype, or {"__type","message"}; :exception-type frames in an event stream"#,
        auth: "AWS SigV4",
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Deepseek,
        name: "deepseek",
        aliases: &[],
        shapes: OPENAI_SHAPE,
        auth: "Authorization: Bearer",
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Mistral,
        name: "mistral",
        aliases: &[],
        shapes: r#"{"object":"error","message","type","param","code"}, or {"message"}"#,
        auth: "Authorization: Bearer",
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Groq,
        name: "groq",
        aliases: &[],
        shapes: OPENAI_SHAPE,
        auth: "Authorization: Bearer",
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Xai,
        name: "xai",
        aliases: &[],
        shapes: r#"{"code","error":"…"}"#,
        auth: "Authorization: Bearer",
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Openrouter,
        name: "openrouter",
        aliases: &[],
        shapes: r#"{"error":{"message","code","metadata":{"raw","provider_name","headers"}}}, also inside a 200"#,
        auth: "Authorization: Bearer",
        google_quota_wording: false,
        wraps_upstreams: true,
    },
    ProviderSpec {
        provider: Provider::Generic,
        name: "generic",
        aliases: &["openai_compatible", "openai-compatible", "compatible"],
        shapes: "any of the above; local servers and gateways (see the corpus's origins)",
        auth: "Authorization: Bearer",
        google_quota_wording: false,
        wraps_upstreams: false,
    },
];

impl Provider {
    /// This provider's entry in [`SPECS`].
    pub fn spec(self) -> &'static ProviderSpec {
        // SPECS lists the providers in declaration order; the test below holds it to that.
        &SPECS[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_the_declaration_order_and_names_are_unique() {
        for (i, p) in Provider::ALL.into_iter().enumerate() {
            assert_eq!(SPECS[i].provider, p);
            assert_eq!(p.spec().provider, p);
        }
        let mut names: Vec<&str> = SPECS
            .iter()
            .flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().copied()))
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a name or alias is used twice");
    }

    #[test]
    fn every_name_and_alias_parses_back() {
        for spec in &SPECS {
            assert_eq!(spec.name.parse::<Provider>(), Ok(spec.provider));
            for alias in spec.aliases {
                assert_eq!(alias.parse::<Provider>(), Ok(spec.provider));
                assert_eq!(alias.to_uppercase().parse::<Provider>(), Ok(spec.provider));
            }
        }
        assert!("nope".parse::<Provider>().is_err());
    }
}
