//! The classifier corpus: real provider error shapes, one per line of
//! `tests/corpus/cases.jsonl`, each with the classification it must get and the public source
//! it comes from. Every case is classified and compared; all mismatches are reported at once.

use relent::classify::redact::contains_secret;
use relent::classify::{
    classify, HintSource, HttpResponse, Observation, Provider, Reason, TransportError,
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
}

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

#[test]
fn every_case_classifies_as_expected() {
    let cases = load();
    let mut failures = Vec::new();
    for case in &cases {
        let headers: Vec<(String, String)> = match &case.headers {
            Headers::None => Vec::new(),
            Headers::Map(m) => m.clone().into_iter().collect(),
            Headers::Pairs(p) => p.clone(),
        };
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
        cases.len() >= 150,
        "the corpus has {} cases; keep at least 150",
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
    assert!(
        cases.iter().all(|c| !c.source.trim().is_empty()),
        "every case names its source"
    );
}
