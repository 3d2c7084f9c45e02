//! The `classify` target: arbitrary provider hint, status, headers and body; and the same
//! body again with other headers and another status, through a [`VerdictCache`].

use arbitrary::Unstructured;
use relent::classify::hints::MAX_HINT_MS;
use relent::classify::redact::MAX_MESSAGE_CHARS;
use relent::classify::{
    classify, Classified, HttpResponse, Observation, Provider, VerdictCache, BODY_SCAN_LIMIT,
    BODY_TAIL_SCAN,
};

/// Arbitrary provider hint, status, headers and body into the classifier.
pub fn fuzz_classify(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let provider = Provider::ALL[u.choose_index(Provider::ALL.len()).unwrap_or(0)];
    let status: u16 = u.arbitrary().unwrap_or(500);
    let headers: Headers = u.arbitrary().unwrap_or_default();
    let now: Option<u64> = u.arbitrary().unwrap_or(None);
    let other_headers: Headers = u.arbitrary().unwrap_or_default();
    let other_now: Option<u64> = u.arbitrary().unwrap_or(None);
    let retry_after: u32 = u.arbitrary().unwrap_or(7);
    let other_status: u16 = u.arbitrary().unwrap_or(status);
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
    let with_a_wait: Headers = headers
        .iter()
        .cloned()
        .chain([("retry-after".to_string(), retry_after.to_string())])
        .collect();
    same_body_through_a_cache(
        provider,
        body,
        [
            (status, &headers, now),
            (status, &other_headers, other_now),
            // The first headers and a wait: the same body headers, so a kept verdict.
            (status, &with_a_wait, other_now),
            // The same headers under another status: a different verdict, perhaps.
            (other_status, &with_a_wait, other_now),
        ],
    );
    // The body-scan bound: past the first `BODY_SCAN_LIMIT` bytes only the last
    // `BODY_TAIL_SCAN` are read, so the bytes between cannot matter.
    if body.len() > BODY_SCAN_LIMIT + BODY_TAIL_SCAN {
        let mut bounded = body[..BODY_SCAN_LIMIT].to_vec();
        bounded.extend_from_slice(&body[body.len() - BODY_TAIL_SCAN..]);
        let again = classify(
            provider,
            &Observation::Http(HttpResponse {
                status,
                headers: &pairs,
                body: &bounded,
            }),
            now,
        );
        assert_eq!(
            c, again,
            "bytes between the scanned head and tail changed the classification"
        );
    }
}

/// Owned header pairs, as the fuzzer makes them.
type Headers = Vec<(String, String)>;

/// Each response (`body` with one of `responses`' statuses, header sets and clocks) gets
/// from a one-slot [`VerdictCache`] what [`Classified::new`] gives it, whether the cache
/// keeps the last verdict or replaces it.
fn same_body_through_a_cache(
    provider: Provider,
    body: &[u8],
    responses: [(u16, &Headers, Option<u64>); 4],
) {
    let mut cache = VerdictCache::new(1);
    for (status, headers, now) in responses {
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let seen = Observation::Http(HttpResponse {
            status,
            headers: &pairs,
            body,
        });
        assert_eq!(
            *cache.classify(provider, &seen, now),
            Classified::new(provider, &seen, now),
            "the cache's verdict differs from the classifier's"
        );
    }
}
