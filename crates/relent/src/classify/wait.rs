//! Collects the server's wait hint from headers and body, in order of authority.
//!
//! An explicit Retry-After (in any spelling) says the minimum wait and wins; reset headers say
//! when a window refills and come next; a phrase in the message is the last resort.

use super::hints::{self, MAX_HINT_MS};
use super::{header, headers_named, HintSource, WaitHint};

/// What an error body says of the wait, read once per body (`super::judge`) and weighed
/// against each response's headers by [`hint`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BodyWaits {
    /// Google's `RetryInfo.retryDelay`.
    pub(crate) retry_delay_ms: Option<u64>,
    /// OpenRouter's `metadata.headers.X-RateLimit-Reset` (absolute, Unix ms).
    pub(crate) openrouter_reset_unix_ms: Option<u64>,
    /// A wait named in the message ("try again in 20s").
    pub(crate) message: MessageWait,
}

/// The wait a message names, read from it only when no other source gave one (reading costs
/// more than the rest of a wait), and then remembered. Its `Debug` output never shows the
/// message, which is not redacted.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) enum MessageWait {
    /// The message names no wait (the phrase scan found no marker of one).
    #[default]
    None,
    /// The message (unredacted: it stays inside the classifier), not read yet.
    Unread(Box<str>),
    /// What reading it gave.
    Read(Option<u64>),
}

impl std::fmt::Debug for MessageWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageWait::None => f.write_str("None"),
            MessageWait::Unread(message) => write!(f, "Unread({} bytes)", message.len()),
            MessageWait::Read(ms) => f.debug_tuple("Read").field(ms).finish(),
        }
    }
}

impl MessageWait {
    fn get(&mut self) -> Option<u64> {
        match self {
            MessageWait::None => None,
            MessageWait::Read(ms) => *ms,
            MessageWait::Unread(message) => {
                let ms = hints::message_wait_ms(message);
                *self = MessageWait::Read(ms);
                ms
            }
        }
    }
}

impl BodyWaits {
    /// Whether the body itself says when requests will be taken again (a wait, or an
    /// absolute reset that a caller without a wall clock cannot turn into one).
    pub(crate) fn names_an_end(&self) -> bool {
        self.retry_delay_ms.is_some() || self.openrouter_reset_unix_ms.is_some()
    }
}

/// Returns the wait hint and the server's explicit retry word, if any, from a response's
/// headers and what its body said of the wait.
pub(crate) fn hint(
    headers: &[(&str, &str)],
    body: &mut BodyWaits,
    now_unix_ms: Option<u64>,
) -> (Option<WaitHint>, Option<bool>) {
    let mut server_retry = header(headers, "x-should-retry").and_then(|v| {
        let v = v.trim();
        if v.eq_ignore_ascii_case("true") {
            Some(true)
        } else if v.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            None
        }
    });
    let pushback = header(headers, "grpc-retry-pushback-ms").map(hints::grpc_pushback_ms);
    if let Some(Err(())) = pushback {
        server_retry = Some(false);
    }
    // The wall clock for absolute times: the response's own Date header (RFC 9110 says an
    // HTTP-date Retry-After is relative to it), else the caller's clock. When both are known
    // and disagree by more than CLOCK_SKEW_TOLERANCE_MS, one of them is wrong and nothing says
    // which: the wait is read against both and the shorter kept, so a bad clock on either side
    // can shorten a wait (the server answers an early retry again) but never lengthen one.
    // Read once, and only if a source needs it.
    let reference = std::cell::OnceCell::new();
    let until = |unix_ms: u64| {
        let (date, now) = *reference.get_or_init(|| {
            let date = header(headers, "date").and_then(hints::http_date_unix_ms);
            (date, now_unix_ms)
        });
        match (date, now) {
            (Some(date), Some(now)) if date.abs_diff(now) > CLOCK_SKEW_TOLERANCE_MS => Some(
                unix_ms
                    .saturating_sub(date)
                    .min(unix_ms.saturating_sub(now)),
            ),
            (Some(reference), _) | (None, Some(reference)) => {
                Some(unix_ms.saturating_sub(reference))
            }
            (None, None) => None,
        }
    };
    let from = |source: HintSource| move |ms: u64| (ms, source);

    // Sources in order of authority; each is read only when none before it gave a wait.
    let found = ["retry-after-ms", "x-ms-retry-after-ms", "x-amz-retry-after"]
        .into_iter()
        .find_map(|name| headers_named(headers, name).find_map(hints::retry_after_ms))
        .map(from(HintSource::RetryAfterMs))
        .or_else(|| {
            headers_named(headers, "retry-after").find_map(|value| {
                hints::retry_after_seconds(value)
                    .map(from(HintSource::RetryAfterSeconds))
                    .or_else(|| {
                        hints::http_date_unix_ms(value)
                            .and_then(until)
                            .map(from(HintSource::RetryAfterDate))
                    })
            })
        })
        .or_else(|| {
            pushback
                .and_then(Result::ok)
                .map(from(HintSource::GrpcPushback))
        })
        .or_else(|| body.retry_delay_ms.map(from(HintSource::RetryInfo)))
        .or_else(|| {
            window_reset(headers, ANTHROPIC_WINDOWS, |v| {
                hints::rfc3339_unix_ms(v).and_then(until)
            })
            .map(from(HintSource::AnthropicReset))
        })
        .or_else(|| {
            window_reset(headers, OPENAI_WINDOWS, hints::go_duration_ms)
                .map(from(HintSource::RateLimitReset))
        })
        .or_else(|| {
            body.openrouter_reset_unix_ms
                .and_then(until)
                .map(from(HintSource::OpenrouterReset))
        })
        .or_else(|| body.message.get().map(from(HintSource::Message)));

    let wait = found.map(|(ms, source)| WaitHint {
        after_ms: ms.min(MAX_HINT_MS),
        source,
        clamped: ms > MAX_HINT_MS,
    });
    (wait, server_retry)
}

/// How far the response's `Date` may be from the caller's clock before the two are treated as
/// disagreeing (see `hint` in this module): five minutes. Within it the response's own `Date` is the
/// reference, as RFC 9110 section 10.2.3 says.
pub const CLOCK_SKEW_TOLERANCE_MS: u64 = 5 * 60 * 1000;

/// Rate-limit windows as (reset header, remaining header) pairs.
type Windows = &'static [(&'static str, &'static str)];

/// Anthropic's windows: `anthropic-ratelimit-{kind}-reset` / `-remaining` (RFC 3339).
const ANTHROPIC_WINDOWS: Windows = &[
    (
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-requests-remaining",
    ),
    (
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-tokens-remaining",
    ),
    (
        "anthropic-ratelimit-input-tokens-reset",
        "anthropic-ratelimit-input-tokens-remaining",
    ),
    (
        "anthropic-ratelimit-output-tokens-reset",
        "anthropic-ratelimit-output-tokens-remaining",
    ),
];

/// OpenAI's and Groq's windows: `x-ratelimit-reset-{kind}` / `x-ratelimit-remaining-{kind}`
/// (Go durations).
const OPENAI_WINDOWS: Windows = &[
    (
        "x-ratelimit-reset-requests",
        "x-ratelimit-remaining-requests",
    ),
    ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens"),
];

/// The latest reset among the windows that are used up (remaining is 0), else the earliest
/// reset of any window.
fn window_reset(
    headers: &[(&str, &str)],
    windows: Windows,
    parse: impl Fn(&str) -> Option<u64>,
) -> Option<u64> {
    let mut exhausted: Option<u64> = None;
    let mut any: Option<u64> = None;
    for (reset_name, remaining_name) in windows {
        let Some(reset) = headers_named(headers, reset_name).find_map(&parse) else {
            continue;
        };
        any = Some(any.map_or(reset, |a| a.min(reset)));
        if header(headers, remaining_name).is_some_and(|v| v.trim() == "0") {
            exhausted = Some(exhausted.map_or(reset, |e| e.max(reset)));
        }
    }
    exhausted.or(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_968_000_000; // 2026-11-29T16:00:00Z

    fn wait_with_date(date: &str, now: Option<u64>) -> Option<u64> {
        // Retry-After is 30 s after the 16:00:00 date that the header would carry on time.
        let headers = [
            ("date", date),
            ("retry-after", "Sun, 29 Nov 2026 16:00:30 GMT"),
        ];
        hint(&headers, &mut BodyWaits::default(), now)
            .0
            .map(|w| w.after_ms)
    }

    #[test]
    fn the_response_date_is_the_reference_within_the_tolerance() {
        // The server is 4 minutes behind the caller: its own Date still rules.
        let date = "Sun, 29 Nov 2026 16:00:00 GMT";
        assert_eq!(wait_with_date(date, Some(NOW + 4 * 60_000)), Some(30_000));
        assert_eq!(wait_with_date(date, None), Some(30_000));
    }

    #[test]
    fn past_the_tolerance_the_shorter_reading_wins() {
        let date = "Sun, 29 Nov 2026 16:00:00 GMT";
        // The caller is 6 minutes ahead: against its clock the wait is already over.
        assert_eq!(
            wait_with_date(date, Some(NOW + CLOCK_SKEW_TOLERANCE_MS + 60_000)),
            Some(0)
        );
        // The caller is a day behind: a day is never waited for 30 s.
        assert_eq!(wait_with_date(date, Some(NOW - 86_400_000)), Some(30_000));
        // A broken Date (1970) does not turn 30 s into a day either.
        let epoch = "Thu, 01 Jan 1970 00:00:00 GMT";
        assert_eq!(wait_with_date(epoch, Some(NOW)), Some(30_000));
    }
}
