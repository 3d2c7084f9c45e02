//! What relent knows about each provider, in one table: its name and aliases, the body
//! shapes it answers with (as text for humans, and as a [`Wire`] format the simulator builds
//! its answers from), its authentication style ([`AuthStyle`], for drivers), whether the
//! simulator's generated worlds draw it, and the two provider-specific rule switches the
//! classifier has (Google's quota wording, an aggregator's wrapped upstream
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
    /// How a request carries its key, in words (for humans; drivers read [`Self::auth_style`]).
    pub auth: &'static str,
    /// How a request carries its key, for drivers.
    pub auth_style: AuthStyle,
    /// The wire format of its error and success bodies, as the simulator writes them.
    pub wire: Wire,
    /// Whether the simulator's generated worlds draw this provider: every provider that
    /// answers in its own way (Vertex answers like Gemini; `Generic` has no shape of its own).
    pub simulated: bool,
    /// Google's wording: a per-minute limit is worded as "You exceeded your current quota"
    /// and is a rate limit unless a daily quota or `limit: 0` is named.
    pub google_quota_wording: bool,
    /// An aggregator: "Provider returned error" with `metadata.raw` is the upstream's answer,
    /// so an upstream auth failure is not this key's and an upstream 429 is not this key's.
    pub wraps_upstreams: bool,
}

/// How a request carries its API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key alone in a header of its own: the header's name (lower case), such as
    /// `x-api-key` (Anthropic), `api-key` (Azure) or `x-goog-api-key` (Gemini).
    Header(&'static str),
    /// AWS Signature Version 4: requests are signed with the credentials; no key is sent.
    AwsSigV4,
}

impl AuthStyle {
    /// The header that carries the credential: `authorization` for a bearer token or a
    /// signature, else the provider's own header.
    pub fn header_name(self) -> &'static str {
        match self {
            AuthStyle::Bearer | AuthStyle::AwsSigV4 => "authorization",
            AuthStyle::Header(name) => name,
        }
    }
}

/// The wire format of a provider's answers, as the simulator (`relent-sim`) writes them.
/// The classifier does not need it: it reads every shape whatever the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// OpenAI's `{"error":{"message","type","param","code"}}` and chat completions (also
    /// Azure, DeepSeek, Groq, OpenRouter and OpenAI-compatible servers).
    Openai,
    /// Anthropic's `{"type":"error","error":{"type","message"}}` and messages.
    Anthropic,
    /// Google's `{"error":{"code","message","status","details"}}` and candidates (Gemini,
    /// Vertex).
    Google,
    /// AWS: `{"message"}` with the error type in `x-amzn-errortype` (Bedrock).
    Aws,
    /// Mistral's `{"object":"error","message","type","param","code"}`.
    Mistral,
    /// xAI's `{"code","error":"…"}` for some errors, OpenAI's shape for the rest.
    Xai,
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
        auth_style: AuthStyle::Bearer,
        wire: Wire::Openai,
        simulated: true,
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Azure,
        name: "azure",
        aliases: &["azure_openai"],
        shapes: r#"{"error":{"code","message","innererror":{"code"}}}"#,
        auth: "api-key header, or Authorization: Bearer (Entra ID)",
        auth_style: AuthStyle::Header("api-key"),
        wire: Wire::Openai,
        simulated: true,
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Anthropic,
        name: "anthropic",
        aliases: &[],
        shapes: r#"{"type":"error","error":{"type","message"}}; SSE event: error"#,
        auth: "x-api-key",
        auth_style: AuthStyle::Header("x-api-key"),
        wire: Wire::Anthropic,
        simulated: true,
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Gemini,
        name: "gemini",
        aliases: &[],
        shapes: r#"{"error":{"code","message","status","details":[RetryInfo, ErrorInfo, QuotaFailure]}}, also in a list"#,
        auth: "x-goog-api-key, or ?key=",
        auth_style: AuthStyle::Header("x-goog-api-key"),
        wire: Wire::Google,
        simulated: true,
        google_quota_wording: true,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Vertex,
        name: "vertex",
        aliases: &[],
        shapes: r#"{"error":{"code","message","status","details"}}, also in a list"#,
        auth: "Authorization: Bearer (OAuth access token)",
        auth_style: AuthStyle::Bearer,
        wire: Wire::Google,
        simulated: false,
        google_quota_wording: true,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Bedrock,
        name: "bedrock",
        aliases: &[],
        shapes: r#"{"message"} with x-amzn-errortype, or {"__type","message"}; :exception-type frames in an event stream"#,
        auth: "AWS SigV4",
        auth_style: AuthStyle::AwsSigV4,
        wire: Wire::Aws,
        simulated: true,
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Deepseek,
        name: "deepseek",
        aliases: &[],
        shapes: OPENAI_SHAPE,
        auth: "Authorization: Bearer",
        auth_style: AuthStyle::Bearer,
        wire: Wire::Openai,
        simulated: true,
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Mistral,
        name: "mistral",
        aliases: &[],
        shapes: r#"{"object":"error","message","type","param","code"}, or {"message"}"#,
        auth: "Authorization: Bearer",
        auth_style: AuthStyle::Bearer,
        wire: Wire::Mistral,
        simulated: true,
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Groq,
        name: "groq",
        aliases: &[],
        shapes: OPENAI_SHAPE,
        auth: "Authorization: Bearer",
        auth_style: AuthStyle::Bearer,
        wire: Wire::Openai,
        simulated: true,
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Xai,
        name: "xai",
        aliases: &[],
        shapes: r#"{"code","error":"…"}"#,
        auth: "Authorization: Bearer",
        auth_style: AuthStyle::Bearer,
        wire: Wire::Xai,
        simulated: true,
        google_quota_wording: false,
        wraps_upstreams: false,
    },
    ProviderSpec {
        provider: Provider::Openrouter,
        name: "openrouter",
        aliases: &[],
        shapes: r#"{"error":{"message","code","metadata":{"raw","provider_name","headers"}}}, also inside a 200"#,
        auth: "Authorization: Bearer",
        auth_style: AuthStyle::Bearer,
        wire: Wire::Openai,
        simulated: true,
        google_quota_wording: false,
        wraps_upstreams: true,
    },
    ProviderSpec {
        provider: Provider::Generic,
        name: "generic",
        aliases: &["openai_compatible", "openai-compatible", "compatible"],
        shapes: "any of the above; local servers and gateways (see the corpus's origins)",
        auth: "Authorization: Bearer",
        auth_style: AuthStyle::Bearer,
        wire: Wire::Openai,
        simulated: false,
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

    #[test]
    fn auth_headers_are_lower_case_and_generic_is_not_simulated() {
        for spec in &SPECS {
            let name = spec.auth_style.header_name();
            assert_eq!(name, name.to_ascii_lowercase(), "{}", spec.name);
            assert!(!name.is_empty(), "{}", spec.name);
        }
        assert!(!Provider::Generic.spec().simulated);
        assert_eq!(
            Provider::Anthropic.spec().auth_style.header_name(),
            "x-api-key"
        );
        assert_eq!(Provider::Bedrock.spec().auth_style, AuthStyle::AwsSigV4);
    }
}
