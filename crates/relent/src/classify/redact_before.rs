//! The redactor as it was at `ac69154`, before the speed work of issue #16 (2026-11-30), kept
//! as an oracle: `redact_differential` checks that the redactor gives the same output on
//! the corpus and on generated text. Test-only; not compiled into the library.
//!
//! Rules added to both redactors since: a key wrapped across lines is searched for with
//! its line breaks taken out (`redact::with_wrapped`, called here with this file's own
//! search), and an escaped `\n` or `\r` decodes to a line break rather than a space
//! (session 21, 2026-12-01); the invisible characters dropped are the redactor's own wider
//! list, ASCII controls included (`redact::is_invisible`), and the line breaks bridged
//! include the vertical tab, form feed, NEL and U+2028/U+2029; more separators after a
//! scheme or a parameter; the names `pwd`, `sig`, `auth` and `authorization` (with the
//! header's scheme skipped, `redact::past_scheme`); a URL's password
//! (`redact::userinfo`) (session 22, 2026-12-02); full-width and small forms read as ASCII
//! in the fold stage that drops invisible characters (`redact::fold_char`); session
//! cookies and `Cookie` among the names; the text of an element named like a secret
//! parameter (`redact::markup_values`); brace and octal escapes and HTML character
//! references (`redact::brace_or_octal`, `redact::entity_at`); the `+`s between a scheme and
//! its credential taken into the credential (`redact::leading_plus`); the prefixes `glpat-`,
//! `xoxb-` `xoxp-` `xoxa-` `xoxe-` `xapp-` and `rk_`, SendGrid's `SG.` shape, and names padded
//! by up to 64 spaces or tabs (session 23, 2026-12-02); names with a suffix or a plural
//! (`redact::without_suffix`) and `passphrase`, name and value pairs
//! (`redact::pair_names_a_secret`), command-line flags (`redact::flag_values`,
//! `redact::user_flag_values`), quoted values to their closing quote
//! (`redact::quoted_value`), a URL password holding a raw `@`, Telegram bot tokens
//! (`redact::telegram_token`), PEM private keys (`redact::pem_private_keys`) (session 24,
//! 2026-12-02); a credential-like value after words that name a secret, without a
//! parameter's `=` or `:` (`redact::credential_behind_a_name`), and the names `pass` and `pw`
//! as words of their own (`redact::ends_with_short_name`) (session 25, 2026-12-02).

#![allow(dead_code)]

// Redaction of secrets that providers echo back in error messages.
//
// OpenAI answers a bad key with "Incorrect API key provided: sk-proj-abc…xyz", xAI with
// "Incorrect API key provided: xa***", Gemini's errors and client logs carry URLs ending in
// `?key=AIza…`, and proxies sometimes echo the whole `Authorization` header. Every message
// and code relent keeps passes through [`redact`] first, so no trace, log line or abort
// message can carry a key.
//
// # How a secret is found
//
// The text is searched as it is and again after each step of *normalisation*:
// percent-encoding (`%2D`) and JSON or C escapes (`\u002d`, `\x2d`, `\n`, `\"`) are decoded,
// each up to [`DECODE_PASSES`] times so a doubly encoded key is seen too, and zero-width and
// other invisible format characters (U+00AD, U+200B–U+200F, U+202A–U+202E, U+2060–U+206F,
// U+FEFF) are dropped; what is found at any stage is redacted in the final, decoded text.
// At every stage, anywhere in the text (not only at the start of a word):
//
// * a known key prefix (`sk-`, which covers `sk-proj-`, `sk-svcacct-`, `sk-ant-` and
//   `sk-or-`; `AIza`, `gsk_`, `xai-`, GitHub's `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` and
//   `github_pat_`, `hf_`, `pplx-`, `csk-`, `nvapi-`, `r8_`, `sk_`) followed by at least
//   [`MIN_TAIL`] key characters (`A–Z a–z 0–9 - _ *`) of which one is a digit or a capital
//   letter; a key *label* such as `xai-main` is too short or too plain to match;
// * a JWT: `eyJ` followed by at least [`MIN_TAIL`] base64url characters and dots;
// * an AWS access key id (`AKIA` or `ASIA` and 16 capitals or digits), and, when one is
//   present, every run of 40 or more base64 characters (the secret access key beside it);
// * the credential after `Bearer` or `Basic` whatever separates them (spaces, `=`, `:`,
//   quotes), a `Basic` credential only when it looks like base64;
// * the value of any parameter whose name ends in `key`, `token`, `secret`, `password`,
//   `passwd`, `signature` or `credential` (`key=`, `api_key=`, `x-api-key:`,
//   `access_token=`, `"apiKey": "…"`, inside URLs too), and whatever follows
//   `key provided:`;
// * a long opaque token: 20 or more letters and digits in a row, mixing both;
// * a long base64 token: 40 or more base64 characters in a row with a `+` or `/`, mixing
//   capitals, small letters and digits (an AWS session token).
//
// The whole run of key characters around a match is replaced by `[redacted]`. Every step
// is a single left-to-right pass, so redaction is linear in the length of the text. The
// rules and their known limits are listed in `docs/CLASSIFIER.md`.

use std::borrow::Cow;
use std::ops::Range;

/// The longest message relent keeps, in characters.
pub const MAX_MESSAGE_CHARS: usize = 240;

/// How many key characters must follow a known prefix for it to be a key.
pub const MIN_TAIL: usize = 16;

/// How many rounds of percent and escape decoding the redactor applies at most.
pub const DECODE_PASSES: usize = 4;

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Prefixes that start a secret token, matched case-sensitively anywhere in a run of key
/// characters. The prefixes of AWS ids and JWTs have their own rules.
const KEY_PREFIXES: &[&str] = &[
    "sk-",
    "sk_",
    "AIza",
    "gsk_",
    // GitLab's personal access tokens.
    "glpat-",
    "xai-",
    // Slack's bot, user, legacy workspace, refresh and app tokens.
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxe-",
    "xapp-",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "hf_",
    "pplx-",
    "csk-",
    "nvapi-",
    "r8_",
    // Stripe's restricted keys (`rk_live_`, `rk_test_`).
    "rk_",
];

/// Parameter names whose value is a secret, lower case. A name matches at the end of a
/// longer name too (`api_key`, `x-api-key`, `access_token`, `client_secret`).
const SECRET_PARAMS: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "signature",
    "sig",
    "credential",
    "auth",
    "authorization",
    "session",
    "sessid",
    "sessionid",
    "session_id",
    "sid",
    "cookie",
];

/// Returns `text` with secrets replaced by `[redacted]`, escapes and percent-encoding
/// decoded, invisible format characters dropped, whitespace collapsed, and cut to
/// [`MAX_MESSAGE_CHARS`] characters (an ellipsis marks the cut).
pub fn redact(text: &str) -> String {
    if is_plain_token(text) {
        return text.to_owned();
    }
    let (normal, spans) = analyse(text);
    if spans.is_empty() && is_tidy(&normal) {
        return normal.into_owned();
    }
    render(&normal, &spans)
}

/// A short run of key characters and dots (an error code such as `rate_limit_exceeded`):
/// shorter than any secret the rules can find (a prefix and [`MIN_TAIL`] characters, a JWT,
/// an AWS id or an opaque token all take at least 19 bytes), with nothing to decode, no
/// separator a parameter or a scheme needs, and no whitespace. [`redact`] returns it as it is.
fn is_plain_token(text: &str) -> bool {
    text.len() < 3 + MIN_TAIL
        && !text.is_empty()
        && text.bytes().all(|b| BYTE_CLASS[b as usize] & RUN != 0)
}

/// True when `text` still contains anything that [`redact`] would remove. This is
/// `redact`'s own detector, so it cannot judge `redact`: tests that check redaction should
/// search for the secret they planted instead.
pub fn contains_secret(text: &str) -> bool {
    !analyse(text).1.is_empty()
}

/// The normalised text and the byte ranges of it that hold secrets.
///
/// A secret is searched for at every stage of decoding, not only in the final text: a
/// decoding step can also *break* a key (`%2` before `AIza…` decodes to `*Iza…`), so spans
/// found at one stage are carried through each later step.
fn analyse(text: &str) -> (Cow<'_, str>, Vec<Range<usize>>) {
    let needs_work =
        memchr::memchr3(b'%', b'\\', b'&', text.as_bytes()).is_some() || text.chars().any(folds);
    if !needs_work {
        let spans = super::redact::with_wrapped(text, find_secrets(text), find_secrets);
        return (Cow::Borrowed(text), spans);
    }
    let mut current = text.to_string();
    let mut spans = find_secrets(&current);
    // Dropping invisible characters, percent-decoding and unescaping take turns, each a
    // stage of its own searched in turn, so that none of them can hide what another revealed
    // (`\\` before `%62asic` reads as an escape only once the percent is decoded).
    let cycle = [Step::Percent, Step::Fold, Step::Unescape, Step::Fold];
    let stages = std::iter::once(Step::Fold)
        .chain(cycle.into_iter().cycle().take(cycle.len() * DECODE_PASSES));
    let mut unchanged_in_a_row = 0;
    for step in stages {
        let (next, origin) = decode_step(&current, step);
        if next == current {
            unchanged_in_a_row += 1;
            if unchanged_in_a_row == cycle.len() {
                break;
            }
            continue;
        }
        unchanged_in_a_row = 0;
        let mut carried = carry(&spans, &origin, &next);
        carried.extend(find_secrets(&next));
        spans = merge(carried);
        current = next;
    }
    let spans = super::redact::with_wrapped(&current, spans, find_secrets);
    (Cow::Owned(current), spans)
}

/// One stage of normalisation.
#[derive(Clone, Copy, PartialEq)]
enum Step {
    /// Decode `%XX`, one level.
    Percent,
    /// Decode `\\uXXXX`, `\\xXX` and the one-letter escapes, one level.
    Unescape,
    /// Drop invisible characters, read wide forms as ASCII (`redact::fold_char`).
    Fold,
}

/// `spans` of the text before a decoding step, as spans of the text after it (`origin`
/// gives, for each byte after, the byte before it came from), widened to whole characters.
fn carry(spans: &[Range<usize>], origin: &[usize], next: &str) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut spans = spans.iter().peekable();
    for (k, from) in origin.iter().enumerate() {
        while spans.next_if(|s| s.end <= *from).is_some() {}
        let Some(span) = spans.peek() else { break };
        if span.start <= *from {
            match out.last_mut() {
                Some(last) if last.end == k => last.end = k + 1,
                _ => out.push(k..k + 1),
            }
        }
    }
    for span in &mut out {
        while !next.is_char_boundary(span.start) {
            span.start -= 1;
        }
        while !next.is_char_boundary(span.end) {
            span.end += 1;
        }
    }
    out
}

/// Sorts spans and joins the overlapping ones.
fn merge(mut spans: Vec<Range<usize>>) -> Vec<Range<usize>> {
    if spans.len() < 2 {
        return spans;
    }
    spans.sort_unstable_by_key(|s| (s.start, s.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

/// Writes `text` with `spans` replaced, whitespace collapsed and the length capped.
fn render(text: &str, spans: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS + 8));
    let mut chars_written = 0usize;
    let mut last_was_space = true;
    let mut spans = spans.iter().peekable();
    let mut pos = 0;
    let bytes = text.as_bytes();
    while pos < text.len() {
        // A run of ASCII non-space bytes before the next span is copied whole: each is one
        // character that is kept as it is.
        let next_span = spans.peek().map_or(text.len(), |s| s.start.max(pos));
        let mut run = pos;
        while run < next_span && bytes[run] < 0x80 && BYTE_CLASS[bytes[run] as usize] & SPACE == 0 {
            run += 1;
        }
        if run > pos {
            let room = MAX_MESSAGE_CHARS.saturating_sub(chars_written);
            if run - pos > room {
                // The cap is reached with characters left.
                out.push_str(&text[pos..pos + room]);
                out.push('…');
                return out;
            }
            out.push_str(&text[pos..run]);
            chars_written += run - pos;
            pos = run;
            last_was_space = false;
            continue;
        }
        if let Some(span) = spans.next_if(|s| s.start <= pos) {
            if chars_written + REDACTED.len() + 1 > MAX_MESSAGE_CHARS {
                out.push('…');
                return out;
            }
            out.push_str(REDACTED);
            chars_written += REDACTED.len();
            pos = pos.max(span.end);
            last_was_space = false;
            continue;
        }
        let Some(c) = text[pos..].chars().next() else {
            break;
        };
        pos += c.len_utf8();
        if c.is_whitespace() {
            if last_was_space {
                continue;
            }
            last_was_space = true;
        } else {
            last_was_space = false;
        }
        if chars_written >= MAX_MESSAGE_CHARS {
            out.push('…');
            return out;
        }
        out.push(if c.is_whitespace() { ' ' } else { c });
        chars_written += 1;
    }
    out.truncate(out.trim_end().len());
    out
}

/// Whether `text` needs no whitespace collapsing or cutting: short, single-spaced, no
/// space at either end, no whitespace but the plain space.
fn is_tidy(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() > MAX_MESSAGE_CHARS || text.starts_with(' ') || text.ends_with(' ') {
        return false;
    }
    // Single spaces only: no other ASCII whitespace (a branch-free pass the compiler
    // vectorises), no double space, and no other whitespace outside ASCII.
    let other_space = bytes
        .iter()
        .fold(false, |seen, &b| seen | matches!(b, b'\t'..=b'\r'));
    if other_space || memchr::memmem::find(bytes, b"  ").is_some() {
        return false;
    }
    text.is_ascii() || !text.chars().any(|c| c.is_whitespace() && c != ' ')
}

/// Byte classes, one table load per byte: key characters, key characters and dots (the
/// runs searched for keys), and ASCII whitespace.
const KEY: u8 = 1;
const RUN: u8 = 2;
const SPACE: u8 = 4;
const BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'*') {
            table[b] |= KEY | RUN;
        }
        if byte == b'.' {
            table[b] |= RUN;
        }
        if is_space_byte(byte) {
            table[b] |= SPACE;
        }
        b += 1;
    }
    table
};

/// `char::is_whitespace` for an ASCII byte.
const fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | b' ')
}

// ---------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------

/// The redactor's own list (`redact::is_invisible`), shared since it was widened.
pub fn is_invisible(c: char) -> bool {
    super::redact::is_invisible(c)
}

/// Whether the fold stage drops or changes `c` (the redactor's own `redact::fold_char`,
/// shared since wide forms were first folded).
fn folds(c: char) -> bool {
    super::redact::fold_char(c) != Some(c)
}

fn hex_value(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// The value of the `n` hex digits at the start of `bytes`.
fn hex_at(bytes: &[u8], n: usize) -> Option<u32> {
    let digits = bytes.get(..n)?;
    digits
        .iter()
        .try_fold(0u32, |acc, b| Some(acc * 16 + hex_value(*b)?))
}

/// The character that the `%XX` sequences at the start of `bytes` encode, and how many
/// bytes they take. `None` unless they form one whole UTF-8 character: a stray byte is
/// left encoded, so that it cannot swallow the character after it (`%aA` before `KIA…`).
fn percent_char(bytes: &[u8]) -> Option<(char, usize)> {
    let lead = hex_at(bytes.get(1..)?, 2)? as u8;
    let len = match lead {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let mut encoded = [0u8; 4];
    for (n, slot) in encoded.iter_mut().enumerate().take(len) {
        let at = 3 * n;
        if bytes.get(at) != Some(&b'%') {
            return None;
        }
        *slot = hex_at(bytes.get(at + 1..)?, 2)? as u8;
    }
    let c = std::str::from_utf8(&encoded[..len]).ok()?.chars().next()?;
    Some((c, 3 * len))
}

/// One stage of normalisation: one round of percent-decoding, or of unescaping
/// (`\uXXXX` with surrogate pairs joined, `\xXX` and the one-letter escapes), or dropping
/// invisible characters. Undecodable sequences, and encoded bytes that do not form UTF-8, are kept as
/// they are. Also returns, for each byte of the
/// result, the byte of `text` it came from.
fn decode_step(text: &str, step: Step) -> (String, Vec<usize>) {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut from: Vec<usize> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let mut decoded: Option<(char, usize)> = None;
        let mut raw_byte: Option<(u8, usize)> = None;
        if b == b'%' && step == Step::Percent {
            decoded = percent_char(&bytes[i..]);
        } else if b == b'&' && step == Step::Unescape {
            decoded = super::redact::entity_at(&bytes[i..]);
        } else if b == b'\\' && step == Step::Unescape && i + 1 < bytes.len() {
            let next = bytes[i + 1];
            match super::redact::brace_or_octal(&bytes[i..]) {
                Some((super::redact::Decoded::Char(c), n)) => decoded = Some((c, n)),
                Some((super::redact::Decoded::Byte(b), n)) => raw_byte = Some((b, n)),
                None => {}
            }
            match next {
                _ if decoded.is_some() || raw_byte.is_some() => {}
                b'u' | b'U' => {
                    decoded = hex_at(&bytes[i + 2..], 4).map(|unit| {
                        if !(0xd800..0xdc00).contains(&unit) {
                            return (
                                char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER),
                                6,
                            );
                        }
                        // A high surrogate: join it with the low one after it.
                        let low = bytes
                            .get(i + 6..i + 8)
                            .filter(|p| p[0] == b'\\' && matches!(p[1], b'u' | b'U'))
                            .and_then(|_| hex_at(&bytes[i + 8..], 4))
                            .filter(|low| (0xdc00..0xe000).contains(low));
                        match low {
                            Some(low) => (
                                char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))
                                    .unwrap_or(char::REPLACEMENT_CHARACTER),
                                12,
                            ),
                            None => (char::REPLACEMENT_CHARACTER, 6),
                        }
                    });
                }
                b'x' | b'X' => {
                    raw_byte = hex_at(&bytes[i + 2..], 2)
                        .filter(|v| *v < 0x80)
                        .map(|v| (v as u8, 4));
                }
                b'n' | b'r' => raw_byte = Some((b'\n', 2)),
                b't' | b'f' | b'b' => raw_byte = Some((b' ', 2)),
                b'"' | b'\'' | b'/' | b'\\' => raw_byte = Some((next, 2)),
                _ => {}
            }
        }
        match (decoded, raw_byte) {
            (Some((c, consumed)), _) => {
                let mut buf = [0u8; 4];
                let encoded = c.encode_utf8(&mut buf).as_bytes();
                out.extend_from_slice(encoded);
                from.extend(std::iter::repeat_n(i, encoded.len()));
                i += consumed;
            }
            (None, Some((byte, consumed))) => {
                out.push(byte);
                from.push(i);
                i += consumed;
            }
            (None, None) => {
                out.push(b);
                from.push(i);
                i += 1;
            }
        }
    }
    // Back to text: invalid bytes become U+FFFD, invisible characters go.
    let mut text_out = String::with_capacity(out.len());
    let mut origin = Vec::with_capacity(out.len());
    let mut at = 0;
    for chunk in out.utf8_chunks() {
        for (n, c) in chunk.valid().char_indices() {
            let folded = if step == Step::Fold {
                super::redact::fold_char(c)
            } else {
                Some(c)
            };
            if let Some(c) = folded {
                text_out.push(c);
                origin.extend(std::iter::repeat_n(from[at + n], c.len_utf8()));
            }
        }
        at += chunk.valid().len();
        if !chunk.invalid().is_empty() {
            text_out.push(char::REPLACEMENT_CHARACTER);
            origin.extend(std::iter::repeat_n(from[at], '\u{fffd}'.len_utf8()));
            at += chunk.invalid().len();
        }
    }
    (text_out, origin)
}

// ---------------------------------------------------------------------------------------
// Detection
// ---------------------------------------------------------------------------------------

/// A key character: what API keys are made of (`*` included for masked keys).
fn is_key_byte(b: u8) -> bool {
    BYTE_CLASS[b as usize] & KEY != 0
}

/// A character of standard base64 (AWS secret access keys).
const fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/')
}

/// Where a parameter value or a credential ends.
fn is_value_end(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\''
                | '`'
                | ','
                | ';'
                | '&'
                | '('
                | ')'
                | '<'
                | '>'
                | '{'
                | '}'
                | '['
                | ']'
                | '|'
                | '…'
        )
}

/// The byte ranges of `text` that hold secrets, sorted and not overlapping.
fn find_secrets(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut spans: Vec<Range<usize>> = Vec::new();
    let mut aws_id_seen = false;
    let mut long_base64: Vec<Range<usize>> = Vec::new();

    // Runs of key characters and dots: prefixed keys, AWS ids, JWTs and opaque tokens.
    let mut i = 0;
    while i < bytes.len() {
        if !is_key_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && BYTE_CLASS[bytes[i] as usize] & RUN != 0 {
            i += 1;
        }
        scan_key_run(bytes, start, i, &mut spans, &mut aws_id_seen);
    }

    // Long base64 runs: beside an AWS key id, any of them (the secret access key); without
    // one, those that carry a `+` or `/` and mix capitals, small letters and digits (an AWS
    // session token, a base64 secret), which the opaque-token rule misses because `+` and
    // `/` break its runs.
    if aws_id_seen || memchr::memchr2(b'+', b'/', bytes).is_some() {
        let mut i = 0;
        while i < bytes.len() {
            if !is_base64_byte(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && is_base64_byte(bytes[i]) {
                i += 1;
            }
            if i - start >= LONG_BASE64 && (aws_id_seen || is_base64_secret(&bytes[start..i])) {
                long_base64.push(start..i);
            }
        }
        spans.append(&mut long_base64);
    }

    scan_context(text, &mut spans);

    merge(spans)
}

/// How long a run of base64 characters must be to be taken for a secret.
const LONG_BASE64: usize = 40;

/// A long base64 run that is a secret even with no AWS key id beside it: it holds a `+` or
/// a `/` (standard base64, not a word or a URL path of plain words) and mixes capitals,
/// small letters and digits.
fn is_base64_secret(run: &[u8]) -> bool {
    let (mut slash_or_plus, mut upper, mut lower, mut digit) = (false, false, false, false);
    for b in run {
        slash_or_plus |= matches!(b, b'+' | b'/');
        upper |= b.is_ascii_uppercase();
        lower |= b.is_ascii_lowercase();
        digit |= b.is_ascii_digit();
    }
    slash_or_plus && upper && lower && digit
}

/// A digit or a capital letter: what tells a key from a lower-case label.
fn is_varied(b: &u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_uppercase()
}

/// Where a run of key characters and dots, `bytes[start..end]`, holds secrets. Each dot-free
/// piece is searched for a key prefix (a JWT's tail runs on through the dots), and failing
/// that is checked for a long opaque token. One pass over the run, whatever it holds.
fn scan_key_run(
    bytes: &[u8],
    start: usize,
    end: usize,
    spans: &mut Vec<Range<usize>>,
    aws_id_seen: &mut bool,
) {
    spans.extend(super::redact::credential_behind_a_name(bytes, start, end));
    // The shortest key is a three-byte prefix and MIN_TAIL characters, and the shortest
    // opaque token is 20 characters: most words are shorter.
    if end - start < 20.min(3 + MIN_TAIL) {
        return;
    }
    if let Some(token) = super::redact::telegram_token(bytes, start, end) {
        spans.push(token);
    }
    let run_last_varied = bytes[start..end]
        .iter()
        .rposition(is_varied)
        .map(|p| start + p);
    let mut piece = start;
    while piece < end {
        if bytes[piece] == b'.' {
            piece += 1;
            continue;
        }
        let piece_end = bytes[piece..end]
            .iter()
            .position(|b| *b == b'.')
            .map_or(end, |p| piece + p);
        let tails = Tails {
            piece_end,
            piece_last_varied: bytes[piece..piece_end]
                .iter()
                .rposition(is_varied)
                .map(|p| piece + p),
            run_end: end,
            run_last_varied,
        };
        // Every position that can start a prefix within the piece, and the `SG` before a dot.
        let found = (piece..piece_end.saturating_sub(1))
            .find_map(|at| key_at(bytes, at, &tails, aws_id_seen).map(|key_end| at..key_end));
        match found {
            Some(key) => {
                piece = key.end;
                spans.push(key);
            }
            None => {
                if is_opaque(&bytes[piece..piece_end]) {
                    spans.push(piece..piece_end);
                }
                piece = piece_end;
            }
        }
    }
}

/// 20 or more letters and digits in a row, mixing both.
fn is_opaque(piece: &[u8]) -> bool {
    if piece.len() < 20 {
        return false;
    }
    let mut j = 0;
    while j < piece.len() {
        let from = j;
        let (mut letter, mut digit) = (false, false);
        while j < piece.len() && piece[j].is_ascii_alphanumeric() {
            letter |= piece[j].is_ascii_alphabetic();
            digit |= piece[j].is_ascii_digit();
            j += 1;
        }
        if j - from >= 20 && letter && digit {
            return true;
        }
        j += 1;
    }
    false
}

/// Where the text after a candidate prefix can end, and where its last digit or capital
/// is, for the dot-free piece and for the whole run.
struct Tails {
    piece_end: usize,
    piece_last_varied: Option<usize>,
    run_end: usize,
    run_last_varied: Option<usize>,
}

/// If a key starts at `bytes[at]`, where it ends.
fn key_at(bytes: &[u8], at: usize, tails: &Tails, aws_id_seen: &mut bool) -> Option<usize> {
    let here = &bytes[at..tails.piece_end];
    let plausible = |tail_start: usize, end: usize, last_varied: Option<usize>| {
        end >= tail_start + MIN_TAIL && last_varied.is_some_and(|v| v >= tail_start)
    };
    match here.first()? {
        b'A' if here.starts_with(b"AKIA") || here.starts_with(b"ASIA") => {
            let id_chars = here[4..]
                .iter()
                .take(16)
                .take_while(|b| is_varied(b))
                .count();
            if id_chars == 16 {
                *aws_id_seen = true;
                return Some(tails.piece_end);
            }
        }
        b'g' if here.get(1) == Some(&b'h') || here.get(1) == Some(&b'i') => {
            let prefix = github_prefix(here)?;
            return plausible(at + prefix, tails.piece_end, tails.piece_last_varied)
                .then_some(tails.piece_end);
        }
        // A JWT: its dots are part of it.
        b'e' if here.starts_with(b"eyJ") => {
            return plausible(at + 3, tails.run_end, tails.run_last_varied)
                .then_some(tails.run_end);
        }
        // A SendGrid key (`SG.`, 22 characters, `.`, 43): its dots are part of it, and its
        // exact shape keeps codes such as `ERR_MSG.InvalidRequestError` out.
        b'S' if super::redact::is_sendgrid_key(&bytes[at..]) => return Some(tails.run_end),
        _ => {}
    }
    prefixes_starting_with(here[0])
        .iter()
        .find(|prefix| here.starts_with(prefix.as_bytes()))
        .filter(|prefix| plausible(at + prefix.len(), tails.piece_end, tails.piece_last_varied))
        .map(|_| tails.piece_end)
}

/// The entries of [`KEY_PREFIXES`] that start with `first`, so that a position is checked
/// against a few prefixes at most instead of all of them.
fn prefixes_starting_with(first: u8) -> &'static [&'static str] {
    match first {
        b's' => &KEY_PREFIXES[..2],
        b'A' => &KEY_PREFIXES[2..3],
        b'g' => &KEY_PREFIXES[3..5],
        b'x' => &KEY_PREFIXES[5..11],
        b'h' => &KEY_PREFIXES[17..18],
        b'p' => &KEY_PREFIXES[18..19],
        b'c' => &KEY_PREFIXES[19..20],
        b'n' => &KEY_PREFIXES[20..21],
        b'r' => &KEY_PREFIXES[21..23],
        _ => &[],
    }
}

/// GitHub's token prefixes, checked only where `gh` starts.
fn github_prefix(here: &[u8]) -> Option<usize> {
    if here.starts_with(b"github_pat_") {
        return Some(11);
    }
    (here.len() >= 4
        && here.starts_with(b"gh")
        && matches!(here[2], b'p' | b'o' | b'u' | b's' | b'r')
        && here[3] == b'_')
        .then_some(4)
}

/// Lead words: credentials after `Bearer` and `Basic`, parameter values, and whatever
/// follows `key provided:`. Parameters are found from their `=` or `:` (looking back for
/// the name), schemes from their `b` or `B`, both located with `memchr`.
fn scan_context(text: &str, spans: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    // In each pass, `covered` is the end of the last value found: a value that would start
    // inside it ends where it ends, so it is not scanned again, which keeps both passes
    // linear. A lead word inside a value is still looked at (the value after
    // `key provided:` may be `Basic`, whose credential the other pass finds).
    let mut covered = 0;
    for sep in memchr::memchr2_iter(b'=', b':', bytes) {
        if param_name_before(bytes, sep) || super::redact::pair_names_a_secret(bytes, sep) {
            let found = value_after(text, sep, covered)
                .and_then(|v| super::redact::past_scheme(text, sep, v));
            if let Some(span) = found {
                covered = span.end;
                spans.push(span);
            }
        }
    }
    super::redact::userinfo(text, spans);
    super::redact::markup_values(text, spans);
    super::redact::flag_values(text, spans);
    super::redact::user_flag_values(text, spans);
    super::redact::pem_private_keys(text, spans);
    let mut covered = 0;
    for at in memchr::memchr2_iter(b'b', b'B', bytes) {
        let here = &bytes[at..];
        let span = if starts_with_ci(here, b"bearer") {
            credential_after(text, at + 6, Credential::Any, covered)
        } else if starts_with_ci(here, b"basic") {
            credential_after(text, at + 5, Credential::Base64, covered)
        } else {
            None
        };
        if let Some(span) = span {
            covered = span.end;
            spans.push(span);
        }
    }
}

/// Whether a secret parameter's name (or `key provided`) ends just before the `=` or `:` at
/// `sep`, give or take a closing quote and spaces.
fn param_name_before(bytes: &[u8], sep: usize) -> bool {
    // Up to 4 quotes, asterisks, backticks and brackets, and up to 64 spaces and tabs: a
    // column-aligned dump (`api_key          : …`) pads the name.
    let mut end = sep;
    let (mut marks, mut blanks) = (0, 0);
    while end > 0 {
        match bytes[end - 1] {
            b' ' | b'\t' if blanks < 64 => blanks += 1,
            b'"' | b'\'' | b'*' | b'`' | b']' if marks < 4 => marks += 1,
            _ => break,
        }
        end -= 1;
    }
    let before = &bytes[..end];
    let unsuffixed = super::redact::without_suffix(before);
    let ends_with_ci = |word: &[u8]| {
        unsuffixed.len() >= word.len()
            && unsuffixed[unsuffixed.len() - word.len()..].eq_ignore_ascii_case(word)
    };
    let plain_ends_with_ci = |word: &[u8]| {
        before.len() >= word.len() && before[before.len() - word.len()..].eq_ignore_ascii_case(word)
    };
    plain_ends_with_ci(b"key provided")
        || super::redact::ends_with_short_name(unsuffixed)
        || SECRET_PARAMS
            .iter()
            .any(|name| ends_with_ci(name.as_bytes()))
}

fn starts_with_ci(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len() && haystack[..needle.len()].eq_ignore_ascii_case(needle)
}

#[derive(Clone, Copy, PartialEq)]
enum Credential {
    Any,
    Base64,
}

/// The credential after an auth scheme name ending at `from`: one or more separators
/// (spaces, `=`, `:`, quotes, opening brackets), then the credential.
fn credential_after(
    text: &str,
    from: usize,
    kind: Credential,
    covered: usize,
) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut start = from;
    while start < bytes.len() {
        match super::redact::scheme_separator_len(bytes, start) {
            0 => break,
            len => start += len,
        }
    }
    if start == from {
        return None;
    }
    let start = super::redact::leading_plus(bytes, from, start);
    if start < covered {
        return None;
    }
    if kind == Credential::Base64 {
        // Look at no more than 1 KiB: a longer run of base64 is a credential anyway, and the
        // bound keeps many `basic` lead words from costing a scan each to the end.
        let probe = &bytes[start..bytes.len().min(start + 1024)];
        let is_b64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
        let len = probe.iter().position(|b| !is_b64(b)).unwrap_or(probe.len());
        let varied = probe[..len].iter().enumerate().any(|(n, b)| {
            b.is_ascii_digit()
                || matches!(b, b'+' | b'/' | b'=')
                || (n > 0 && b.is_ascii_uppercase())
        });
        if !(varied && len >= 8) {
            return None;
        }
    }
    value_span(text, start, covered)
}

/// The value after a parameter name ending at `from`: an optional closing quote, spaces,
/// at least one `=` or `:`, spaces and quotes, then the value.
fn value_after(text: &str, from: usize, covered: usize) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut start = from;
    let mut assigned = false;
    while start < bytes.len() {
        match bytes[start] {
            b'=' | b':' => assigned = true,
            b' ' | b'\t' | b'"' | b'\'' | b'`' | b'*' => {}
            // After the `=` or `:`: a line break, brackets, and the `>` of `=>`.
            b'\n' | b'\r' | b'[' | b'(' | b'<' | b'{' | b'>' if assigned => {}
            _ => break,
        }
        start += 1;
    }
    if !assigned {
        return None;
    }
    super::redact::quoted_value(text, start, covered).or_else(|| value_span(text, start, covered))
}

/// The value starting at `start`, up to the next delimiter, without a sentence's final
/// full stop. `None` when empty, already redacted, or starting inside the last value found
/// (which ends where it would end).
fn value_span(text: &str, start: usize, covered: usize) -> Option<Range<usize>> {
    if start < covered {
        return None;
    }
    let rest = text.get(start..)?;
    if start > 0 && text.as_bytes()[start - 1] == b'[' && rest.starts_with("redacted]") {
        return None;
    }
    let mut len = rest.find(is_value_end).unwrap_or(rest.len());
    if len > 1 && rest.as_bytes()[len - 1] == b'.' {
        len -= 1;
    }
    (len > 0).then_some(start..start + len)
}
