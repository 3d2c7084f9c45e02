//! Properties of the classifier on arbitrary input: it never panics, always answers, keeps
//! waits within the clamp, keeps messages short and free of secrets, and never reads past
//! its body-scan bound.

use proptest::prelude::*;
use relent::classify::hints::{self, MAX_HINT_MS};
use relent::classify::redact::{contains_secret, MAX_MESSAGE_CHARS};
use relent::classify::{classify, HttpResponse, Observation, Provider, Reason, BODY_SCAN_LIMIT};

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("retry-after".to_string()),
        Just("Retry-After-Ms".to_string()),
        Just("x-ratelimit-reset-requests".to_string()),
        Just("x-ratelimit-remaining-requests".to_string()),
        Just("anthropic-ratelimit-requests-reset".to_string()),
        Just("x-should-retry".to_string()),
        Just("date".to_string()),
        Just("grpc-retry-pushback-ms".to_string()),
        Just("content-type".to_string()),
        Just("x-amzn-errortype".to_string()),
        "[a-zA-Z-]{1,20}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "\\PC{0,300}".prop_map(String::into_bytes),
        // Plausible JSON fragments stitched together, often broken.
        proptest::collection::vec(
            prop_oneof![
                Just("{\"error\":".to_string()),
                Just("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"".to_string()),
                Just("\"message\":\"Incorrect API key provided: sk-abcdef123456\"".to_string()),
                Just("\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"99999999999s\"}]".to_string()),
                Just("\"metadata\":{\"headers\":{\"X-RateLimit-Reset\":\"99999999999999999\"}}".to_string()),
                Just("[".to_string()),
                Just("}".to_string()),
                Just(",".to_string()),
                Just("data: ".to_string()),
                Just("\n".to_string()),
                Just("<html><title>x</title>".to_string()),
                "[a-z ]{0,12}",
            ],
            0..24
        )
        .prop_map(|parts| parts.concat().into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_responses_always_classify(
        provider in proptest::sample::select(Provider::ALL.to_vec()),
        status in prop_oneof![any::<u16>(), 100u16..600],
        headers in proptest::collection::vec((header_name(), "\\PC{0,40}"), 0..8),
        body in body(),
        now in proptest::option::of(any::<u64>()),
    ) {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let c = classify(provider, &Observation::Http(HttpResponse { status, headers: &pairs, body: &body }), now);
        if let Some(w) = c.wait {
            prop_assert!(w.after_ms <= MAX_HINT_MS);
        }
        prop_assert!(c.message.chars().count() <= MAX_MESSAGE_CHARS + 1);
        prop_assert!(!contains_secret(&c.message), "{}", c.message);
        prop_assert_eq!(c.scope, c.reason.scope());
    }

    #[test]
    fn hint_parsers_never_panic(text in "\\PC{0,64}") {
        let _ = hints::retry_after_ms(&text);
        let _ = hints::retry_after_seconds(&text);
        let _ = hints::go_duration_ms(&text);
        let _ = hints::proto_duration_ms(&text);
        let _ = hints::message_wait_ms(&text);
        let _ = hints::http_date_unix_ms(&text);
        let _ = hints::rfc3339_unix_ms(&text);
        let _ = hints::grpc_pushback_ms(&text);
    }

    /// A key is a prefix and at least 16 key characters, one of them a digit or a capital
    /// (shorter or all-lower-case tails are labels such as `xai-main`, kept on purpose).
    #[test]
    fn redaction_removes_generated_keys(prefix in proptest::sample::select(vec!["sk-", "sk-ant-api03-", "AIza", "gsk_", "xai-", "sk-proj-"]), tail in "[A-Z0-9][A-Za-z0-9_-]{15,59}", before in "[a-z ]{0,30}", after in "[a-z .]{0,30}") {
        let text = format!("{before} {prefix}{tail} {after}");
        let out = relent::classify::redact::redact(&text);
        prop_assert!(!out.contains(&tail), "{out}");
    }
}

#[test]
fn the_body_is_scanned_only_up_to_its_bound() {
    let mut body = vec![b' '; BODY_SCAN_LIMIT];
    body.extend_from_slice(br#"{"error":{"type":"overloaded_error"}}"#);
    let c = classify(
        Provider::Anthropic,
        &Observation::Http(HttpResponse {
            status: 200,
            headers: &[],
            body: &body,
        }),
        None,
    );
    assert_eq!(
        c.reason,
        Reason::Success,
        "an error past the scan bound is not read"
    );

    let huge = vec![b'{'; 4 * 1024 * 1024];
    let c = classify(
        Provider::Openai,
        &Observation::Http(HttpResponse {
            status: 500,
            headers: &[],
            body: &huge,
        }),
        None,
    );
    assert_eq!(c.reason, Reason::ServerError);
}

#[test]
fn deeply_nested_json_is_tolerated() {
    let body = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let c = classify(
        Provider::Openai,
        &Observation::Http(HttpResponse {
            status: 429,
            headers: &[],
            body: body.as_bytes(),
        }),
        None,
    );
    assert_eq!(c.reason, Reason::RateLimited);
}

#[test]
fn invalid_utf8_is_tolerated() {
    let body = b"\xff\xfe{\"error\":{\"message\":\"Invalid API key \xc3\x28\"}}";
    let c = classify(
        Provider::Generic,
        &Observation::Http(HttpResponse {
            status: 401,
            headers: &[],
            body,
        }),
        None,
    );
    assert_eq!(c.reason, Reason::KeyRejected);
}
