//! A verdict of relent's own classifier, kept to be handed to a machine later.

use super::{classify, Classification, Observation, Provider, TransportError};

/// A response classified by relent's classifier ([`classify`]) for one provider, ready to be
/// handed to a machine as [`crate::Event::Classified`] in place of the response itself.
///
/// A driver that has classified a response already (to log it, or because it keeps the
/// verdicts of responses it has seen before) passes this instead of the bytes, and the
/// machine does not classify them a second time. Only [`Classified::new`] makes one, so the
/// message and code in it were redacted by relent: the machine may keep them.
///
/// A classification depends on the response, the provider and, through absolute reset
/// times only, on the wall clock it was made with; [`Classified::reads_the_clock`] says
/// whether this one did. One that did not may be reused for the same bytes from the same
/// provider at any other reading of the same clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    provider: Provider,
    seen: Seen,
    classification: Classification,
}

/// What kind of observation was classified: the trace records it as the machine would have.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    Http { status: u16 },
    Transport(TransportError),
}

impl Classified {
    /// Classifies `seen` as `provider`'s answer; `now_unix_ms` is the caller's wall clock,
    /// as for [`classify`] (a machine uses its wall clock at the moment of the response).
    pub fn new(provider: Provider, seen: &Observation<'_>, now_unix_ms: Option<u64>) -> Self {
        Classified {
            provider,
            seen: match seen {
                Observation::Http(r) => Seen::Http { status: r.status },
                Observation::Transport(kind) => Seen::Transport(*kind),
            },
            classification: classify(provider, seen, now_unix_ms),
        }
    }

    /// The provider the response was classified for.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The HTTP status classified (`None` for a transport failure).
    pub fn status(&self) -> Option<u16> {
        match self.seen {
            Seen::Http { status } => Some(status),
            Seen::Transport(_) => None,
        }
    }

    /// The verdict.
    pub fn classification(&self) -> &Classification {
        &self.classification
    }

    /// Whether the verdict depends on the wall clock it was made with: its wait was read
    /// from an absolute time ([`super::HintSource::is_absolute`]). Nothing else in a
    /// classification reads the clock.
    pub fn reads_the_clock(&self) -> bool {
        self.classification
            .wait
            .is_some_and(|w| w.source.is_absolute())
    }

    /// A verdict on an HTTP response from `provider` with `status`, classified by
    /// [`classify`] (or by its parts, as [`super::VerdictCache`] does).
    pub(crate) fn of_http(provider: Provider, status: u16, classification: Classification) -> Self {
        Classified {
            provider,
            seen: Seen::Http { status },
            classification,
        }
    }

    /// The verdict itself, for [`super::VerdictCache`] to settle a kept one's wait.
    pub(crate) fn classification_mut(&mut self) -> &mut Classification {
        &mut self.classification
    }

    pub(crate) fn seen(&self) -> Seen {
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{HintSource, HttpResponse};

    const CLOCK: u64 = 1_790_000_000_000;

    type Headers<'a> = &'a [(&'a str, &'a str)];

    fn classified(headers: &[(&str, &str)], body: &[u8], clock: u64) -> Classified {
        let seen = Observation::Http(HttpResponse {
            status: 429,
            headers,
            body,
        });
        Classified::new(Provider::Openrouter, &seen, Some(clock))
    }

    /// Absolute reset times, in each form the classifier reads: the verdict moves with the
    /// clock and says so.
    #[test]
    fn absolute_waits_read_the_clock() {
        // Five minutes after CLOCK, in each absolute form.
        let date = "Mon, 21 Sep 2026 14:18:20 GMT";
        let rfc3339 = "2026-09-21T14:18:20Z";
        let epoch_ms = (CLOCK + 300_000).to_string();
        let openrouter = format!(
            r#"{{"error":{{"message":"Rate limit exceeded","code":429,"metadata":{{"headers":{{"X-RateLimit-Reset":"{epoch_ms}"}}}}}}}}"#
        );
        let cases: [(Headers, &[u8], HintSource); 3] = [
            (&[("retry-after", date)], b"", HintSource::RetryAfterDate),
            (
                &[("anthropic-ratelimit-requests-reset", rfc3339)],
                b"",
                HintSource::AnthropicReset,
            ),
            (&[], openrouter.as_bytes(), HintSource::OpenrouterReset),
        ];
        for (headers, body, source) in cases {
            let early = classified(headers, body, CLOCK);
            let late = classified(headers, body, CLOCK + 60_000);
            let wait = early.classification().wait.expect("an absolute wait");
            assert_eq!(wait.source, source);
            assert!(
                early.reads_the_clock() && late.reads_the_clock(),
                "{source:?}"
            );
            assert_ne!(
                early, late,
                "{source:?}: a minute later, a minute less to wait"
            );
        }
    }

    /// Relative waits and no waits at all do not read the clock, and the verdict is the same
    /// at any time.
    #[test]
    fn relative_waits_do_not_read_the_clock() {
        let body = br#"{"error":{"message":"Rate limit reached. Please try again in 1.5s.","type":"requests"}}"#;
        let cases: [(Headers, &[u8]); 4] = [
            (&[("retry-after", "7")], b""),
            (&[("x-ratelimit-reset-requests", "1m30s")], b""),
            (&[], body),
            (&[], b"{}"),
        ];
        for (headers, body) in cases {
            let early = classified(headers, body, CLOCK);
            let late = classified(headers, body, CLOCK + 3_600_000);
            assert!(!early.reads_the_clock());
            assert_eq!(early, late);
        }
    }

    /// The getters give back what was classified: the provider asked for, the status of an
    /// HTTP answer, no status for a transport failure.
    #[test]
    fn getters_name_what_was_classified() {
        for status in [200, 401, 429, 503, 529] {
            for provider in [Provider::Openai, Provider::Anthropic, Provider::Gemini] {
                let seen = Observation::Http(HttpResponse {
                    status,
                    headers: &[],
                    body: b"",
                });
                let verdict = Classified::new(provider, &seen, None);
                assert_eq!(verdict.provider(), provider);
                assert_eq!(verdict.status(), Some(status));
                assert_eq!(
                    *verdict.classification(),
                    classify(provider, &seen, None),
                    "{provider:?} {status}"
                );
            }
        }
        let reset = Observation::Transport(TransportError::Reset);
        let verdict = Classified::new(Provider::Mistral, &reset, None);
        assert_eq!(verdict.provider(), Provider::Mistral);
        assert_eq!(verdict.status(), None);
    }
}
