//! The classifier corpus: real provider error shapes, one per line of
//! `tests/corpus/cases.jsonl`, each with the classification it must get, the public source it
//! comes from, the family of answers it belongs to and the server that produced it. Every case
//! is classified and compared; all mismatches are reported at once.

use relent::classify::redact::contains_secret;
use relent::classify::{
    classify, Classified, HintSource, HttpResponse, Observation, Provider, Reason, TransportError,
    VerdictCache,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    provider: Provider,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    headers: Headers,
    #[serde(default)]
    body: String,
    #[serde(default)]
    transport_error: Option<TransportError>,
    #[serde(default)]
    now_unix_ms: Option<u64>,
    expect: Expect,
    source: String,
    family: CaseFamily,
    /// The server or service that produced the answer (`vllm`, `openrouter`, `zhipu`, …).
    origin: String,
}

/// The families of answers the corpus must cover (issue #16).
#[derive(Deserialize, Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[serde(rename_all = "snake_case")]
enum CaseFamily {
    /// Shapes written from the providers' documentation.
    Documented,
    /// Answers straight from a provider's own API, collected from public reports.
    Direct,
    /// Local and self-hosted servers.
    Local,
    /// Gateways and aggregators.
    Gateway,
    /// Quota, usage and spend limits.
    Quota,
    /// Overload phrasings.
    Overload,
    /// Providers that answer in other languages or with numeric codes.
    NonEnglish,
    /// AWS-style errors decided by their code.
    Aws,
    /// Odd answers: redirects, proxies, clock skew, huge bodies, errors inside a 200.
    Odd,
}

impl CaseFamily {
    const ALL: [CaseFamily; 9] = [
        CaseFamily::Documented,
        CaseFamily::Direct,
        CaseFamily::Local,
        CaseFamily::Gateway,
        CaseFamily::Quota,
        CaseFamily::Overload,
        CaseFamily::NonEnglish,
        CaseFamily::Aws,
        CaseFamily::Odd,
    ];
}

/// Every server or service issue #16 names, as it appears in a case's `origin`.
const ORIGINS: &[&str] = &[
    // local and self-hosted servers
    "vllm",
    "llamacpp",
    "ollama",
    "lmstudio",
    "tgi",
    "sglang",
    "localai",
    "mlx",
    // gateways and clouds
    "openrouter",
    "litellm",
    "portkey",
    "cloudflare",
    "azure",
    "bedrock",
    "sagemaker",
    "vertex",
    // providers answering in other languages or with numeric codes
    "zhipu",
    "deepseek",
    "moonshot",
    "dashscope",
    "minimax",
    "baidu",
];

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Headers {
    #[default]
    None,
    Map(BTreeMap<String, String>),
    Pairs(Vec<(String, String)>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    reason: Reason,
    #[serde(default)]
    wait_ms: Option<u64>,
    #[serde(default)]
    wait_source: Option<HintSource>,
    #[serde(default)]
    server_retry: Option<bool>,
    #[serde(default)]
    code: Option<String>,
}

fn load() -> Vec<Case> {
    include_str!("corpus/cases.jsonl")
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("cases.jsonl line {}: {e}", n + 1))
        })
        .collect()
}

fn headers_of(case: &Case) -> Vec<(String, String)> {
    match &case.headers {
        Headers::None => Vec::new(),
        Headers::Map(m) => m.clone().into_iter().collect(),
        Headers::Pairs(p) => p.clone(),
    }
}

/// A verdict kept for reuse ([`Classified`]) is the same at any reading of the clock unless
/// it says it read the clock: over every HTTP case, at its own clock and hours later.
#[test]
fn verdicts_depend_on_the_clock_only_when_they_say_so() {
    let mut read = 0;
    for case in load() {
        let (Some(status), None) = (case.status, case.transport_error) else {
            continue;
        };
        let headers = headers_of(&case);
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let seen = Observation::Http(HttpResponse {
            status,
            headers: &pairs,
            body: case.body.as_bytes(),
        });
        let clock = case.now_unix_ms.unwrap_or(1_790_000_000_000);
        let now = Classified::new(case.provider, &seen, Some(clock));
        assert_eq!(
            now.classification(),
            &classify(case.provider, &seen, Some(clock))
        );
        for later in [clock + 1, clock + 7 * 3_600_000, clock + 400 * 86_400_000] {
            let then = Classified::new(case.provider, &seen, Some(later));
            assert_eq!(now.reads_the_clock(), then.reads_the_clock(), "{}", case.id);
            if !now.reads_the_clock() {
                assert_eq!(now, then, "{}: the verdict moved with the clock", case.id);
            }
        }
        read += usize::from(now.reads_the_clock());
    }
    // The corpus holds absolute resets, so the clock is read somewhere.
    assert!(read > 0);
}

/// Wait headers and body headers a response may add to a case's own: each changes the wait,
/// the server's word, or what the body is taken for.
const EXTRA_HEADERS: [&[(&str, &str)]; 11] = [
    &[],
    &[("retry-after", "7")],
    &[("Retry-After", "120")],
    &[("retry-after-ms", "1500")],
    &[
        ("date", "Sun, 29 Nov 2026 16:00:00 GMT"),
        ("retry-after", "Sun, 29 Nov 2026 16:00:30 GMT"),
    ],
    &[
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "6m0s"),
    ],
    &[
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2026-11-29T16:01:00Z"),
    ],
    &[("x-should-retry", "false")],
    &[("content-type", "text/html; charset=utf-8")],
    &[(
        "x-amzn-errortype",
        "ThrottlingException:http://internal.amazon.com/",
    )],
    &[("cf-mitigated", "challenge")],
];

/// [`VerdictCache`] gives what [`Classified::new`] gives, hit or miss: every HTTP case, with
/// each set of extra headers and at several clocks, through caches of one slot (every new
/// body evicts the last), eight slots and thousands. Consecutive responses share a body
/// and differ in their wait headers, so kept verdicts are settled with other waits.
#[test]
fn the_verdict_cache_gives_the_classifiers_verdicts() {
    const NOW: u64 = 1_795_968_000_000; // 2026-11-29T16:00:00Z
    let cases = load();
    let mut reason_moved_with_the_wait = 0;
    for slots in [1, 8, 4096] {
        let mut cache = VerdictCache::new(slots);
        let mut mismatches = Vec::new();
        // Two passes: the second finds kept bodies (or their successors in the slot).
        for _ in 0..2 {
            for case in &cases {
                let (Some(status), None) = (case.status, case.transport_error) else {
                    continue;
                };
                let mut reasons = BTreeSet::new();
                for (n, extra) in EXTRA_HEADERS.iter().enumerate() {
                    let mut pairs: Vec<(&str, &str)> = Vec::new();
                    let own = headers_of(case);
                    pairs.extend(own.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    pairs.extend(extra.iter().copied());
                    let seen = Observation::Http(HttpResponse {
                        status,
                        headers: &pairs,
                        body: case.body.as_bytes(),
                    });
                    for clock in [case.now_unix_ms, Some(NOW), Some(NOW + 3_600_000), None] {
                        let expected = Classified::new(case.provider, &seen, clock);
                        let got = cache.classify(case.provider, &seen, clock);
                        if *got != expected {
                            mismatches.push(format!(
                                "{} with extra headers #{n} at {clock:?}: {:?} for {:?}",
                                case.id,
                                got.classification(),
                                expected.classification()
                            ));
                        }
                        // The wait headers alone (not the body headers, #8 to #10).
                        if n < 8 {
                            reasons.insert(format!("{:?}", expected.classification().reason));
                        }
                    }
                }
                // The same body under other statuses and from other providers: the key must
                // tell them apart.
                let own = headers_of(case);
                let pairs: Vec<(&str, &str)> =
                    own.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                for (provider, status) in [
                    (case.provider, 200),
                    (case.provider, 500),
                    (Provider::Openai, status),
                    (Provider::Gemini, status),
                ] {
                    let seen = Observation::Http(HttpResponse {
                        status,
                        headers: &pairs,
                        body: case.body.as_bytes(),
                    });
                    let expected = Classified::new(provider, &seen, Some(NOW));
                    let got = cache.classify(provider, &seen, Some(NOW));
                    if *got != expected {
                        mismatches.push(format!(
                            "{} as {provider:?} with status {status}: {:?} for {:?}",
                            case.id,
                            got.classification(),
                            expected.classification()
                        ));
                    }
                }
                if slots == 1 && reasons.len() > 1 {
                    reason_moved_with_the_wait += 1;
                }
            }
        }
        assert!(
            mismatches.is_empty(),
            "{slots} slots: {} mismatches, first: {:?}",
            mismatches.len(),
            &mismatches[..mismatches.len().min(5)]
        );
        // Most answers are found kept: of a case's 48 responses in a row, 8 bring a new key
        // (its body, each body header, each other status or provider), so 40 could be hits;
        // bodies too big to keep and the one-slot cache's evictions lose a few.
        assert!(
            cache.hits() > 4 * cache.misses(),
            "{slots} slots: {} hits, {} misses",
            cache.hits(),
            cache.misses()
        );
    }
    // Some case's reason depends on its wait (a daily limit that names its end or not), so
    // kept verdicts had their reason settled too.
    assert!(reason_moved_with_the_wait > 0);
}

/// A body over the kept bound, and transport failures, are classified every time and still
/// get the classifier's verdict; the cache's `Debug` output shows counts, never a body.
#[test]
fn the_verdict_cache_passes_big_bodies_and_hides_what_it_keeps() {
    let canary = "sk-proj-Zq81CanaryKeyThatMustNotShow0000";
    let small = format!(r#"{{"error":{{"message":"Incorrect API key provided: {canary}"}}}}"#);
    let big = format!("{small}{}", " ".repeat(VerdictCache::MAX_KEPT_BODY));
    let mut cache = VerdictCache::new(4);
    for body in [&small, &big, &small, &big] {
        let seen = Observation::Http(HttpResponse {
            status: 401,
            headers: &[],
            body: body.as_bytes(),
        });
        let expected = Classified::new(Provider::Openai, &seen, None);
        assert_eq!(*cache.classify(Provider::Openai, &seen, None), expected);
    }
    let reset = Observation::Transport(TransportError::Reset);
    assert_eq!(
        *cache.classify(Provider::Openai, &reset, None),
        Classified::new(Provider::Openai, &reset, None)
    );
    assert_eq!((cache.hits(), cache.misses()), (1, 4));
    let debug = format!("{cache:?}");
    assert!(!debug.contains("Zq81Canary"), "{debug}");
    assert!(debug.contains("kept: 1"), "{debug}");
}

#[test]
fn every_case_classifies_as_expected() {
    let cases = load();
    let mut failures = Vec::new();
    for case in &cases {
        let headers = headers_of(case);
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let seen = match (case.transport_error, case.status) {
            (Some(kind), _) => Observation::Transport(kind),
            (None, Some(status)) => Observation::Http(HttpResponse {
                status,
                headers: &pairs,
                body: case.body.as_bytes(),
            }),
            (None, None) => panic!("{}: neither status nor transport_error", case.id),
        };
        let c = classify(case.provider, &seen, case.now_unix_ms);
        let mut wrong = Vec::new();
        if c.reason != case.expect.reason {
            wrong.push(format!("reason {} (want {})", c.reason, case.expect.reason));
        }
        if let Some(ms) = case.expect.wait_ms {
            if c.wait.map(|w| w.after_ms) != Some(ms) {
                wrong.push(format!("wait {:?} (want {ms} ms)", c.wait));
            }
        } else if c.wait.is_some() && case.expect.reason != Reason::Success {
            wrong.push(format!("unexpected wait {:?}", c.wait));
        }
        if let Some(source) = case.expect.wait_source {
            if c.wait.map(|w| w.source) != Some(source) {
                wrong.push(format!(
                    "wait source {:?} (want {source:?})",
                    c.wait.map(|w| w.source)
                ));
            }
        }
        if c.server_retry != case.expect.server_retry {
            wrong.push(format!(
                "server_retry {:?} (want {:?})",
                c.server_retry, case.expect.server_retry
            ));
        }
        if let Some(code) = &case.expect.code {
            if c.code.as_ref() != Some(code) {
                wrong.push(format!("code {:?} (want {code:?})", c.code));
            }
        }
        if contains_secret(&c.message) || c.code.as_deref().is_some_and(contains_secret) {
            wrong.push(format!("secret in message {:?}", c.message));
        }
        if c.reason != Reason::Success && c.message.is_empty() {
            wrong.push("empty message".to_string());
        }
        if c.scope != c.reason.scope() || c.recovery != c.reason.recovery() {
            wrong.push("scope or recovery differs from the reason's".to_string());
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} [{}]: {}",
                case.id,
                case.source,
                wrong.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_covers_every_provider_reason_and_hint_format() {
    let cases = load();
    assert!(
        cases.len() >= 400,
        "the corpus has {} cases; keep at least 400",
        cases.len()
    );
    let ids: BTreeSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), cases.len(), "case ids must be unique");
    let providers: BTreeSet<&str> = cases.iter().map(|c| c.provider.name()).collect();
    for p in Provider::ALL {
        assert!(providers.contains(p.name()), "no case for provider {p}");
    }
    let reasons: BTreeSet<Reason> = cases.iter().map(|c| c.expect.reason).collect();
    for r in Reason::ALL {
        assert!(reasons.contains(&r), "no case for reason {r}");
    }
    let sources: BTreeSet<String> = cases
        .iter()
        .filter_map(|c| c.expect.wait_source)
        .map(|s| format!("{s:?}"))
        .collect();
    for s in [
        HintSource::RetryAfterMs,
        HintSource::RetryAfterSeconds,
        HintSource::RetryAfterDate,
        HintSource::GrpcPushback,
        HintSource::RetryInfo,
        HintSource::AnthropicReset,
        HintSource::RateLimitReset,
        HintSource::OpenrouterReset,
        HintSource::Message,
    ] {
        assert!(
            sources.contains(&format!("{s:?}")),
            "no case for hint source {s:?}"
        );
    }
    for case in &cases {
        assert!(
            !case.source.trim().is_empty(),
            "{}: every case names its source",
            case.id
        );
        assert!(
            !case.origin.trim().is_empty(),
            "{}: every case names the server it came from",
            case.id
        );
    }
}

#[test]
fn corpus_covers_every_family_and_named_server() {
    let cases = load();
    let families: BTreeSet<CaseFamily> = cases.iter().map(|c| c.family).collect();
    for family in CaseFamily::ALL {
        assert!(families.contains(&family), "no case of family {family:?}");
    }
    let origins: BTreeSet<&str> = cases.iter().map(|c| c.origin.as_str()).collect();
    for origin in ORIGINS {
        assert!(origins.contains(origin), "no case from {origin}");
    }
    // Each family beyond the documented shapes is large enough to mean something, and
    // every reason has a case that is not written from documentation alone.
    for family in &CaseFamily::ALL[2..] {
        let n = cases.iter().filter(|c| c.family == *family).count();
        assert!(n >= 8, "family {family:?} has {n} cases; keep at least 8");
    }
    let real: BTreeSet<Reason> = cases
        .iter()
        .filter(|c| c.family != CaseFamily::Documented)
        .map(|c| c.expect.reason)
        .collect();
    for r in Reason::ALL {
        if matches!(r, Reason::TlsCertificate | Reason::Success) {
            // No HTTP answer carries a certificate failure; successes are documented shapes.
            continue;
        }
        assert!(
            real.contains(&r),
            "no collected (non-documented) case for reason {r}"
        );
    }
}
