//! The `hints` target: every wait-hint parser on arbitrary text.

use crate::respond::WALL_EPOCH_UNIX_MS;
use relent::classify::hints::{self, MAX_HINT_MS};
use relent::classify::{classify, HttpResponse, Observation, Provider};

/// The latest Unix time any absolute parser may return: the end of year 9999.
const LATEST_UNIX_MS: u64 = 253_402_300_800_000;

/// Every wait-hint parser on an arbitrary string, and the same string as each header.
pub fn fuzz_hints(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    for parsed in [hints::http_date_unix_ms(text), hints::rfc3339_unix_ms(text)]
        .into_iter()
        .flatten()
    {
        assert!(
            parsed <= LATEST_UNIX_MS,
            "absolute time {parsed} beyond year 9999"
        );
    }
    // Relative parsers saturate; the classifier clamps. Check the parsers agree with
    // themselves, and that every header path ends within the clamp.
    let _ = (
        hints::retry_after_ms(text),
        hints::retry_after_seconds(text),
        hints::go_duration_ms(text),
        hints::proto_duration_ms(text),
        hints::message_wait_ms(text),
    );
    if let Ok(ms) = hints::grpc_pushback_ms(text) {
        assert!(ms <= i32::MAX as u64);
    }
    for name in [
        "retry-after-ms",
        "retry-after",
        "x-ratelimit-reset-requests",
        "anthropic-ratelimit-requests-reset",
        "grpc-retry-pushback-ms",
        "x-should-retry",
    ] {
        let headers = [
            (name, text),
            ("date", "Wed, 21 Oct 2026 07:28:00 GMT"),
            ("x-ratelimit-remaining-requests", "0"),
            ("anthropic-ratelimit-requests-remaining", "0"),
        ];
        let c = classify(
            Provider::Openai,
            &Observation::Http(HttpResponse {
                status: 429,
                headers: &headers,
                body: b"",
            }),
            Some(WALL_EPOCH_UNIX_MS),
        );
        if let Some(w) = c.wait {
            assert!(w.after_ms <= MAX_HINT_MS);
            if w.clamped {
                assert_eq!(w.after_ms, MAX_HINT_MS, "clamped flag without clamping");
            }
        }
    }
    let body = format!("{{\"error\":{{\"message\":{},\"details\":[{{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":{}}}]}}}}", serde_json::Value::String(text.to_string()), serde_json::Value::String(text.to_string()));
    let c = classify(
        Provider::Gemini,
        &Observation::Http(HttpResponse {
            status: 429,
            headers: &[],
            body: body.as_bytes(),
        }),
        None,
    );
    assert!(c.wait.is_none_or(|w| w.after_ms <= MAX_HINT_MS));
}
