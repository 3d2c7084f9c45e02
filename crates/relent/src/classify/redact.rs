//! Redaction of secrets that providers echo back in error messages.
//!
//! OpenAI answers a bad key with "Incorrect API key provided: sk-proj-abc…xyz", xAI with
//! "Incorrect API key provided: xa***", Gemini's errors and client logs carry URLs ending in
//! `?key=AIza…`, and proxies sometimes echo the whole `Authorization` header. Every message
//! and code relent keeps passes through [`redact`] first, so no trace, log line or abort
//! message can carry a key.
//!
//! # How a secret is found
//!
//! The text is searched as it is and again after each step of *normalisation*:
//! percent-encoding (`%2D`), JSON, C and Rust escapes (`\u002d`, `\u{2d}`, `\x2d`, `\055`,
//! `\n`, `\"`) and HTML character references (`&#45;`, `&colon;`) are decoded, each up to
//! [`DECODE_PASSES`] times so a doubly encoded key is seen too; full-width and small forms
//! are read as ASCII and invisible characters dropped ([`fold_char`]); what is found at any
//! stage is redacted in the final, decoded text.
//! The final text is searched once more with the line breaks inside runs of key characters
//! taken out, for a key wrapped across lines. At every stage, anywhere in the text (not
//! only at the start of a word):
//!
//! * a known key prefix (`sk-`, which covers `sk-proj-`, `sk-svcacct-`, `sk-ant-` and
//!   `sk-or-`; `AIza`, `gsk_`, `xai-`, GitHub's `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` and
//!   `github_pat_`, `hf_`, `pplx-`, `csk-`, `nvapi-`, `r8_`, `sk_`) followed by at least
//!   [`MIN_TAIL`] key characters (`A–Z a–z 0–9 - _ *`) of which one is a digit or a capital
//!   letter; a key *label* such as `xai-main` is too short or too plain to match;
//! * a JWT: `eyJ` followed by at least [`MIN_TAIL`] base64url characters and dots;
//! * an AWS access key id (`AKIA` or `ASIA` and 16 capitals or digits), and, when one is
//!   present, every run of 40 or more base64 characters (the secret access key beside it);
//! * the credential after `Bearer` or `Basic` whatever separates them (spaces, `=`, `:`,
//!   quotes), a `Basic` credential only when it looks like base64;
//! * the value of any parameter whose name ends like one of `SECRET_PARAMS` (`key=`,
//!   `api_key=`, `x-api-key:`, `access_token=`, `"apiKey": "…"`, `session=`, inside URLs
//!   too), or in `pass` or `pw` as a word of its own (`DB_PASS=`; not `bypass=`), give
//!   or take a suffix or a plural (`without_suffix`: `OPENAI_API_KEY_PROD=`,
//!   `api_keys:`), a quoted value to its closing quote; the text of an element so named
//!   (`<ApiKey>…</ApiKey>`), the value of a name and value pair so named
//!   (`{"name":"x-api-key","value":"…"}`), the word after a flag so named (`--api-key …`);
//!   a URL's password, `curl -u`'s password, and whatever follows `key provided:`;
//! * a value that looks like a credential (16 or more key characters mixing capitals, small
//!   letters and digits, or a long hexadecimal string) within four words after a word
//!   that names a secret, with no `=` or `:` of a parameter's needed (`your key X is
//!   invalid`, `the password for bob is X`, `API_KEY_FOR_GROQ=X`, `api_key -> X`,
//!   `mysql -pX`), or in a pair written value first: `credential_behind_a_name`;
//! * a Telegram bot token (a bot id, `:`, 35 URL-safe characters);
//! * a long opaque token: 20 or more letters and digits in a row, mixing both;
//! * a long base64 token: 40 or more base64 characters in a row with a `+` or `/`, mixing
//!   capitals, small letters and digits (an AWS session token).
//!
//! The whole run of key characters around a match is replaced by `[redacted]`. Every step
//! is a single left-to-right pass, so redaction is linear in the length of the text. The
//! rules and their known limits are listed in `docs/CLASSIFIER.md`.

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
#[cfg_attr(not(test), allow(dead_code))]
const SECRET_PARAMS: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "signature",
    // Azure's shared access signatures (`&sig=`).
    "sig",
    "credential",
    // Firebase's `?auth=`, `oauth=`.
    "auth",
    // A header echoed whole: its scheme, if it has one, is skipped (see `past_scheme`).
    "authorization",
    // Session cookies and their names (`session=`, `PHPSESSID=`, `connect.sid=`,
    // `sessionid=`), and a `Cookie` header echoed whole (its first value).
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
    let (normal, spans, tidy) = analyse_noting(text);
    if spans.is_empty() && tidy.unwrap_or_else(|| is_tidy(&normal)) {
        return normal.into_owned();
    }
    render(&normal, &spans)
}

/// A run of key characters and dots (an error code such as `rate_limit_exceeded`) that can
/// hold no secret: shorter than any secret the rules can find (a prefix and [`MIN_TAIL`]
/// characters, a JWT, an AWS id or an opaque token all take at least 19 bytes), or no longer
/// than [`MAX_MESSAGE_CHARS`] and without a digit or a capital letter (every rule that finds
/// a secret in a run needs one); with nothing to decode, no separator a parameter or a
/// scheme needs, and no whitespace. [`redact`] returns it as it is.
fn is_plain_token(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_MESSAGE_CHARS {
        return false;
    }
    if bytes.len() < 3 + MIN_TAIL {
        return bytes.iter().all(|&b| BYTE_CLASS[b as usize] & RUN != 0);
    }
    bytes
        .iter()
        .all(|&b| BYTE_CLASS[b as usize] & RUN != 0 && !is_varied(&b))
}

/// True when `text` still contains anything that [`redact`] would remove. This is
/// `redact`'s own detector, so it cannot judge `redact`: tests that check redaction should
/// search for the secret they planted instead.
pub fn contains_secret(text: &str) -> bool {
    !analyse(text).1.is_empty()
}

/// The normalised text and the byte ranges of it that hold secrets.
fn analyse(text: &str) -> (Cow<'_, str>, Vec<Range<usize>>) {
    let (normal, spans, _) = analyse_noting(text);
    (normal, spans)
}

/// Whether `text` holds a `%` or a backslash, or a `&` that starts an HTML character
/// reference: a `&` in a URL's query (`?key=…&alt=sse`) alone gives decoding nothing to do.
fn has_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr2(b'%', b'\\', bytes).is_some()
        || memchr::memchr_iter(b'&', bytes).any(|i| entity_at(&bytes[i..]).is_some())
}

/// [`analyse`], and, when its first pass could tell, whether the normalised text is tidy
/// (see [`is_tidy`]).
///
/// A secret is searched for at every stage of decoding, not only in the final text: a
/// decoding step can also *break* a key (`%2` before `AIza…` decodes to `*Iza…`), so spans
/// found at one stage are carried through each later step.
fn analyse_noting(text: &str) -> (Cow<'_, str>, Vec<Range<usize>>, Option<bool>) {
    // The text as it is is searched first whatever follows; the same pass notes whether it
    // holds a `%` or a `\\` (anything to decode) or a byte outside ASCII.
    let (spans, seen) = find_secrets_noting(text);
    let needs_work = (seen.classes & ESCAPE != 0 && has_escape(text))
        || (seen.classes & HIGH != 0 && text.chars().any(folds));
    if !needs_work {
        let tidy = is_tidy_noted(text, &seen);
        let spans = with_wrapped(text, spans, find_secrets);
        return (Cow::Borrowed(text), spans, Some(tidy));
    }
    let mut current = text.to_string();
    let mut spans = spans;
    // Folding (invisible characters dropped, wide forms read as ASCII), percent-decoding
    // and unescaping take turns, each a
    // stage of its own searched in turn, so that none of them can hide what another revealed
    // (`\\` before `%62asic` reads as an escape only once the percent is decoded).
    let cycle = [Step::Percent, Step::Fold, Step::Unescape, Step::Fold];
    let stages = std::iter::once(Step::Fold)
        .chain(cycle.into_iter().cycle().take(cycle.len() * DECODE_PASSES));
    let mut unchanged_in_a_row = 0;
    for step in stages {
        let Some((next, origin)) = decode_step(&current, step) else {
            unchanged_in_a_row += 1;
            if unchanged_in_a_row == cycle.len() {
                break;
            }
            continue;
        };
        unchanged_in_a_row = 0;
        let mut carried = carry(&spans, &origin, &next);
        carried.extend(find_secrets(&next));
        spans = merge(carried);
        current = next;
    }
    let spans = with_wrapped(&current, spans, find_secrets);
    (Cow::Owned(current), spans, None)
}

/// `spans`, and the secrets of `text` that a line break cuts in two: a key wrapped across
/// lines by a log or a terminal (`AIzaSyA1b2…\nC3d4…`) shows each piece shorter than any
/// rule needs. Each line break between two characters a key can hold (with the spaces and
/// tabs around it; see [`wrap_gap_end`]) is taken out, the joined text searched, and what is
/// found there is redacted in `text` from its first piece to its last. Only line breaks are
/// bridged, not spaces: two words of prose are never read as one key. `find` is the search
/// (the test oracle `redact_before` passes its own).
pub(super) fn with_wrapped(
    text: &str,
    spans: Vec<Range<usize>>,
    find: fn(&str) -> Vec<Range<usize>>,
) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut joined = String::new();
    let mut origin: Vec<usize> = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while let Some(at) = bytes[i..]
        .iter()
        .position(|&b| matches!(b, b'\n' | b'\r' | 0x0b | 0x0c | 0xc2 | 0xe2))
    {
        let brk = i + at;
        let len = line_break_len(bytes, brk);
        if len == 0 {
            i = brk + 1;
            continue;
        }
        let mut start = brk;
        while start > 0 && matches!(bytes[start - 1], b' ' | b'\t') {
            start -= 1;
        }
        let Some(end) = wrap_gap_end(bytes, start) else {
            i = brk + len;
            continue;
        };
        i = end;
        // Both neighbours are ASCII, so `start` and `end` are character boundaries.
        joined.push_str(&text[copied..start]);
        origin.extend(copied..start);
        copied = end;
    }
    if copied == 0 {
        return spans;
    }
    joined.push_str(&text[copied..]);
    origin.extend(copied..bytes.len());
    let found = find(&joined);
    if found.is_empty() {
        return spans;
    }
    let mut spans = spans;
    for span in found {
        let first = origin[span.start];
        let mut end = origin[span.end - 1] + 1;
        while !text.is_char_boundary(end) {
            end += 1;
        }
        spans.push(first..end);
    }
    merge(spans)
}

/// The length in bytes of the line break at `bytes[i]`, 0 if there is none: a line feed, a
/// carriage return, a vertical tab, a form feed (`char::is_whitespace` and Unicode's line
/// breaks), NEL (U+0085), or the line or paragraph separator (U+2028, U+2029).
fn line_break_len(bytes: &[u8], i: usize) -> usize {
    match bytes[i] {
        b'\n' | b'\r' | 0x0b | 0x0c => 1,
        0xc2 if bytes.get(i + 1) == Some(&0x85) => 2,
        0xe2 if bytes.get(i + 1) == Some(&0x80)
            && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) =>
        {
            3
        }
        _ => 0,
    }
}

/// The start of the stretch of spaces, tabs and line breaks ([`line_break_len`]) that ends at
/// `at` (`at` itself when there is none).
pub(super) fn gap_start(bytes: &[u8], at: usize) -> usize {
    let mut i = at;
    loop {
        if i > 0 && matches!(bytes[i - 1], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            i -= 1;
        } else if i >= 2 && line_break_len(bytes, i - 2) == 2 {
            i -= 2;
        } else if i >= 3 && line_break_len(bytes, i - 3) == 3 {
            i -= 3;
        } else {
            return i;
        }
    }
}

/// Where a wrapped key's gap starting at `at` ends: the gap is spaces, tabs and at least one
/// line break ([`line_break_len`]), between a byte before `at` and a byte after the gap that
/// a key can hold (a key character, a dot, or base64). `None` when the bytes at `at` are no
/// such gap. A message cut ([`super::message_source`]) does not fall inside one either.
pub(super) fn wrap_gap_end(bytes: &[u8], at: usize) -> Option<usize> {
    let joinable = |b: u8| BYTE_CLASS[b as usize] & (RUN | BASE64) != 0;
    if at == 0 || !joinable(bytes[at - 1]) {
        return None;
    }
    let mut i = at;
    let mut broken = false;
    while i < bytes.len() {
        if matches!(bytes[i], b' ' | b'\t') {
            i += 1;
            continue;
        }
        let len = line_break_len(bytes, i);
        if len == 0 {
            break;
        }
        broken = true;
        i += len;
    }
    (broken && i < bytes.len() && joinable(bytes[i]) && !starts_value_field(&bytes[i..]))
        .then_some(i)
}

/// Whether a line starts with the value field of a name and value pair in YAML (`value:`
/// and a space, a tab or the line's end; see [`pair_names_a_secret`]). Such a line is not
/// the rest of a key wrapped from the line before, and joining it to the name before it
/// would hide the pair.
fn starts_value_field(bytes: &[u8]) -> bool {
    starts_with_ci(bytes, b"value:")
        && bytes
            .get(6)
            .is_none_or(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// One stage of normalisation.
#[derive(Clone, Copy, PartialEq)]
enum Step {
    /// Decode `%XX`, one level.
    Percent,
    /// Decode `\\uXXXX`, `\\xXX` and the one-letter escapes, one level.
    Unescape,
    /// Drop invisible characters and read wide forms as ASCII (see [`fold_char`]).
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
    // Single spaces only: no other ASCII whitespace and no double space (one branch-free
    // pass over at most MAX_MESSAGE_CHARS bytes), and no other whitespace outside ASCII.
    let (mut other_space, mut double_space, mut after_space) = (false, false, false);
    for &b in bytes {
        let space = b == b' ';
        double_space |= space & after_space;
        after_space = space;
        other_space |= matches!(b, b'\t'..=b'\r');
    }
    if other_space || double_space {
        return false;
    }
    text.is_ascii() || !text.chars().any(|c| c.is_whitespace() && c != ' ')
}

/// [`is_tidy`] of the text that `seen` was noted from by `find_secrets_noting` (which saw
/// every whitespace byte, none being a key character nor a dot).
fn is_tidy_noted(text: &str, seen: &Seen) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() > MAX_MESSAGE_CHARS || seen.untidy_space {
        return false;
    }
    if bytes.first() == Some(&b' ') || bytes.last() == Some(&b' ') {
        return false;
    }
    seen.classes & HIGH == 0 || !text.chars().any(|c| c.is_whitespace() && c != ' ')
}

/// Byte classes, one table load per byte: key characters, key characters and dots (the
/// runs searched for keys), ASCII whitespace, and standard base64; and the bytes whose
/// presence decides whether a later pass has anything to do: `+` and `/` (long base64
/// runs), `%` and `\\` (decoding), `=` and `:` (parameters), bytes outside ASCII and ASCII
/// controls other than whitespace.
const KEY: u8 = 1;
const RUN: u8 = 2;
const SPACE: u8 = 4;
const BASE64: u8 = 8;
const PLUS_SLASH: u8 = 16;
const ESCAPE: u8 = 32;
const SEPARATOR: u8 = 64;
const HIGH: u8 = 128;
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
        if base64_byte(byte) {
            table[b] |= BASE64;
        }
        table[b] |= match byte {
            b'+' | b'/' => PLUS_SLASH,
            // `&` starts an HTML character reference (`&#45;`, `&colon;`).
            b'%' | b'\\' | b'&' => ESCAPE,
            b'=' | b':' => SEPARATOR,
            // Outside ASCII, or an ASCII control that is not whitespace (invisible: see
            // `is_invisible`).
            0x80.. | 0x00..=0x08 | 0x0e..=0x1f | 0x7f => HIGH,
            _ => 0,
        };
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

/// Characters that render as nothing (or not at all) and can hide inside a key: control
/// characters other than whitespace (C0 but tab and line breaks, DEL, C1 but NEL); the soft
/// hyphen, the combining grapheme joiner, zero-width spaces and joiners, direction marks and
/// overrides, word joiners and invisible operators, the byte-order mark, interlinear
/// annotation marks; variation selectors (U+FE00–U+FE0F, U+E0100–U+E01EF), Mongolian free
/// variation selectors and vowel separator, Khmer inherent vowels, Hangul fillers, musical
/// formatting marks, shorthand format controls and tag characters.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{8}'
            | '\u{e}'..='\u{1f}'
            | '\u{7f}'..='\u{84}'
            | '\u{86}'..='\u{9f}'
            | '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e007f}'
            | '\u{e0100}'..='\u{e01ef}'
    )
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

/// The escape at the start of `bytes` (a backslash) when it is a brace escape (`\u{41}`:
/// one to six hex digits, as in Rust, JavaScript and Swift) or a three-digit octal escape
/// of an ASCII byte (`\101`, as in C, Python and shells), decoded, with its length.
pub(super) fn brace_or_octal(bytes: &[u8]) -> Option<(Decoded, usize)> {
    match bytes.get(1..)? {
        [b'u' | b'U', b'{', rest @ ..] => {
            let digits = rest
                .iter()
                .take(7)
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            if digits == 0 || digits > 6 || rest.get(digits) != Some(&b'}') {
                return None;
            }
            let value = hex_at(rest, digits)?;
            Some((Decoded::Char(char::from_u32(value)?), 3 + digits + 1))
        }
        [a @ b'0'..=b'1', b @ b'0'..=b'7', c @ b'0'..=b'7', ..] => {
            let value = (a - b'0') * 64 + (b - b'0') * 8 + (c - b'0');
            Some((Decoded::Byte(value), 4))
        }
        _ => None,
    }
}

/// The HTML character reference at the start of `bytes` (a `&`), decoded, with its
/// length: a decimal or hex one (`&#45;`, `&#x2D;`) of any character, or a named one for
/// ASCII punctuation, the no-break space, the tab or the line feed (`&colon;`, `&equals;`,
/// `&lowbar;`, `&sol;`, `&amp;`). The closing `;` is required.
pub(super) fn entity_at(bytes: &[u8]) -> Option<(char, usize)> {
    let end = bytes.iter().take(12).position(|&b| b == b';')?;
    let body = bytes.get(1..end)?;
    let c = if let Some(number) = body.strip_prefix(b"#") {
        let (digits, radix) = match number {
            [b'x' | b'X', hex @ ..] => (hex, 16),
            _ => (number, 10),
        };
        if digits.is_empty() || digits.len() > 7 {
            return None;
        }
        let value = digits.iter().try_fold(0u32, |acc, &d| {
            Some(acc * radix + (d as char).to_digit(radix)?)
        })?;
        char::from_u32(value)?
    } else {
        match body {
            b"lt" => '<',
            b"gt" => '>',
            b"amp" => '&',
            b"quot" => '"',
            b"apos" => '\'',
            b"sol" => '/',
            b"bsol" => '\\',
            b"colon" => ':',
            b"semi" => ';',
            b"equals" => '=',
            b"period" => '.',
            b"comma" => ',',
            b"lowbar" => '_',
            b"UnderBar" => '_',
            b"plus" => '+',
            b"percnt" => '%',
            b"num" => '#',
            b"commat" => '@',
            b"quest" => '?',
            b"excl" => '!',
            b"ast" => '*',
            b"nbsp" => '\u{a0}',
            b"Tab" => '\t',
            b"NewLine" => '\n',
            _ => return None,
        }
    };
    Some((c, end + 1))
}

/// What one escape or `%XX` sequence decodes to.
pub(super) enum Decoded {
    /// A whole character.
    Char(char),
    /// One ASCII byte.
    Byte(u8),
}

/// The sequence starting at `bytes[i]` (a `%` for [`Step::Percent`], a backslash or a `&`
/// for [`Step::Unescape`]) decoded, with the number of bytes it takes; `None` when it is not
/// one that the step decodes.
fn decode_at(bytes: &[u8], i: usize, step: Step) -> Option<(Decoded, usize)> {
    if step == Step::Percent {
        return percent_char(&bytes[i..]).map(|(c, n)| (Decoded::Char(c), n));
    }
    if bytes[i] == b'&' {
        return entity_at(&bytes[i..]).map(|(c, n)| (Decoded::Char(c), n));
    }
    let next = *bytes.get(i + 1)?;
    if let Some((c, n)) = brace_or_octal(&bytes[i..]) {
        return Some((c, n));
    }
    match next {
        b'u' | b'U' => hex_at(&bytes[i + 2..], 4).map(|unit| {
            if !(0xd800..0xdc00).contains(&unit) {
                let c = char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER);
                return (Decoded::Char(c), 6);
            }
            // A high surrogate: join it with the low one after it.
            let low = bytes
                .get(i + 6..i + 8)
                .filter(|p| p[0] == b'\\' && matches!(p[1], b'u' | b'U'))
                .and_then(|_| hex_at(&bytes[i + 8..], 4))
                .filter(|low| (0xdc00..0xe000).contains(low));
            match low {
                Some(low) => (
                    Decoded::Char(
                        char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))
                            .unwrap_or(char::REPLACEMENT_CHARACTER),
                    ),
                    12,
                ),
                None => (Decoded::Char(char::REPLACEMENT_CHARACTER), 6),
            }
        }),
        b'x' | b'X' => hex_at(&bytes[i + 2..], 2)
            .filter(|v| *v < 0x80)
            .map(|v| (Decoded::Byte(v as u8), 4)),
        // An escaped line break stays a line break (shown as a space, like any whitespace),
        // so that a key wrapped across escaped lines is still joined (`with_wrapped`).
        b'n' | b'r' => Some((Decoded::Byte(b'\n'), 2)),
        b't' | b'f' | b'b' => Some((Decoded::Byte(b' '), 2)),
        b'"' | b'\'' | b'/' | b'\\' => Some((Decoded::Byte(next), 2)),
        _ => None,
    }
}

/// One stage of normalisation: one round of percent-decoding, or of unescaping
/// (`\uXXXX` with surrogate pairs joined, `\u{…}`, `\xXX`, three-digit octal, the
/// one-letter escapes and HTML character references), or folding (see [`fold_char`]). Undecodable sequences, and encoded bytes that do not form UTF-8,
/// are kept as they are. Returns the text after the stage and, for each of its bytes, the
/// byte of `text` it came from; `None` when the stage changes nothing (every sequence it
/// decodes is shorter than its encoding, so a stage that decodes one always changes the
/// text).
fn decode_step(text: &str, step: Step) -> Option<(String, Vec<usize>)> {
    let bytes = text.as_bytes();
    let (lead, other) = match step {
        Step::Fold => return fold(text),
        Step::Percent => (b'%', b'%'),
        Step::Unescape => (b'\\', b'&'),
    };
    // Allocated at the first sequence the stage decodes: most texts hold none.
    let mut out: Vec<u8> = Vec::new();
    let mut from: Vec<usize> = Vec::new();
    let mut decoded_any = false;
    // Bytes before `copied` are in `out`; a lead inside a decoded sequence is skipped.
    let mut copied = 0;
    for i in memchr::memchr2_iter(lead, other, bytes) {
        if i < copied {
            continue;
        }
        let Some((decoded, consumed)) = decode_at(bytes, i, step) else {
            continue;
        };
        if !decoded_any {
            decoded_any = true;
            out.reserve(bytes.len());
            from.reserve(bytes.len());
        }
        out.extend_from_slice(&bytes[copied..i]);
        from.extend(copied..i);
        match decoded {
            Decoded::Char(c) => {
                let mut buf = [0u8; 4];
                let encoded = c.encode_utf8(&mut buf).as_bytes();
                out.extend_from_slice(encoded);
                from.extend(std::iter::repeat_n(i, encoded.len()));
            }
            Decoded::Byte(b) => {
                out.push(b);
                from.push(i);
            }
        }
        copied = i + consumed;
    }
    if !decoded_any {
        return None;
    }
    out.extend_from_slice(&bytes[copied..]);
    from.extend(copied..bytes.len());
    // Sequences start and end on ASCII bytes and decode to whole characters or ASCII
    // bytes, so the result is UTF-8; should it ever not be, the bad bytes become U+FFFD.
    match String::from_utf8(out) {
        Ok(decoded) => Some((decoded, from)),
        Err(e) => Some(replace_invalid(&e.into_bytes(), &from)),
    }
}

/// `text` folded by [`fold_char`], with the origin of each byte; `None` if folding changes
/// nothing.
fn fold(text: &str) -> Option<(String, Vec<usize>)> {
    if !text.chars().any(folds) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if let Some(folded) = fold_char(c) {
            out.push(folded);
            origin.extend(std::iter::repeat_n(i, folded.len_utf8()));
        }
    }
    Some((out, origin))
}

/// Whether [`fold_char`] drops or changes `c`.
fn folds(c: char) -> bool {
    fold_char(c) != Some(c)
}

/// What `c` is read as: `None` for an invisible character ([`is_invisible`]); the ASCII
/// character for a full-width form (U+FF01–U+FF5E, as in `ｓｋ－ｐｒｏｊ` or the `：` and `＝`
/// of CJK text), a small form (U+FE50–U+FE6B: `﹕`, `﹦`) or a dashed or wavy low line
/// (U+FE4D–U+FE4F); a space for the ideographic space (U+3000). These are Unicode's own
/// compatibility mappings (NFKC) for the characters a key, a parameter name or a separator
/// could be written with; every other character is itself.
pub fn fold_char(c: char) -> Option<char> {
    // NFKC of U+FE50–U+FE6B; 0 where it is not ASCII (`﹑`, `﹘`, `﹝`, `﹞`) or unassigned.
    const SMALL: &[u8; 28] = b",\0.\0;:?!\0(){}\0\0#&*+-<>=\0\\$%@";
    match c {
        _ if is_invisible(c) => None,
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0),
        '\u{3000}' => Some(' '),
        '\u{fe4d}'..='\u{fe4f}' => Some('_'),
        '\u{fe50}'..='\u{fe6b}' => match SMALL[(c as u32 - 0xfe50) as usize] {
            0 => Some(c),
            b => Some(b as char),
        },
        _ => Some(c),
    }
}

/// `bytes` as text, each invalid sequence replaced by U+FFFD, with the origin of each byte
/// of the result taken from `from` (the origin of each byte of `bytes`).
fn replace_invalid(bytes: &[u8], from: &[usize]) -> (String, Vec<usize>) {
    let mut text = String::with_capacity(bytes.len());
    let mut origin = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        origin.extend_from_slice(&from[at..at + chunk.valid().len()]);
        at += chunk.valid().len();
        if !chunk.invalid().is_empty() {
            text.push(char::REPLACEMENT_CHARACTER);
            origin.extend(std::iter::repeat_n(from[at], '\u{fffd}'.len_utf8()));
            at += chunk.invalid().len();
        }
    }
    (text, origin)
}

// ---------------------------------------------------------------------------------------
// Detection
// ---------------------------------------------------------------------------------------

/// A key character: what API keys are made of (`*` included for masked keys).
#[cfg(test)]
fn is_key_byte(b: u8) -> bool {
    BYTE_CLASS[b as usize] & KEY != 0
}

/// A character of standard base64 (AWS secret access keys): one table load.
fn is_base64_byte(b: u8) -> bool {
    BYTE_CLASS[b as usize] & BASE64 != 0
}

/// A character of standard base64, as [`BYTE_CLASS`] is built from.
const fn base64_byte(b: u8) -> bool {
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
    find_secrets_noting(text).0
}

/// What the first pass of `find_secrets_noting` saw of a text besides its secrets.
struct Seen {
    /// The union of the classes in [`BYTE_CLASS`] of the bytes that are not key characters
    /// (so that the caller knows, for one, whether the text holds a `%` or a `\\`; none of
    /// the bytes noted as `PLUS_SLASH`, `ESCAPE`, `SEPARATOR` or `HIGH` is a key character,
    /// a test checks it).
    classes: u8,
    /// An ASCII whitespace byte other than the space, or two spaces in a row.
    untidy_space: bool,
    /// Some run of key characters and dots ends with `bearer` or `basic`, in any case.
    scheme_word: bool,
    /// Some run ends with a name of [`SECRET_PARAMS`] or with `provided`, in any case.
    param_word: bool,
    /// Some run ends with `-----BEGIN`, in any case: a PEM block may start there.
    pem_begin: bool,
    /// Some run starts with `-` and more: a command-line flag may be there.
    flag_word: bool,
}

/// [`find_secrets`], and what the same pass saw of `text` (see [`Seen`]).
fn find_secrets_noting(text: &str) -> (Vec<Range<usize>>, Seen) {
    let bytes = text.as_bytes();
    let mut spans: Vec<Range<usize>> = Vec::new();
    let mut aws_id_seen = false;
    let mut long_base64: Vec<Range<usize>> = Vec::new();

    // Runs of key characters and dots: prefixed keys, AWS ids, JWTs and opaque tokens. Every
    // byte outside a run is looked at here, and its class noted in `seen`: `+`, `/`, `%`,
    // `\\`, `=`, `:`, whitespace and bytes outside ASCII are never in a run (they are not
    // key characters nor dots). The end of each run is checked for the lead words of
    // `scan_context`.
    let mut seen = Seen {
        classes: 0,
        untidy_space: false,
        scheme_word: false,
        param_word: false,
        pem_begin: false,
        flag_word: false,
    };
    // Where the current stretch without whitespace starts, and the longest such stretch
    // (a long base64 run lies inside one).
    let mut word_start = 0;
    let mut longest_word = 0;
    let mut i = 0;
    while i < bytes.len() {
        let class = BYTE_CLASS[bytes[i] as usize];
        if class & KEY == 0 {
            seen.classes |= class;
            if class & SPACE != 0 {
                // `word_start == i`: at the start, or right after another whitespace byte.
                seen.untidy_space |= bytes[i] != b' ' || word_start == i;
                longest_word = longest_word.max(i - word_start);
                word_start = i + 1;
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && BYTE_CLASS[bytes[i] as usize] & RUN != 0 {
            i += 1;
        }
        note_lead_word(&bytes[start..i], &mut seen);
        scan_key_run(bytes, start, i, &mut spans, &mut aws_id_seen);
        spans.extend(credential_behind_a_name(bytes, start, i));
    }

    // Long base64 runs: beside an AWS key id, any of them (the secret access key); without
    // one, those that carry a `+` or `/` and mix capitals, small letters and digits (an AWS
    // session token, a base64 secret), which the opaque-token rule misses because `+` and
    // `/` break its runs. Either is at least LONG_BASE64 bytes long and holds no whitespace,
    // so when no stretch between whitespace is that long, there is none.
    longest_word = longest_word.max(bytes.len() - word_start);
    if longest_word >= LONG_BASE64 && (aws_id_seen || seen.classes & PLUS_SLASH != 0) {
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

    scan_context(text, &seen, &mut spans);

    (merge(spans), seen)
}

/// Notes in `seen` whether `run` ends with a word that `scan_context` looks for: `bearer`
/// or `basic` (a scheme is found only where a separator follows it, and no separator is a
/// key character nor a dot, so the run holding the scheme ends with it), or a secret
/// parameter's name or `provided` (the end of `key provided`), likewise followed by a
/// quote, a space, a `=` or a `:`; and whether it starts like a command-line flag.
fn note_lead_word(run: &[u8], seen: &mut Seen) {
    // A name in Markdown emphasis (`**api_key**:`) ends its run with the asterisks.
    let name_end = run.len() - run.iter().rev().take_while(|&&b| b == b'*').count();
    let run = &run[..name_end];
    if run.is_empty() {
        return;
    }
    // A command-line flag (`--api-key`) starts its run with its dashes.
    seen.flag_word |= run.len() > 1 && run[0] == b'-';
    note_words(run, seen);
}

/// The lead words `run` ends with (see [`note_lead_word`]).
fn note_words(run: &[u8], seen: &mut Seen) {
    match run[run.len() - 1] | 0x20 {
        b'r' => seen.scheme_word |= ends_with_ci(run, b"bearer"),
        b'c' => seen.scheme_word |= ends_with_ci(run, b"basic"),
        b'n' => seen.pem_begin |= ends_with_ci(run, b"-----begin"),
        b'd' => seen.param_word |= ends_with_ci(run, b"provided"),
        _ => {}
    }
    seen.param_word |= ends_with_param(run);
}

/// Whether `name` ends with one of [`SECRET_PARAMS`], in any case: the candidates are
/// picked by its last byte (a test checks this against the list).
#[inline]
fn ends_with_param(name: &[u8]) -> bool {
    let Some(&last) = name.last() else {
        return false;
    };
    let e = |word: &[u8]| ends_with_ci(name, word);
    match last | 0x20 {
        b'y' => e(b"key"),
        b'n' => e(b"token") || e(b"authorization") || e(b"session"),
        b'h' => e(b"auth"),
        b'g' => e(b"sig"),
        b't' => e(b"secret"),
        b'd' => {
            e(b"password")
                || e(b"passwd")
                || e(b"pwd")
                || e(b"sid")
                || e(b"sessionid")
                || e(b"session_id")
        }
        b'e' => e(b"signature") || e(b"cookie") || e(b"passphrase"),
        b'l' => e(b"credential"),
        _ => false,
    }
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
    // The shortest key is a three-byte prefix and MIN_TAIL characters, and the shortest
    // opaque token is 20 characters: most words are shorter.
    if end - start < 20.min(3 + MIN_TAIL) {
        return;
    }
    if let Some(token) = telegram_token(bytes, start, end) {
        spans.push(token);
    }
    // Every rule needs a digit or a capital letter in the run: an AWS id and a JWT's prefix
    // hold one, a prefixed key's tail and an opaque token must.
    let Some(run_last_varied) = bytes[start..end]
        .iter()
        .rposition(is_varied)
        .map(|p| Some(start + p))
    else {
        return;
    };
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

/// How long a value of no known shape must be for the words before it to mark it as a
/// secret ([`credential_behind_a_name`]).
const MIN_NAMED: usize = 16;

/// A secret of no known shape that the words before it mark, where no `=` or `:` of a
/// parameter's does (`your key X is invalid`, `X-API-KEY X`, `API_KEY_FOR_GROQ=X`,
/// `api_key -> X`, `the password for bob is X`, `mysql -p X`, `-pX`): the run of key
/// characters and dots `bytes[start..end]` looks like a credential
/// ([`looks_like_credential`]), and one of the four words before it in its sentence holds
/// a secret's name ([`holds_a_secret_word`], [`named_before`]), or it is the value of a
/// pair written value first whose name is a secret's ([`named_after_its_pair`]).
/// Values that look like words, model names or key labels are left alone: a credential
/// mixes capitals, small letters and digits, or is a long hexadecimal string.
pub(super) fn credential_behind_a_name(
    bytes: &[u8],
    start: usize,
    end: usize,
) -> Option<Range<usize>> {
    if end - start < MIN_NAMED {
        return None;
    }
    let (start, end) = trim_dots(bytes, start, end);
    let value = &bytes[start..end];
    // `mysql -pSECRET`: the flag glued to its value.
    if value.starts_with(b"-p") && looks_like_credential(&value[2..]) {
        return Some(start + 2..end);
    }
    (looks_like_credential(value)
        && (named_before(bytes, start) || named_after_its_pair(bytes, start, end)))
    .then_some(start..end)
}

/// Whether `bytes[start..end]` is the value of a name and value pair written value first,
/// whose name follows and holds a secret's name (`{"value":"X","name":"x-api-key"}`): the
/// word before the value is `value`, and the next field after it is a `name` or `key`
/// whose own value holds a secret's name ([`holds_a_secret_word`]).
fn named_after_its_pair(bytes: &[u8], start: usize, end: usize) -> bool {
    let separators = |b: u8| matches!(b, b' ' | b'\t' | b'"' | b'\'' | b':' | b'=' | b',');
    let word_back = {
        let mut at = start;
        while at > 0 && start - at < 8 && separators(bytes[at - 1]) {
            at -= 1;
        }
        let word_end = at;
        while at > 0 && word_end - at < 6 && bytes[at - 1].is_ascii_alphabetic() {
            at -= 1;
        }
        &bytes[at..word_end]
    };
    if !word_back.eq_ignore_ascii_case(b"value") {
        return false;
    }
    // The words after the value: the field's name, then its value.
    let mut at = end;
    let mut next_word = || {
        while at < bytes.len() && at - end < 64 && separators(bytes[at]) {
            at += 1;
        }
        let word_start = at;
        while at < bytes.len()
            && at - word_start <= 64
            && (bytes[at].is_ascii_alphanumeric() || matches!(bytes[at], b'_' | b'-' | b'.'))
        {
            at += 1;
        }
        &bytes[word_start..at]
    };
    let field = next_word();
    (field.eq_ignore_ascii_case(b"name") || field.eq_ignore_ascii_case(b"key")) && {
        let name = next_word();
        name.len() <= 64 && holds_a_secret_word(name)
    }
}

/// `start..end` without the dots at either end (a sentence's full stop).
fn trim_dots(bytes: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    while start < end && bytes[start] == b'.' {
        start += 1;
    }
    while end > start && bytes[end - 1] == b'.' {
        end -= 1;
    }
    (start, end)
}

/// At least [`MIN_NAMED`] key characters and dots that mix capitals, small letters and
/// digits with at least three turns between them inside a word (a small letter then a
/// capital, a letter then a digit or a digit then a letter), or at least 24 hexadecimal
/// digits and dashes mixing letters and digits (an Azure key, a UUID). A model id mixes
/// all three too, but its parts are words and numbers: `Meta-Llama-3.1-70B-Instruct` turns
/// once (`0B`), `Qwen2.5-72B-Instruct` twice; a random key of 16 characters turns about 7
/// times.
fn looks_like_credential(value: &[u8]) -> bool {
    if value.len() < MIN_NAMED {
        return false;
    }
    // One pass, stopping as soon as a mixed credential is certain: the kinds seen (bit 1 a
    // capital, 2 a small letter, 4 a digit), the turns, and whether all is hexadecimal.
    let kind = |b: u8| match b {
        b'A'..=b'Z' => 1u8,
        b'a'..=b'z' => 2,
        b'0'..=b'9' => 4,
        _ => 0,
    };
    let (mut seen, mut turns, mut hex) = (0u8, 0, true);
    let mut prev = 0u8;
    for &b in value {
        let k = kind(b);
        seen |= k;
        hex &= b.is_ascii_hexdigit() || b == b'-';
        // A letter then a digit, a digit then a letter, a small letter then a capital.
        turns += usize::from(matches!((prev, k), (1 | 2, 4) | (4, 1 | 2) | (2, 1)));
        if seen == 7 && turns >= 3 {
            return true;
        }
        prev = k;
    }
    seen & 4 != 0 && seen & 3 != 0 && hex && value.len() >= 24
}

/// Whether a word holding a secret's name stands before `bytes[at]`, at most
/// [`NAMED_WITHIN`] words back in the same sentence (`the password for bob is X`), past
/// spaces, quotes (curly ones and guillemets too), opening brackets, commas, `=`, `:` and
/// arrows between the words.
fn named_before(bytes: &[u8], mut at: usize) -> bool {
    for _ in 0..NAMED_WITHIN {
        let mut skipped = 0;
        while at > 0 && skipped < 16 {
            match bytes[at - 1] {
                b' ' | b'\t' | b'"' | b'\'' | b'`' | b'=' | b':' | b'(' | b'[' | b'{' | b',' => {}
                b'>' if at >= 2 && matches!(bytes[at - 2], b'-' | b'=') => at -= 1,
                // Curly quotes and guillemets: “ ” ‘ ’ « ».
                0x9c | 0x9d | 0x98 | 0x99 if at >= 3 && bytes[at - 3..at - 1] == [0xe2, 0x80] => {
                    at -= 2
                }
                0xab | 0xbb if at >= 2 && bytes[at - 2] == 0xc2 => at -= 1,
                _ => break,
            }
            at -= 1;
            skipped += 1;
        }
        let word_end = at;
        while at > 0
            && word_end - at <= 64
            && (bytes[at - 1].is_ascii_alphanumeric()
                || matches!(bytes[at - 1], b'_' | b'-' | b'.'))
        {
            at -= 1;
        }
        let word = &bytes[at..word_end];
        if word.is_empty() || word.len() > 64 {
            return false;
        }
        if holds_a_secret_word(word) {
            return true;
        }
        // A full stop ends the sentence before the value's.
        if word.ends_with(b".") {
            return false;
        }
    }
    false
}

/// How many words back from a credential-like value a secret's name may stand
/// ([`named_before`]).
const NAMED_WITHIN: usize = 4;

/// Whether `word` holds a secret's name anywhere, in any case (`API_KEY_FOR_GROQ`,
/// `X-API-KEY`, `apikey`, `secret_access_key`, `passphrase`, `Basic`), or is `pw` (alone or
/// as a part: `db_pw`) or the flag `-p`. A word longer than 64 bytes is no name.
fn holds_a_secret_word(word: &[u8]) -> bool {
    const WORDS: [&[u8]; 12] = [
        b"key",
        b"token",
        b"secret",
        b"pass",
        b"pwd",
        b"credential",
        b"auth",
        b"bearer",
        b"basic",
        b"signature",
        b"cookie",
        b"session",
    ];
    let mut lower = [0u8; 64];
    let Some(lower) = lower.get_mut(..word.len()) else {
        return false;
    };
    for (l, b) in lower.iter_mut().zip(word) {
        *l = b.to_ascii_lowercase();
    }
    WORDS
        .iter()
        .any(|w| memchr::memmem::find(lower, w).is_some())
        || word == b"-p"
        || lower
            .split(|b| matches!(b, b'_' | b'-' | b'.'))
            .any(|part| part == b"pw")
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
        b'S' if is_sendgrid_key(&bytes[at..]) => return Some(tails.run_end),
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

/// Whether `bytes` start with a SendGrid key's shape: `SG.`, 22 URL-safe characters, `.`,
/// 43 URL-safe characters, with a digit or a capital among the characters.
pub(super) fn is_sendgrid_key(bytes: &[u8]) -> bool {
    let url_safe = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_');
    bytes.len() >= 69
        && bytes.starts_with(b"SG.")
        && bytes[3..25].iter().all(url_safe)
        && bytes[25] == b'.'
        && bytes[26..69].iter().all(url_safe)
        && bytes[3..69]
            .iter()
            .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
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
///
/// `seen` holds the byte classes of `text` outside runs of key characters and dots and
/// whether a run ends with a lead word (see `find_secrets_noting`): without a `=` or `:`
/// and a run ending with a parameter's name, the parameter pass would find nothing and is
/// skipped; without a run ending with `bearer` or `basic`, so would the scheme pass.
fn scan_context(text: &str, seen: &Seen, spans: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    // In each pass, `covered` is the end of the last value found: a value that would start
    // inside it ends where it ends, so it is not scanned again, which keeps both passes
    // linear. A lead word inside a value is still looked at (the value after
    // `key provided:` may be `Basic`, whose credential the other pass finds).
    let mut covered = 0;
    // A name that ends with a secret's name is a lead word the first pass noted; one with a
    // suffix or a plural after it (`API_KEY_PROD`, `api_keys`) is not, so every `=` and `:`
    // is looked at (a message holds few).
    let separators =
        (seen.classes & SEPARATOR != 0).then(|| memchr::memchr2_iter(b'=', b':', bytes));
    for sep in separators.into_iter().flatten() {
        if param_name_before(bytes, sep) || pair_names_a_secret(bytes, sep) {
            let found = value_after(text, sep, covered).and_then(|v| past_scheme(text, sep, v));
            if let Some(span) = found {
                covered = span.end;
                spans.push(span);
            }
        }
    }
    // A URL's `://` holds a `:`.
    if seen.classes & SEPARATOR != 0 {
        userinfo(text, spans);
    }
    // A tag or a command-line flag named like a secret: a tag needs a `<`; a flag a run of
    // key characters that starts with `-`, or a `-` after a `-`, `.` or `*` inside one
    // (`a--api-key-prod`, `x.-api-key-prod`); and a name without a suffix ends its run.
    if seen.param_word || memchr::memchr(b'<', bytes).is_some() {
        markup_values(text, spans);
    }
    let dash_inside_a_run = || {
        memchr::memchr_iter(b'-', bytes)
            .any(|p| p > 0 && matches!(bytes[p - 1], b'-' | b'.' | b'*'))
    };
    if seen.param_word || seen.flag_word || dash_inside_a_run() {
        flag_values(text, spans);
    }
    if seen.pem_begin {
        pem_private_keys(text, spans);
    }
    // `curl -u user:password` holds a `:`.
    if seen.classes & SEPARATOR != 0 {
        user_flag_values(text, spans);
    }
    let mut covered = 0;
    let schemes = seen
        .scheme_word
        .then(|| memchr::memchr2_iter(b'b', b'B', bytes));
    for at in schemes.into_iter().flatten() {
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
    ends_with_ci(before, b"key provided") || names_a_secret(before)
}

/// Whether `name` ends with one of [`SECRET_PARAMS`], in any case, once what may follow a
/// secret's name is taken off ([`without_suffix`]: `OPENAI_API_KEY_PROD`, `api_keys`).
pub(super) fn names_a_secret(name: &[u8]) -> bool {
    let name = without_suffix(name);
    ends_with_param(name) || ends_with_short_name(name)
}

/// Whether `name` ends with `pass` or `pw` as a word of its own, in any case (`pass`,
/// `db_pass`, `DB-PW`, `dbPass`): a longer word that ends so (`bypass`, `compass`) is no
/// secret's name.
pub(super) fn ends_with_short_name(name: &[u8]) -> bool {
    [b"pass".as_slice(), b"pw"].iter().any(|word| {
        ends_with_ci(name, word) && {
            let at = name.len() - word.len();
            at == 0
                || !name[at - 1].is_ascii_alphabetic()
                || (name[at - 1].is_ascii_lowercase() && name[at].is_ascii_uppercase())
        }
    })
}

/// Whether `word` (at most 12 bytes) is one that may follow a secret's name in the name of
/// a variable or a setting without changing what it holds (`OPENAI_API_KEY_PROD`,
/// `apiKeyBackup`, `secret_value`, `SECRET_KEY_BASE`), in any case. (`base64` is `base`
/// after its digits are taken off.)
fn is_name_suffix(word: &[u8]) -> bool {
    let mut lower = [0u8; 12];
    let Some(lower) = lower.get_mut(..word.len()) else {
        return false;
    };
    for (l, b) in lower.iter_mut().zip(word) {
        *l = b.to_ascii_lowercase();
    }
    matches!(
        &*lower,
        b"prod"
            | b"production"
            | b"dev"
            | b"development"
            | b"test"
            | b"testing"
            | b"stage"
            | b"staging"
            | b"live"
            | b"sandbox"
            | b"old"
            | b"new"
            | b"backup"
            | b"primary"
            | b"secondary"
            | b"main"
            | b"alt"
            | b"default"
            | b"local"
            | b"current"
            | b"next"
            | b"prev"
            | b"previous"
            | b"value"
            | b"encoded"
            | b"raw"
            | b"hex"
            | b"base"
    )
}

/// `name` without what may follow a secret's name in it: up to two suffixes, each a run of
/// digits (`KEY2`, `api-key-2`, a version `_v2`) or a word of [`is_name_suffix`] after `_`,
/// `-`, `.` or where the case turns (`apiKeyProd`, `API_KEYBackup`), then the plural `s` of
/// a name of a key, secret, password, passphrase, credential, signature or cookie
/// (`api_keys`, `credentials`; not `tokens`, which counts tokens, as in `max_tokens`).
pub(super) fn without_suffix(name: &[u8]) -> &[u8] {
    let mut name = name;
    for _ in 0..2 {
        match without_one_suffix(name) {
            Some(shorter) => name = shorter,
            None => break,
        }
    }
    without_plural(name)
}

/// `name` without its last suffix (see [`without_suffix`]), `None` when it has none.
fn without_one_suffix(name: &[u8]) -> Option<&[u8]> {
    let n = name.len();
    let last = *name.last()?;
    let mut cut = if last.is_ascii_digit() {
        let digits = name.iter().rev().take_while(|b| b.is_ascii_digit()).count();
        let mut cut = n.checked_sub(digits).filter(|&c| c > 0)?;
        // A version (`API_KEY_V2`, `token-v3`).
        if cut >= 2
            && matches!(name[cut - 1], b'v' | b'V')
            && matches!(name[cut - 2], b'_' | b'-' | b'.')
        {
            cut -= 1;
        }
        cut
    } else {
        // The last word: small letters, with the capital that starts it (camel case), or
        // capitals.
        let small = name
            .iter()
            .rev()
            .take(12)
            .take_while(|b| b.is_ascii_lowercase())
            .count();
        let start = if small == 0 {
            n - name
                .iter()
                .rev()
                .take(12)
                .take_while(|b| b.is_ascii_uppercase())
                .count()
        } else if small < n && name[n - small - 1].is_ascii_uppercase() {
            n - small - 1
        } else {
            n - small
        };
        if start == 0 || start == n || !is_name_suffix(&name[start..]) {
            return None;
        }
        let before = name[start - 1];
        let separated = matches!(before, b'_' | b'-' | b'.');
        let camel = name[start].is_ascii_uppercase()
            && (before.is_ascii_lowercase()
                || before.is_ascii_digit()
                || (before.is_ascii_uppercase()
                    && name.get(start + 1).is_some_and(u8::is_ascii_lowercase)));
        if !(separated || camel) {
            return None;
        }
        start
    };
    if cut > 0 && matches!(name[cut - 1], b'_' | b'-' | b'.') {
        cut -= 1;
    }
    Some(&name[..cut])
}

/// `name` without the plural `s` of a secret's name (see [`without_suffix`]).
fn without_plural(name: &[u8]) -> &[u8] {
    let Some((b's' | b'S', stem)) = name.split_last() else {
        return name;
    };
    let plural = match stem.last().map(|b| b | 0x20) {
        Some(b'y') => ends_with_ci(stem, b"key"),
        Some(b't') => ends_with_ci(stem, b"secret"),
        Some(b'd') => ends_with_ci(stem, b"password"),
        Some(b'l') => ends_with_ci(stem, b"credential"),
        Some(b'e') => {
            ends_with_ci(stem, b"passphrase")
                || ends_with_ci(stem, b"signature")
                || ends_with_ci(stem, b"cookie")
        }
        _ => false,
    };
    if plural {
        stem
    } else {
        name
    }
}

/// Whether the separator at `sep` follows a `value` that a secret's name goes with: a
/// name and value pair (`{"name": "x-api-key", "value": "…"}` in a HAR file or a
/// Kubernetes manifest, `{"key": "api_key", "value": …}` in a Postman export), where the
/// name's field (ending in `name` or `key`) and its value come right before `value`.
pub(super) fn pair_names_a_secret(bytes: &[u8], sep: usize) -> bool {
    let skip_back = |mut end: usize, set: &[u8], most: usize| {
        let floor = end.saturating_sub(most);
        while end > floor && set.contains(&bytes[end - 1]) {
            end -= 1;
        }
        end
    };
    let end = skip_back(sep, b" \t\"'`", 8);
    if !ends_with_ci(&bytes[..end], b"value")
        || (end > 5 && bytes[end - 6].is_ascii_alphabetic() && !bytes[end - 5].is_ascii_uppercase())
    {
        return false;
    }
    // Back over the pair's punctuation to the end of the name's value.
    let name_end = skip_back(end - 5, b" \t\r\n\"',;", 64);
    let name_start = name_end
        - bytes[..name_end]
            .iter()
            .rev()
            .take(128)
            .take_while(|&&b| BYTE_CLASS[b as usize] & RUN != 0)
            .count();
    if name_start == name_end || !names_a_secret(&bytes[name_start..name_end]) {
        return false;
    }
    let assigned = skip_back(name_start, b" \t\"'", 8);
    if assigned == 0 || !matches!(bytes[assigned - 1], b':' | b'=') {
        return false;
    }
    let field = &bytes[..skip_back(assigned - 1, b" \t\"'", 8)];
    ends_with_ci(field, b"name") || ends_with_ci(field, b"key")
}

#[inline]
fn ends_with_ci(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len()
        && haystack[haystack.len() - needle.len()..].eq_ignore_ascii_case(needle)
}

/// `span`, the value of the parameter whose `=` or `:` is at `sep`; when the parameter is an
/// `Authorization` header and the value starts with its scheme (`Token`, `Key`, `Digest`: up
/// to 16 ASCII letters, then spaces, tabs, `:` or `=`), the credential after the scheme: the scheme
/// stays readable. `None` when that credential is already redacted.
pub(super) fn past_scheme(text: &str, sep: usize, span: Range<usize>) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut end = sep;
    while end > 0 && matches!(bytes[end - 1], b' ' | b'\t' | b'"' | b'\'') {
        end -= 1;
    }
    let name = b"authorization";
    let is_header = end >= name.len() && bytes[end - name.len()..end].eq_ignore_ascii_case(name);
    // The scheme: the value's leading letters, then a space, tab, `:` or `=`
    // (`Authorization:Bearer:…`) before more.
    let word = bytes[span.clone()]
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let after = span.start + word;
    let separated = after < bytes.len() && matches!(bytes[after], b' ' | b'\t' | b':' | b'=');
    if !is_header || word == 0 || word > 16 || !(separated || after == span.end) {
        return Some(span);
    }
    let mut next = after;
    while next < bytes.len() && matches!(bytes[next], b' ' | b'\t' | b':' | b'=' | b'"' | b'\'') {
        next += 1;
    }
    if next == after {
        return Some(span);
    }
    if text[next..].starts_with(REDACTED) {
        return None;
    }
    Some(value_span(text, next, 0).unwrap_or(span))
}

/// The password of every URL's user information (`https://user:password@host/`): from the
/// first `:` after `://` (with no `/` before it: a user name has none) to the `@` that ends
/// the authority, looked for up to whitespace, a quote or an angle bracket and at most 256
/// bytes after `://`. A password may hold a raw `/` (pasted unencoded); a port followed by a
/// path (`host:8080/a@b`) is not a password.
pub(super) fn userinfo(text: &str, spans: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    for at in memchr::memmem::find_iter(bytes, b"://") {
        let start = at + 3;
        let limit = bytes.len().min(start + 256);
        let Some(len) = bytes[start..limit].iter().position(|b| {
            matches!(
                b,
                b'@' | b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'' | b'<' | b'>'
            )
        }) else {
            continue;
        };
        let mut end = start + len;
        if bytes[end] != b'@' {
            continue;
        }
        // A password may hold a raw `@` (pasted unencoded): the authority ends at the last
        // `@` before the path, query or fragment.
        while let Some(more) = bytes[end + 1..limit].iter().position(|b| {
            matches!(
                b,
                b'@' | b'/'
                    | b'?'
                    | b'#'
                    | b' '
                    | b'\t'
                    | b'\r'
                    | b'\n'
                    | b'"'
                    | b'\''
                    | b'<'
                    | b'>'
            )
        }) {
            if bytes[end + 1 + more] != b'@' {
                break;
            }
            end += 1 + more;
        }
        let Some(colon) = bytes[start..end]
            .iter()
            .position(|&b| b == b':' || b == b'/')
        else {
            continue;
        };
        let colon = start + colon;
        if bytes[colon] != b':' || colon + 1 == end {
            continue;
        }
        let password = &bytes[colon + 1..end];
        // Already redacted (redaction stays idempotent).
        if password == REDACTED.as_bytes() {
            continue;
        }
        let digits = password.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 && password.get(digits) == Some(&b'/') {
            continue;
        }
        spans.push(colon + 1..end);
    }
}

/// The text of every element named by a secret parameter (`<ApiKey>…</ApiKey>`,
/// `<password type="x">…`, `<x-api-key>` then a line break and the value, a value in
/// `<![CDATA[…]]>`): from after the start tag's `>` (and any whitespace) to the next
/// delimiter. A start tag is `<`, a name of letters, digits, `_ - . :`, then attributes, at
/// most 256 bytes in all; closing, self-closing, comment and declaration tags are not.
pub(super) fn markup_values(text: &str, spans: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    let mut covered = 0;
    for gt in memchr::memchr_iter(b'>', bytes) {
        let from = gt.saturating_sub(256);
        let Some(lt) = bytes[from..gt]
            .iter()
            .rposition(|&b| b == b'<' || b == b'>')
        else {
            continue;
        };
        let lt = from + lt;
        if bytes[lt] != b'<' || bytes[gt - 1] == b'/' {
            continue;
        }
        let tag = &bytes[lt + 1..gt];
        let name_len = tag
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')))
            .unwrap_or(tag.len());
        if name_len == 0 || !(name_len == tag.len() || tag[name_len].is_ascii_whitespace()) {
            continue;
        }
        if !names_a_secret(&tag[..name_len]) {
            continue;
        }
        let mut start = gt + 1;
        while start < bytes.len() && bytes[start].is_ascii_whitespace() {
            start += 1;
        }
        if bytes[start..].starts_with(b"<![CDATA[") {
            start += b"<![CDATA[".len();
        }
        if let Some(span) = value_span(text, start, covered) {
            covered = span.end;
            spans.push(span);
        }
    }
}

/// The length of the separator at `bytes[i]` between an auth scheme and its credential, 0 if
/// there is none: spaces, tabs, line breaks, `=`, `:`, quotes, backticks, opening brackets,
/// a no-break space (U+00A0, two bytes), or a `+` (a form-encoded space) unless another
/// `+`, a `/` or a `=` follows it: then it begins a base64 credential.
pub(super) fn scheme_separator_len(bytes: &[u8], i: usize) -> usize {
    match bytes[i] {
        b'+' => usize::from(!matches!(bytes.get(i + 1), Some(b'+' | b'/' | b'='))),
        b' ' | b'\t' | b'\n' | b'\r' | b'=' | b':' | b'"' | b'\'' | b'`' | b'(' | b'[' | b'<'
        | b'{' => 1,
        0xc2 if bytes.get(i + 1) == Some(&0xa0) => 2,
        _ => 0,
    }
}

/// Where a credential that starts at `start`, after the separators that follow a scheme
/// ending at `from`, really starts: a `+` is a separator (a form-encoded space,
/// `Bearer+…`) and a base64 character too, so the `+`s right before `start` are taken into
/// the credential (`Basic ++dXNl…` keeps no `+` of it).
pub(super) fn leading_plus(bytes: &[u8], from: usize, start: usize) -> usize {
    let plus = bytes[from..start]
        .iter()
        .rev()
        .take_while(|&&b| b == b'+')
        .count();
    start - plus
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
        match scheme_separator_len(bytes, start) {
            0 => break,
            len => start += len,
        }
    }
    if start == from {
        return None;
    }
    let start = leading_plus(bytes, from, start);
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
    value_at(text, start, covered)
}

/// The value starting at `start`: to its closing quote when a quote opens it
/// ([`quoted_value`]), else to the next delimiter ([`value_span`]).
fn value_at(text: &str, start: usize, covered: usize) -> Option<Range<usize>> {
    quoted_value(text, start, covered).or_else(|| value_span(text, start, covered))
}

/// The value starting at `start` right after an opening quote (`"`, `'` or a backtick), up
/// to its closing quote on the same line and at most 512 bytes on: a quoted value may hold
/// the characters that end an unquoted one (`"pa;ss,wo(rd)"`). `None` when `start` follows
/// no quote, the quote is not closed, or the value is empty, already redacted or starts
/// inside the last value found.
pub(super) fn quoted_value(text: &str, start: usize, covered: usize) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let quote = *bytes.get(start.checked_sub(1)?)?;
    if !matches!(quote, b'"' | b'\'' | b'`') || start < covered {
        return None;
    }
    let probe = &bytes[start..bytes.len().min(start + 512)];
    let len = probe
        .iter()
        .position(|&b| b == quote || b == b'\n' || b == b'\r')
        .filter(|&len| probe[len] == quote && len > 0)?;
    if bytes[start..start + len] == *REDACTED.as_bytes() {
        return None;
    }
    Some(start..start + len)
}

/// The value after a command-line flag named by a secret parameter and a space
/// (`--api-key sk-…`, `--password 'hunter2'`, `-api_key X`): the next word, or the quoted
/// words. A flag is `--`, or one `-` that is not inside a word (no letter, digit or `_`
/// before it); a next word that looks like a flag ([`looks_like_flag`]) is not a value.
/// (`--api-key=…` is a parameter.)
pub(super) fn flag_values(text: &str, spans: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    let mut covered = 0;
    for dash in memchr::memchr_iter(b'-', bytes) {
        // A `--` starts a flag even glued to a word (`a--api-key`); a lone `-` after a
        // letter, a digit or `_` is inside a word.
        let double = bytes.get(dash + 1) == Some(&b'-');
        if dash < covered || (dash > 0 && !double && is_word_byte(bytes[dash - 1])) {
            continue;
        }
        let name_start = dash + 1 + usize::from(double);
        let name_len = bytes[name_start..]
            .iter()
            .take(64)
            .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            .count();
        let name_end = name_start + name_len;
        if name_len == 0
            || !bytes[name_start].is_ascii_alphabetic()
            || !matches!(bytes.get(name_end), Some(b' ' | b'\t'))
            || !names_a_secret(&bytes[name_start..name_end])
        {
            continue;
        }
        let mut start = name_end;
        while start < bytes.len() && matches!(bytes[start], b' ' | b'\t' | b'"' | b'\'' | b'`') {
            start += 1;
        }
        if looks_like_flag(&bytes[start..]) {
            continue;
        }
        if let Some(span) = value_at(text, start, covered) {
            covered = span.end;
            spans.push(span);
        }
    }
}

/// The body of every PEM private key (`-----BEGIN PRIVATE KEY-----`, and `RSA`, `EC`,
/// `OPENSSH`, `ENCRYPTED`, `PGP … KEY BLOCK` ones: a label of up to 40 capitals and spaces
/// that holds `PRIVATE KEY`), as a service account's JSON or a key file echoed into an
/// error carries it: from the end of the `BEGIN` line to the next `-----END`, or to the end
/// of the text when the block is cut. The two marker lines stay.
pub(super) fn pem_private_keys(text: &str, spans: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&bytes[from..], b"-----BEGIN ") {
        let label_start = from + at + b"-----BEGIN ".len();
        from = label_start;
        let label_len = bytes[label_start..]
            .iter()
            .take(41)
            .take_while(|b| b.is_ascii_uppercase() || **b == b' ')
            .count();
        let label = &bytes[label_start..label_start + label_len];
        let header_end = label_start + label_len;
        if label_len > 40
            || !bytes[header_end..].starts_with(b"-----")
            || memchr::memmem::find(label, b"PRIVATE KEY").is_none()
        {
            continue;
        }
        let body = header_end + b"-----".len();
        let end =
            memchr::memmem::find(&bytes[body..], b"-----END").map_or(bytes.len(), |e| body + e);
        if bytes[body..end].iter().any(u8::is_ascii_alphanumeric) {
            spans.push(body..end);
        }
        from = end;
    }
}

/// A letter, a digit or `_`: a `-` after one is inside a word, not a flag's.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the word at the start of `bytes` is a command-line flag rather than a value that
/// begins with `-` (a URL-safe token may): one letter after one `-` (`-v`, `-X`), or a small
/// letter and up to 31 more small letters, digits and `-` after one or two (`--verbose`),
/// then the word's end, `=` or nothing.
fn looks_like_flag(bytes: &[u8]) -> bool {
    let dashes = bytes.iter().take(2).take_while(|&&b| b == b'-').count();
    if dashes == 0 {
        return false;
    }
    let word = &bytes[dashes..];
    let len = word
        .iter()
        .take(33)
        .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || **b == b'-')
        .count();
    let ends = |at: usize| {
        word.get(at)
            .is_none_or(|&b| b == b'=' || is_value_end(b as char))
    };
    if dashes == 1 && word.first().is_some_and(u8::is_ascii_alphabetic) && ends(1) {
        return true;
    }
    (1..=32).contains(&len) && word[0].is_ascii_lowercase() && ends(len)
}

/// The password of `curl -u user:password`, `--user user:password`, `--proxy-user …`, and
/// of `-uuser:password` glued to its flag: from the first `:` of the flag's value to the
/// value's end.
pub(super) fn user_flag_values(text: &str, spans: &mut Vec<Range<usize>>) {
    let bytes = text.as_bytes();
    for dash in memchr::memchr_iter(b'-', bytes) {
        if dash > 0 && (is_word_byte(bytes[dash - 1]) || bytes[dash - 1] == b'-') {
            continue;
        }
        let here = &bytes[dash..];
        let flag = [&b"--proxy-user"[..], b"--user", b"-u", b"-U"]
            .into_iter()
            .find(|f| here.starts_with(f));
        let Some(flag) = flag else {
            continue;
        };
        let mut start = dash + flag.len();
        while start < bytes.len() && matches!(bytes[start], b' ' | b'\t' | b'=' | b'"' | b'\'') {
            start += 1;
        }
        // A long flag needs its separator (`--username` is another flag).
        if flag.len() > 2 && start == dash + flag.len() {
            continue;
        }
        let Some(value) = value_at(text, start, 0) else {
            continue;
        };
        let Some(colon) = bytes[value.clone()].iter().position(|&b| b == b':') else {
            continue;
        };
        let password = value.start + colon + 1..value.end;
        if !password.is_empty() && bytes[password.clone()] != *REDACTED.as_bytes() {
            spans.push(password);
        }
    }
}

/// A Telegram bot token in the run of key characters and dots `bytes[start..end]`: the run
/// follows `:` and a bot id of 6 to 12 digits, and begins with 30 to 45 URL-safe characters
/// mixing a digit or a capital in (the published shape is an id, `:` and 35 characters).
/// The id and the token, from the id's first digit.
pub(super) fn telegram_token(bytes: &[u8], start: usize, end: usize) -> Option<Range<usize>> {
    if start < 7 || bytes[start - 1] != b':' {
        return None;
    }
    let digits = bytes[..start - 1]
        .iter()
        .rev()
        .take(13)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(6..=12).contains(&digits) {
        return None;
    }
    let len = bytes[start..end]
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        .count();
    ((30..=45).contains(&len)
        && bytes[start..start + len].iter().any(is_varied)
        && bytes[start..start + len].iter().any(u8::is_ascii_lowercase))
    .then(|| start - 1 - digits..start + len)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_tidy` as it was before its double-space search was folded into its byte pass.
    fn is_tidy_before(text: &str) -> bool {
        let bytes = text.as_bytes();
        if bytes.len() > MAX_MESSAGE_CHARS || text.starts_with(' ') || text.ends_with(' ') {
            return false;
        }
        let other_space = bytes
            .iter()
            .fold(false, |seen, &b| seen | matches!(b, b'\t'..=b'\r'));
        if other_space || memchr::memmem::find(bytes, b"  ").is_some() {
            return false;
        }
        text.is_ascii() || !text.chars().any(|c| c.is_whitespace() && c != ' ')
    }

    /// The last-byte dispatch of `ends_with_param` finds exactly the names of
    /// `SECRET_PARAMS`, at the end of any name.
    #[test]
    fn ends_with_param_is_the_list() {
        let by_list = |name: &[u8]| {
            SECRET_PARAMS
                .iter()
                .any(|p| ends_with_ci(name, p.as_bytes()))
        };
        for p in SECRET_PARAMS {
            for name in [
                p.to_string(),
                format!("x_{p}"),
                p.to_uppercase(),
                format!("{p}x"),
            ] {
                assert_eq!(
                    ends_with_param(name.as_bytes()),
                    by_list(name.as_bytes()),
                    "{name}"
                );
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        #[test]
        fn ends_with_param_agrees_with_the_list(name in "[a-zA-Z_-]{0,3}(key|token|secret|pass|word|wd|pwd|sig|nature|auth|orization|session|sess|id|cookie|phrase|credential|[a-zA-Z_])") {
            let by_list = SECRET_PARAMS.iter().any(|p| ends_with_ci(name.as_bytes(), p.as_bytes()));
            proptest::prop_assert_eq!(ends_with_param(name.as_bytes()), by_list);
        }

        #[test]
        fn is_tidy_is_what_it_was(text in "[ a\t\r\n\u{a0}\u{2003}é.]{0,250}") {
            proptest::prop_assert_eq!(is_tidy(&text), is_tidy_before(&text));
        }
    }

    #[test]
    fn the_byte_table_holds_base64_exactly() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/');
            assert_eq!(is_base64_byte(b), expected, "{b}");
        }
    }

    #[test]
    fn the_noted_bytes_are_exactly_those_and_never_key_characters() {
        for b in 0..=255u8 {
            let class = BYTE_CLASS[b as usize];
            assert_eq!(class & PLUS_SLASH != 0, matches!(b, b'+' | b'/'), "{b}");
            assert_eq!(class & ESCAPE != 0, matches!(b, b'%' | b'\\' | b'&'), "{b}");
            assert_eq!(class & SEPARATOR != 0, matches!(b, b'=' | b':'), "{b}");
            if class & (PLUS_SLASH | ESCAPE | SEPARATOR) != 0 {
                assert!(!is_key_byte(b) && class & RUN == 0, "{b}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        #[test]
        fn the_first_pass_tells_tidiness_as_is_tidy(
            text in "[ a\t\r\n\u{a0}\u{2003}é.=b-]{0,250}"
        ) {
            let (_, seen) = find_secrets_noting(&text);
            proptest::prop_assert_eq!(is_tidy_noted(&text, &seen), is_tidy(&text));
        }
    }

    #[test]
    fn high_bytes_are_noted_and_never_key_characters() {
        for b in 0..=255u8 {
            let class = BYTE_CLASS[b as usize];
            let control = b.is_ascii_control() && !b.is_ascii_whitespace() && b != 0x0b;
            assert_eq!(class & HIGH != 0, b >= 0x80 || control, "{b}");
            if b >= 0x80 {
                assert!(class & (KEY | RUN) == 0, "{b}");
            }
        }
    }

    #[test]
    fn is_tidy_is_what_it_was_on_edges() {
        let long = "a".repeat(MAX_MESSAGE_CHARS);
        for text in [
            "",
            " ",
            "  ",
            "a b",
            "a  b",
            "a b ",
            " a",
            "a\tb",
            "a\u{a0}b",
            "a \u{2003}",
            &long,
            &format!("{long}a"),
            "x  ",
            "x \u{a0} y",
        ] {
            assert_eq!(is_tidy(text), is_tidy_before(text), "{text:?}");
        }
    }

    #[test]
    fn redacts_every_known_key_shape() {
        let cases = [
            "Incorrect API key provided: sk-proj-abcdefgh1234****wxyz. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid x-api-key sk-ant-api03-AbCdEf123456",
            "API key not valid: AIzaSyA1234567890abcdefghij",
            "key gsk_abcdefghijklmnop7QRS rejected",
            "Incorrect API key provided: xai-abcdef0123456789",
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        ];
        for case in cases {
            let out = redact(case);
            assert!(!contains_secret(&out), "{case} -> {out}");
            assert!(out.contains("[redacted]"), "{case} -> {out}");
        }
        assert_eq!(
            redact("Incorrect API key provided: xa***. You can obtain an API key from https://console.x.ai."),
            "Incorrect API key provided: [redacted]. You can obtain an API key from https://console.x.ai."
        );
        assert_eq!(redact("Bearer abc"), "Bearer [redacted]");
    }

    #[test]
    fn long_base64_tokens_are_redacted_without_an_aws_id() {
        // A made-up session token: standard base64, so `/` and `+` break it into pieces
        // shorter than an opaque token.
        let token = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+9xKq";
        for context in [
            "token {} expired",
            "https://user:{}@proxy.example.com/v1",
            "provided key ({}) invalid",
            "{}",
        ] {
            let text = context.replace("{}", token);
            let out = redact(&text);
            let leaked = (0..=token.len() - 12).find(|&i| out.contains(&token[i..i + 12]));
            assert_eq!(leaked, None, "{text} -> {out}");
        }
        // Paths and model ids of plain words are not base64 secrets.
        for kept in [
            "POST https://api.openai.com/v1/chat/completions failed",
            "model meta-llama/Llama-3.1-8B-Instruct is not loaded",
            "see /v1beta/models/gemini-1.5-pro:generateContent and /v1/organizations/settings",
        ] {
            assert_eq!(redact(kept), kept);
        }
    }

    #[test]
    fn quoted_secrets_after_a_lead_word_are_redacted() {
        assert_eq!(
            redact("Authorization: Bearer \"abc123def\""),
            "Authorization: Bearer \"[redacted]\""
        );
        assert_eq!(
            redact("key provided: (zz-top-secret)"),
            "key provided: ([redacted])"
        );
    }

    #[test]
    fn glued_and_encoded_keys_are_redacted() {
        let google = "AIzaSyA1234567890abcdefghijKLMNOPQRS";
        for text in [
            format!(
                "GET https://generativelanguage.googleapis.com/v1beta/models?key={google}&alt=sse"
            ),
            format!("api_key={google}"),
            format!("key:{google}"),
            format!("x{google}y"),
            "AIza%53yA1234567890abcdefghijKLMNOPQRS".to_string(),
            format!("AI\u{200b}za{}", &google[4..]),
            "AIza\\u0053yA1234567890abcdefghijKLMNOPQRS".to_string(),
            "AIza%5Cu0053yA1234567890abcdefghijKLMNOPQRS".to_string(),
        ] {
            let out = redact(&text);
            assert!(!out.contains(&google[8..20]), "{text} -> {out}");
            assert!(!contains_secret(&out), "{text} -> {out}");
        }
    }

    #[test]
    fn labels_and_model_ids_are_kept() {
        for text in [
            "key xai-main is cooling down",
            "key prod-key failed",
            "model anthropic.claude-3-5-sonnet-20240620-v1:0 is not available",
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            "The model `gpt-4o-2024-08-06` does not exist",
            "Rate limit reached for gpt-4o in organization org-123 on requests per min (RPM): Limit 3, Used 3. Please try again in 20s.",
            "sk-my-test-key",
            "Basic plan users are limited",
        ] {
            assert_eq!(redact(text), text);
            assert!(!contains_secret(text), "{text}");
        }
    }

    #[test]
    fn redaction_is_idempotent_on_its_output() {
        for text in [
            "Bearer abc",
            "key=abc&token=def",
            "Authorization:Bearer:sk-AbCdEf0123456789xyz",
            "x-api-key: sk-ant-api03-AbCdEf0123456789 and more",
        ] {
            let once = redact(text);
            assert_eq!(redact(&once), once);
            assert!(!contains_secret(&once), "{once}");
        }
    }

    #[test]
    fn every_prefix_is_recognised() {
        for prefix in KEY_PREFIXES {
            let token = format!("{prefix}abcd1234EFGH5678");
            assert!(contains_secret(&token), "{token}");
            assert!(!contains_secret(prefix), "{prefix} alone is not a key");
            let short = format!("{prefix}abcd1234");
            assert!(!contains_secret(&short), "{short} is too short");
        }
    }

    #[test]
    fn clean_text_keeps_its_words_and_collapses_whitespace() {
        assert_eq!(
            redact("  many   spaces\n\tand lines  "),
            "many spaces and lines"
        );
        assert_eq!(redact("Incorrect%20API%20key"), "Incorrect API key");
    }

    #[test]
    fn truncates_long_messages_on_char_boundaries() {
        let long = "é".repeat(1000);
        let out = redact(&long);
        assert_eq!(out.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn decoding_is_bounded_and_keeps_broken_escapes() {
        assert_eq!(redact("100% sure \\q \\u12"), "100% sure \\q \\u12");
        assert_eq!(redact("\\ud83d\\ude00 \\ud83d"), "😀 \u{fffd}");
        let deep = "%25".repeat(10) + "41";
        assert!(redact(&deep).starts_with('%'));
    }

    /// The rendering loop as it was before its ASCII fast path: one character at a time.
    fn render_by_char(text: &str, spans: &[Range<usize>]) -> String {
        let mut out = String::new();
        let mut chars_written = 0usize;
        let mut last_was_space = true;
        let mut spans = spans.iter().peekable();
        let mut pos = 0;
        while pos < text.len() {
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

    #[test]
    fn rendering_and_the_plain_token_shortcut_agree_with_the_slow_paths() {
        let alphabet = [
            "a",
            "Z",
            "0",
            " ",
            "  ",
            "\t",
            "\n",
            "é",
            "\u{a0}",
            "\u{2003}",
            "-",
            "_",
            ".",
            "=",
            ":",
            "sk-",
            "AbCdEf0123456789xyz",
            "Bearer ",
            "key=",
            "%20",
            "\\u0041",
            "\u{200b}",
            "…",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..4000 {
            let mut text = String::new();
            let len = 1 + round % 97;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let (normal, spans) = analyse(&text);
            assert_eq!(
                render(&normal, &spans),
                render_by_char(&normal, &spans),
                "{text:?}"
            );
            let slow = if spans.is_empty() && is_tidy(&normal) {
                normal.clone().into_owned()
            } else {
                render_by_char(&normal, &spans)
            };
            assert_eq!(redact(&text), slow, "{text:?}");
        }
        for code in [
            "rate_limit_reached",
            "a",
            "x.y-z_1",
            "sk-abc",
            "eyJabc",
            "*",
        ] {
            assert!(is_plain_token(code));
            let (normal, spans) = analyse(code);
            assert!(spans.is_empty() && is_tidy(&normal), "{code}");
        }
    }
}
