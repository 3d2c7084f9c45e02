//! The classifier: a pure function from what the transport saw to what it means.
//!
//! [`classify`] never panics, scans at most [`BODY_SCAN_LIMIT`] bytes of a body, tolerates
//! invalid UTF-8 and odd headers, and returns a [`Classification`] for every input. Its
//! rules come from the providers' documented error shapes (see `docs/CLASSIFIER.md`).

mod body;
pub(crate) mod classified;
pub mod hints;
pub mod providers;
pub mod redact;
#[cfg(test)]
mod redact_before;
#[cfg(test)]
mod redact_differential;
mod rules;
mod types;
mod verdict_cache;
mod wait;

pub use classified::Classified;
pub use verdict_cache::VerdictCache;
pub use wait::CLOCK_SKEW_TOLERANCE_MS;

/// The provider table's items, also reachable from here: drivers read a provider's
/// [`AuthStyle`] from [`Provider::spec`].
pub use providers::{AuthStyle, ProviderSpec, Wire};

pub use types::{
    Bench, Classification, HintSource, HttpResponse, Observation, Provider, Reason, Recovery, Rule,
    Scope, TransportError, UnknownProvider, WaitHint,
};

/// The most body bytes the classifier looks at from the start of a body. Error bodies are
/// small; a huge body is almost certainly a success or an HTML page, and a bounded scan keeps
/// the cost bounded.
pub const BODY_SCAN_LIMIT: usize = 64 * 1024;

/// How many bytes at the end of a body longer than [`BODY_SCAN_LIMIT`] are also read, so that
/// an error code written after a huge message (an echoed prompt) survives the bound.
pub const BODY_TAIL_SCAN: usize = 4 * 1024;

/// How much of the start of a body longer than [`BODY_SCAN_LIMIT`] that is neither JSON nor an
/// HTML page is searched for phrases (its end is searched too, see [`BODY_TAIL_SCAN`]).
pub const BODY_HEAD_SEARCH: usize = 4 * 1024;

/// Classifies one observation.
///
/// `now_unix_ms` is the caller's wall clock, used only to turn absolute reset times
/// (RFC 3339, epoch milliseconds) into waits when the response carries no `Date` header.
///
/// ```
/// use relent::classify::{classify, HttpResponse, Observation, Provider, Reason};
///
/// let body = br#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#;
/// let seen = Observation::Http(HttpResponse { status: 429, headers: &[], body });
/// let c = classify(Provider::Openai, &seen, None);
/// assert_eq!(c.reason, Reason::QuotaExhausted); // not a rate limit: waiting will not help
/// assert!(c.recovery.rotate_key);
/// ```
pub fn classify(
    provider: Provider,
    seen: &Observation<'_>,
    now_unix_ms: Option<u64>,
) -> Classification {
    match seen {
        Observation::Transport(kind) => classify_transport(*kind),
        Observation::Http(response) => classify_http(provider, response, now_unix_ms),
    }
}

fn classify_transport(kind: TransportError) -> Classification {
    let (reason, message) = match kind {
        TransportError::Timeout => (Reason::Timeout, "no response before the attempt timed out"),
        TransportError::ConnectRefused => (Reason::ConnectionFailed, "connection refused"),
        TransportError::Dns => (Reason::ConnectionFailed, "host name did not resolve"),
        TransportError::Reset => (
            Reason::ConnectionFailed,
            "connection reset or closed mid-request",
        ),
        TransportError::TlsHandshake => (Reason::ConnectionFailed, "TLS handshake failed"),
        TransportError::TlsCertificate => (
            Reason::TlsCertificate,
            "server certificate failed verification",
        ),
        TransportError::Other => (Reason::ConnectionFailed, "transport failed"),
    };
    let mut c = Classification::of(reason);
    c.message = message.into();
    c
}

fn classify_http(
    provider: Provider,
    response: &HttpResponse<'_>,
    now_unix_ms: Option<u64>,
) -> Classification {
    let judged = judge(
        provider,
        response.status,
        response.body,
        BodyHeaders::of(response.headers),
    );
    judged.finish(response.headers, now_unix_ms)
}

/// The few headers the verdict on a body reads: an AWS error type, the content type and a
/// CDN firewall's mark. Every other header is read only for the wait ([`wait::hint`]), so a
/// verdict on a status, a body and these headers ([`Judged`]) can be kept and finished with
/// the wait headers of each response that repeats them ([`VerdictCache`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BodyHeaders<'a> {
    /// `x-amzn-errortype`, else `:exception-type` (an event stream's exception frame).
    pub(crate) aws_type: Option<&'a str>,
    /// `content-type`.
    pub(crate) content_type: Option<&'a str>,
    /// Whether a CDN firewall says it stopped the request ([`waf_mitigated`]).
    pub(crate) waf_mitigated: bool,
}

impl<'a> BodyHeaders<'a> {
    pub(crate) fn of(headers: &[(&str, &'a str)]) -> Self {
        BodyHeaders {
            aws_type: header(headers, "x-amzn-errortype")
                .or_else(|| header(headers, ":exception-type")),
            content_type: header(headers, "content-type"),
            waf_mitigated: waf_mitigated(headers),
        }
    }
}

/// A verdict on a response's status, body and [`BodyHeaders`], before its wait is read.
#[derive(Clone, Debug)]
pub(crate) struct Judged {
    /// The verdict without a wait, with the reason for an answer that names no end.
    pub(crate) classification: Classification,
    /// What the response's wait headers still decide.
    pub(crate) pending: Pending,
}

/// What a response's wait headers decide of a verdict on its body ([`Judged`]).
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    /// The reason for an answer that does not say when requests will be taken again.
    reason_otherwise: Reason,
    /// The reason for one that does (it differs only for daily limits, see `rules::decide`).
    reason_if_end_named: Reason,
    /// What the body says of the wait; `None` when no wait is read at all (a success).
    waits: Option<wait::BodyWaits>,
}

impl Judged {
    /// The full verdict, with the wait read from `headers` (the response's own).
    pub(crate) fn finish(
        mut self,
        headers: &[(&str, &str)],
        now_unix_ms: Option<u64>,
    ) -> Classification {
        self.pending
            .settle(&mut self.classification, headers, now_unix_ms);
        self.classification
    }
}

impl Pending {
    /// Settles `c`, the verdict on a response with this status, body and body headers: its
    /// wait read from the response's `headers`, and the reason that depends on the wait.
    pub(crate) fn settle(
        &mut self,
        c: &mut Classification,
        headers: &[(&str, &str)],
        now_unix_ms: Option<u64>,
    ) {
        let Some(waits) = &mut self.waits else {
            return;
        };
        let (wait, server_retry) = wait::hint(headers, waits, now_unix_ms);
        // Whether the server says when it will take requests again (a wait, or an absolute
        // reset that a caller without a wall clock cannot turn into one).
        let names_its_end = waits.names_an_end() || wait.is_some();
        let reason = if names_its_end {
            self.reason_if_end_named
        } else {
            self.reason_otherwise
        };
        if c.reason != reason {
            c.reason = reason;
            c.scope = reason.scope();
            c.recovery = reason.recovery();
        }
        c.wait = wait;
        c.server_retry = server_retry;
    }
}

/// Judges a response by its status, body and [`BodyHeaders`]: everything but the wait.
pub(crate) fn judge(
    provider: Provider,
    status: u16,
    body: &[u8],
    body_headers: BodyHeaders<'_>,
) -> Judged {
    let without_wait = |classification: Classification| Judged {
        pending: Pending {
            reason_otherwise: classification.reason,
            reason_if_end_named: classification.reason,
            waits: None,
        },
        classification,
    };
    let scanned = &body[..body.len().min(BODY_SCAN_LIMIT)];
    let success = (200..300).contains(&status);

    // AWS names the error in a header (`x-amzn-errortype`; `:exception-type` in an event
    // stream, whose exception frames arrive after a 200) or in the body's `__type`.
    let aws_header = body_headers.aws_type.map(body::aws_error_type);
    // A success is a success unless the body carries an error; checking for the word "error"
    // first keeps the common path free of JSON parsing and allocation.
    // MiniMax reports a failure inside a 200 in `base_resp`, without the word "error".
    if success
        && aws_header.is_none()
        && !contains_ascii_ci(scanned, b"error")
        && memchr::memmem::find(scanned, b"\"base_resp\"").is_none()
        && !bare_object_in_stream(scanned)
    {
        return without_wait(answer(provider, scanned));
    }
    // Validating is much cheaper than the lossy conversion's char-by-char walk, and error
    // bodies are nearly always valid UTF-8.
    let text = match std::str::from_utf8(scanned) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(scanned),
    };
    // A JSON body cut by the scan bound cannot parse: do not try.
    let cut = body.len() > BODY_SCAN_LIMIT;
    let cut_json = cut && text.trim_start().starts_with(['{', '[']);
    let fields = if cut_json {
        None
    } else {
        body::extract(&text, success)
    };
    if success && fields.is_none() && aws_header.is_none() {
        return without_wait(answer(provider, scanned));
    }

    // A body cut by the scan bound is not valid JSON; its end may still name the error.
    let tail = (fields.is_none() && cut).then(|| {
        let start = BODY_SCAN_LIMIT.max(body.len() - BODY_TAIL_SCAN);
        let end = &body[start..];
        // Validating first is cheaper than the lossy conversion when the bytes are UTF-8.
        match std::str::from_utf8(end) {
            Ok(end) => std::borrow::Cow::Borrowed(end),
            Err(_) => String::from_utf8_lossy(end),
        }
    });
    let tail_code = tail.as_deref().and_then(|t| {
        body::tail_member(t, "code")
            .filter(|code| code.parse::<u16>().is_err())
            .or_else(|| body::tail_member(t, "__type").map(body::aws_error_type))
            .or_else(|| body::tail_member(t, "type"))
    });
    let aws_type = aws_header.or_else(|| {
        fields
            .as_ref()
            .and_then(|f| f.kind.as_deref())
            .or(tail_code)
            .filter(|kind| rules::aws_reason(kind).is_some())
            // SageMaker's `ModelError` comes with a 424; other servers name their own model
            // errors so (OpenCode Zen's 401 `ModelError` "Model is disabled"), and then the
            // text decides.
            .filter(|kind| status == 424 || !kind.eq_ignore_ascii_case("ModelError"))
    });
    let html = !success && fields.is_none() && looks_like_html(body_headers.content_type, &text);
    // The text the phrase families are searched in, in pieces: the error fields each
    // followed by a space (or the body, or a cut body's head), then a cut body's tail and an
    // AWS code, each after a space. It is scanned in place, lowercased on the fly.
    let whole = match &fields {
        Some(_) => "",
        // A cut body that is not a page names its error near its start or in its end (an
        // echoed prompt fills the middle): its head and tail are searched, not all of it.
        None if tail.is_some() && !html => head(&text, BODY_HEAD_SEARCH),
        None => &text,
    };
    let for_each_piece = |f: &mut dyn FnMut(&str)| {
        match &fields {
            Some(fields) => fields.for_each_search_piece(&mut |piece| f(piece)),
            None => f(whole),
        }
        for extra in [tail.as_deref(), aws_type].into_iter().flatten() {
            f(" ");
            f(extra);
        }
    };
    let sig = {
        let mut scanner = rules::Scanner::new();
        for_each_piece(&mut |piece| scanner.feed(piece));
        scanner.finish()
    };
    // Some gateways percent-encode the message (xAI behind a proxy: "Incorrect%20API%20key"):
    // when the scan met a `%20`, the text is put together, decoded and scanned again as one
    // string.
    let sig = if sig.percent_encoded() {
        let mut search = String::new();
        for_each_piece(&mut |piece| search.push_str(piece));
        let search = search.to_ascii_lowercase();
        rules::Signals::scan(&search.replace("%20", " ").replace("%3a", ":"))
    } else {
        sig
    };

    // In-band errors borrow the status they carry (OpenRouter puts one in `error.code`), or
    // the one their documented type stands for (Anthropic's `event: error` with `api_error`).
    let effective_status = match (&fields, success) {
        (Some(f), true) => f
            .numeric_code
            .filter(|c| (400..600).contains(c))
            .or_else(|| {
                [&f.kind, &f.code]
                    .into_iter()
                    .flatten()
                    .find_map(|t| status_of_error_type(t))
            })
            .unwrap_or(0),
        // An AWS exception frame inside a 200 event stream carries no status of its own.
        (None, true) => 0,
        // SageMaker's 424 relays the model container's own status: "Received client error
        // (400) from primary with message …".
        _ if status == 424 => fields
            .as_ref()
            .and_then(|f| f.message.as_deref())
            .and_then(relayed_status)
            .unwrap_or(status),
        _ => status,
    };
    // What the body says of the wait; the headers are read when the verdict is finished.
    let message_may_name_a_wait = sig.names_a_wait();
    let waits = wait::BodyWaits {
        retry_delay_ms: fields.as_ref().and_then(|f| f.retry_delay_ms),
        openrouter_reset_unix_ms: fields.as_ref().and_then(|f| f.openrouter_reset_unix_ms),
        message: match fields.as_ref().and_then(|f| f.message.as_deref()) {
            Some(message) if message_may_name_a_wait => wait::MessageWait::Unread(message.into()),
            _ => wait::MessageWait::None,
        },
    };
    // The rule for daily limits asks whether the server says when it will take requests
    // again, which the wait headers may tell: the rules are asked both ways, the second
    // time only if the first asked.
    let (reason_otherwise, reason_if_end_named) = if !success && body_headers.waf_mitigated {
        (Reason::BlockedByWaf, Reason::BlockedByWaf)
    } else {
        let asked = std::cell::Cell::new(false);
        let decide = |names_its_end: &dyn Fn() -> bool| {
            rules::decide(
                provider,
                effective_status,
                sig,
                html,
                fields.as_ref(),
                aws_type,
                names_its_end,
            )
        };
        let otherwise = decide(&|| {
            asked.set(true);
            false
        });
        let if_named = if asked.get() {
            decide(&|| true)
        } else {
            otherwise
        };
        (otherwise, if_named)
    };
    let mut c = Classification::of(reason_otherwise);
    c.code = fields
        .as_ref()
        .and_then(|f| {
            f.code
                .as_deref()
                .filter(|code| code.parse::<u16>().is_err())
                .or(f.kind.as_deref())
                .or(f.status_text.as_deref())
        })
        .or(aws_type)
        .or(tail_code)
        .map(redact::redact);
    c.message = message_for(&fields, html, &text, status).into();
    Judged {
        classification: c,
        pending: Pending {
            reason_otherwise,
            reason_if_end_named,
            waits: Some(waits),
        },
    }
}

/// An event stream with a line that starts a bare JSON object: no completion chunk comes so
/// (each is a `data:` line), so it may be the error that ended the stream, worded without
/// the word "error" (SiliconFlow's `{"code":60000,"message":"Request processing has failed
/// …"}`), and the body is read.
fn bare_object_in_stream(body: &[u8]) -> bool {
    (body.starts_with(b"data:") || body.starts_with(b"event:"))
        && memchr::memmem::find(body, b"\n{").is_some()
}

/// A 200 that holds no error: a success, unless the provider's filter blocked the prompt or
/// stopped the answer, which the body says in a finish reason rather than an error.
fn answer(provider: Provider, body: &[u8]) -> Classification {
    let filtered = |message: &'static str| {
        let mut c = Classification::of(Reason::ContentFilter);
        c.message = message.into();
        c
    };
    // Gemini answers a blocked prompt with a 200 that holds no candidates, only
    // `promptFeedback.blockReason` (ai.google.dev, "Safety settings").
    if provider.spec().google_quota_wording && contains_ascii_ci(body, b"blockreason") {
        return filtered("the provider blocked the prompt (promptFeedback.blockReason)");
    }
    // OpenAI's and Azure's `finish_reason: "content_filter"` (Azure: "the output was filtered");
    // the Responses API's `incomplete_details.reason: "content_filter"`. Azure's
    // `content_filter_results`, sent with every answer, is no finish reason.
    const CONTENT_FILTER: &[&[u8]] = &[b"\"content_filter\""];
    if memchr::memmem::find(body, CONTENT_FILTER[0]).is_some()
        && (member_is(body, b"\"finish_reason\"", CONTENT_FILTER)
            || member_is(body, b"\"reason\"", CONTENT_FILTER))
    {
        return filtered("the provider's content filter stopped the answer (content_filter)");
    }
    // Gemini's and Vertex's candidates stopped by a safety filter, a blocklist, prohibited
    // content or personal data (ai.google.dev, `FinishReason`).
    if member_is(body, b"\"finishReason\"", &GOOGLE_FILTER_FINISHES) {
        return filtered("the provider's safety filter stopped the answer (finishReason)");
    }
    Classification::of(Reason::Success)
}

/// Gemini's finish reasons that mean a filter stopped the answer, as JSON strings.
const GOOGLE_FILTER_FINISHES: [&[u8]; 5] = [
    b"\"SAFETY\"",
    b"\"BLOCKLIST\"",
    b"\"PROHIBITED_CONTENT\"",
    b"\"SPII\"",
    b"\"IMAGE_SAFETY\"",
];

/// Whether some member named `key` (quoted) has one of `values` (quoted JSON strings), as
/// written in `body`: found without parsing, whitespace allowed around the colon.
fn member_is(body: &[u8], key: &[u8], values: &[&[u8]]) -> bool {
    memchr::memmem::find_iter(body, key).any(|at| {
        let rest = body[at + key.len()..].trim_ascii_start();
        rest.first() == Some(&b':') && {
            let value = rest[1..].trim_ascii_start();
            values.iter().any(|v| value.starts_with(v))
        }
    })
}

/// The status in SageMaker's "Received client error (400) from …" or "Received server error
/// (500) from …", when it is an error status.
fn relayed_status(message: &str) -> Option<u16> {
    const MARKERS: [&[u8]; 2] = [b"received client error (", b"received server error ("];
    let bytes = message.as_bytes();
    let at = MARKERS.iter().find_map(|marker| {
        bytes
            .windows(marker.len())
            .position(|w| w.eq_ignore_ascii_case(marker))
            .map(|p| p + marker.len())
    })?;
    let digits = bytes.get(at..at + 4)?;
    if digits[3] != b')' {
        return None;
    }
    let status: u16 = std::str::from_utf8(&digits[..3]).ok()?.parse().ok()?;
    (400..600).contains(&status).then_some(status)
}

fn message_for(fields: &Option<body::ErrorFields>, html: bool, text: &str, status: u16) -> String {
    if let Some(message) = fields.as_ref().and_then(|f| f.message.as_deref()) {
        return redact::redact(message);
    }
    if html {
        let title = html_title(text).unwrap_or("untitled page");
        return redact::redact(&format!(
            "HTTP {status} HTML page from an intermediary: {title}"
        ));
    }
    let source = message_source(text);
    let message = redact::redact(source);
    if !message.is_empty() {
        message
    } else if text.trim().is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        format!("HTTP {status} whose body begins with one unbroken run of over {LONG_WORD} bytes")
    }
}

/// The longest word [`message_source`] extends its cut over.
const LONG_WORD: usize = 2 * 1024;

/// What a message is made from when the body has no message member: about its first
/// `2 × MAX_MESSAGE_CHARS` characters (the message keeps `MAX_MESSAGE_CHARS` of them).
///
/// The cut never falls inside a word. A key cut in two leaves a piece (its prefix and a few
/// characters) too short for the redactor to know as a key, and decoding escapes can shrink
/// the text before it so much that the piece reaches the message. So the cut moves on to the
/// end of the word it falls in or, when that word runs on for more than [`LONG_WORD`] bytes,
/// back to its start. A word ends at whitespace or at punctuation no key holds, but not at a
/// line break inside a wrapped key ([`wrapped_word_end`]).
fn message_source(text: &str) -> &str {
    let Some((cut, _)) = text.char_indices().nth(redact::MAX_MESSAGE_CHARS * 2) else {
        return text;
    };
    // Only as far as the longest word is searched (a huge body is not walked to its end).
    let reach = cut + head(&text[cut..], LONG_WORD).len();
    match wrapped_word_end(text, cut, reach) {
        Some(end) => &text[..end],
        None if reach == text.len() => text,
        None => &text[..text[..cut].rfind(ends_word).unwrap_or(0)],
    }
}

/// Where the word of `text` that runs on at `from` ends, searched up to `reach` ([`word_end`];
/// `None` past it), where a line break between two characters a key can hold does not end
/// the word: a key wrapped across lines is one word, so a cut does not leave its first line
/// behind alone (`redact::wrap_gap_end`, the redactor's own rule for wrapped keys).
fn wrapped_word_end(text: &str, from: usize, reach: usize) -> Option<usize> {
    let mut from = from;
    loop {
        let end = from + word_end(&text[from..reach])?;
        // The cut may fall inside the gap: look at it from its start.
        let bytes = text.as_bytes();
        match redact::wrap_gap_end(bytes, redact::gap_start(bytes, end)) {
            Some(next) if next < reach => from = next,
            Some(_) => return None,
            None => return Some(end),
        }
    }
}

/// Whether `c` ends a word for [`message_source`]: whitespace, or punctuation no key holds.
fn ends_word(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '<' | '>' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '|'
        )
}

/// [`ends_word`] for each ASCII byte (a unit test checks the two agree).
const ASCII_ENDS_WORD: [bool; 128] = {
    let mut table = [false; 128];
    let mut b = 0;
    while b < 128 {
        // ASCII whitespace as `char::is_whitespace` has it (tab to carriage return, space),
        // and the punctuation of `ends_word`.
        table[b] = matches!(
            b as u8,
            b'\t'
                ..=b'\r'
                    | b' '
                    | b'"'
                    | b'\''
                    | b'<'
                    | b'>'
                    | b','
                    | b';'
                    | b'('
                    | b')'
                    | b'['
                    | b']'
                    | b'{'
                    | b'}'
                    | b'|'
        );
        b += 1;
    }
    table
};

/// Where the first word of `text` ends ([`ends_word`]), read byte by byte: characters
/// outside ASCII are decoded only where they start.
fn word_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at].is_ascii() {
            if ASCII_ENDS_WORD[usize::from(bytes[at])] {
                return Some(at);
            }
            at += 1;
        } else {
            let c = text[at..].chars().next()?;
            if ends_word(c) {
                return Some(at);
            }
            at += c.len_utf8();
        }
    }
    None
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn html_title(text: &str) -> Option<&str> {
    let lower = text.get(..text.len().min(8192))?.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower.get(start..)?.find("</title>")?;
    text.get(start..end).map(str::trim)
}

/// The HTTP status an error type stands for, for an error that arrives inside a 200 (an SSE
/// `event: error`) and carries no status of its own. Anthropic documents each type with its
/// status (docs.claude.com/en/api/errors: `invalid_request_error` 400, `authentication_error`
/// 401, `permission_error` 403, `not_found_error` 404, `request_too_large` 413,
/// `rate_limit_error` 429, `api_error` 500, `overloaded_error` 529); OpenAI's streamed
/// `error` events use `server_error` (500) and `invalid_request_error`.
fn status_of_error_type(kind: &str) -> Option<u16> {
    const TYPES: &[(&str, u16)] = &[
        ("invalid_request_error", 400),
        ("authentication_error", 401),
        ("permission_error", 403),
        ("not_found_error", 404),
        ("request_too_large", 413),
        ("rate_limit_error", 429),
        ("api_error", 500),
        ("server_error", 500),
        ("internal_server_error", 500),
        ("overloaded_error", 529),
    ];
    let kind = kind.trim();
    TYPES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(kind))
        .map(|&(_, status)| status)
}

/// A CDN's firewall says in a header that it stopped the request, whatever the body: Cloudflare
/// `cf-mitigated: challenge` (developers.cloudflare.com, "Detect a Challenge Page response"),
/// Vercel `x-vercel-mitigated: deny` or `challenge` (vercel.com/docs, Vercel Firewall).
fn waf_mitigated(headers: &[(&str, &str)]) -> bool {
    headers.iter().any(|(name, value)| {
        let named = match name.len() {
            12 => name.eq_ignore_ascii_case("cf-mitigated"),
            18 => name.eq_ignore_ascii_case("x-vercel-mitigated"),
            _ => false,
        };
        named && {
            let v = value.trim();
            v.eq_ignore_ascii_case("challenge") || v.eq_ignore_ascii_case("deny")
        }
    })
}

fn looks_like_html(content_type: Option<&str>, text: &str) -> bool {
    let content_type_html =
        content_type.is_some_and(|v| v.to_ascii_lowercase().contains("text/html"));
    let start = text.trim_start();
    let start = start
        .get(..start.len().min(16))
        .unwrap_or("")
        .to_ascii_lowercase();
    content_type_html
        || start.starts_with("<!doctype")
        || start.starts_with("<html")
        || start.starts_with("<head")
}

/// The first value of a header, matched case-insensitively.
#[inline]
pub(crate) fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| names_match(n, name))
        .map(|(_, v)| *v)
}

/// Whether the header name `sent` is `name`, ignoring case and surrounding ASCII whitespace.
/// A name shorter than `name` cannot match (trimming only shortens it): checked first, as
/// it rules out most headers without trimming them.
fn names_match(sent: &str, name: &str) -> bool {
    sent.len() >= name.len() && sent.trim_ascii().eq_ignore_ascii_case(name)
}

/// Every value of a header, matched case-insensitively.
#[inline]
pub(crate) fn headers_named<'a, 'h>(
    headers: &'h [(&'h str, &'a str)],
    name: &'h str,
) -> impl Iterator<Item = &'a str> + 'h {
    headers
        .iter()
        .filter(move |(n, _)| names_match(n, name))
        .map(|(_, v)| *v)
}

/// Whether `haystack` holds `needle` in any ASCII case. The places where the needle's
/// first byte stands (in either case) are found with `memchr2`, and only there is the rest
/// compared: a success body is searched for `error` on every call, and a byte-by-byte
/// window cost a dozen instructions per byte of it.
fn contains_ascii_ci(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    memchr::memchr2_iter(lower, upper, haystack).any(|at| {
        haystack
            .get(at + 1..at + needle.len())
            .is_some_and(|tail| tail.eq_ignore_ascii_case(rest))
    })
}

#[cfg(test)]
mod word_end_tests {
    #[test]
    fn the_ascii_table_agrees_with_ends_word() {
        for b in 0u8..128 {
            assert_eq!(
                super::ASCII_ENDS_WORD[usize::from(b)],
                super::ends_word(char::from(b)),
                "{b:#x}"
            );
        }
    }
}

#[cfg(test)]
mod contains_tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// The search agrees with comparing every window of the haystack.
        #[test]
        fn finds_what_every_window_finds(
            haystack in proptest::collection::vec(proptest::sample::select(
                b"eErRoO {}\":\xc3\xa9x".to_vec()), 0..40),
            needle in proptest::sample::select(vec![&b"error"[..], b"e", b"Er", b"\xc3\xa9"]),
        ) {
            let windows = haystack
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle));
            prop_assert_eq!(super::contains_ascii_ci(&haystack, needle), windows);
        }
    }
}
