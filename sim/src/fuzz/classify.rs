//! The `classify` target: arbitrary provider hint, status, headers and body.

use arbitrary::Unstructured;
use relent::classify::hints::MAX_HINT_MS;
use relent::classify::redact::MAX_MESSAGE_CHARS;
use relent::classify::{classify, HttpResponse, Observation, Provider, BODY_SCAN_LIMIT};

/// Arbitrary provider hint, status, headers and body into the classifier.
pub fn fuzz_classify(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let provider = Provider::ALL[u.choose_index(Provider::ALL.len()).unwrap_or(0)];
    let status: u16 = u.arbitrary().unwrap_or(500);
    let headers: Vec<(String, String)> = u.arbitrary().unwrap_or_default();
    let now: Option<u64> = u.arbitrary().unwrap_or(None);
    let body = u.take_rest();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let c = classify(
        provider,
        &Observation::Http(HttpResponse {
            status,
            headers: &pairs,
            body,
        }),
        now,
    );
    if let Some(w) = c.wait {
        assert!(
            w.after_ms <= MAX_HINT_MS,
            "wait {} beyond the clamp",
            w.after_ms
        );
    }
    assert!(
        c.message.chars().count() <= MAX_MESSAGE_CHARS + 1,
        "message too long"
    );
    assert_eq!(c.scope, c.reason.scope());
    // The body-scan bound: what lies past it cannot matter.
    if body.len() > BODY_SCAN_LIMIT {
        let bounded = classify(
            provider,
            &Observation::Http(HttpResponse {
                status,
                headers: &pairs,
                body: &body[..BODY_SCAN_LIMIT],
            }),
            now,
        );
        assert_eq!(
            c, bounded,
            "bytes past the scan bound changed the classification"
        );
    }
}
