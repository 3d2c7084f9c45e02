//! Redaction of secrets that providers echo back in error messages.
//!
//! OpenAI answers a bad key with "Incorrect API key provided: sk-proj-abc…xyz", xAI with
//! "Incorrect API key provided: xa***", and proxies sometimes echo the whole `Authorization`
//! header. Every message relent keeps passes through [`redact`] first, so no trace, log line
//! or abort message can carry a key.

/// The longest message relent keeps, in characters.
pub const MAX_MESSAGE_CHARS: usize = 240;

/// Prefixes that start a secret token, matched case-sensitively at a token boundary.
const SECRET_PREFIXES: &[&str] = &[
    "sk-", "sk_", "rk-", "rk_", "pk-", "AIza", "gsk_", "xai-", "AKIA", "ASIA", "ghp_", "hf_",
    "or-", "pplx-", "csk-", "nvapi-", "r8_",
];

/// Whether the token after `previous token` is a secret whatever it looks like: after
/// "Bearer", "key provided:", "api key:", "api-key:", "x-api-key:" and "token:".
fn leads_to_secret(previous: &str, token: &str) -> bool {
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    is(token, "bearer")
        || is(token, "api-key:")
        || is(token, "x-api-key:")
        || is(token, "token:")
        || (is(token, "provided:") && is(previous, "key"))
        || (is(token, "key:") && is(previous, "api"))
}

const REDACTED: &str = "[redacted]";

/// Returns `text` with secrets replaced by `[redacted]`, whitespace collapsed, and cut to
/// [`MAX_MESSAGE_CHARS`] characters (an ellipsis marks the cut).
pub fn redact(text: &str) -> String {
    if is_clean(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS + 8));
    let mut chars_written = 0usize;
    let mut rest = text;
    let mut secret_follows = false;
    let mut previous = "";
    let mut last_was_space = true;
    while !rest.is_empty() {
        if chars_written >= MAX_MESSAGE_CHARS {
            out.push('…');
            return out;
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c.is_whitespace() {
            if !last_was_space {
                out.push(' ');
                chars_written += 1;
            }
            last_was_space = true;
            rest = &rest[c.len_utf8()..];
            continue;
        }
        // At a token start: decide whether the whole token is a secret.
        let token_len = rest.find(is_delimiter).unwrap_or(rest.len());
        let token_len = token_len.max(c.len_utf8());
        let token = &rest[..token_len];
        if token_len == c.len_utf8() && is_delimiter(c) {
            // A lone quote or bracket: keep it, and keep waiting for the secret a lead word
            // announced ("Bearer \"abc…\"").
            out.push(c);
            chars_written += 1;
            rest = &rest[token_len..];
            last_was_space = false;
            continue;
        }
        if secret_follows || looks_secret(token) {
            if chars_written + REDACTED.len() + 1 > MAX_MESSAGE_CHARS {
                out.push('…');
                return out;
            }
            out.push_str(REDACTED);
            chars_written += REDACTED.len();
            // Keep a trailing full stop so the sentence still reads.
            if token.ends_with('.') && token.len() > 1 {
                out.push('.');
                chars_written += 1;
            }
            rest = &rest[token_len..];
            secret_follows = false;
            last_was_space = false;
            continue;
        }
        if token.is_ascii() && chars_written + token.len() <= MAX_MESSAGE_CHARS {
            out.push_str(token);
            chars_written += token.len();
        } else {
            for ch in token.chars() {
                if chars_written >= MAX_MESSAGE_CHARS {
                    out.push('…');
                    return out;
                }
                out.push(ch);
                chars_written += 1;
            }
        }
        rest = &rest[token_len..];
        last_was_space = false;
        secret_follows = leads_to_secret(previous, token);
        previous = token;
    }
    out.truncate(out.trim_end().len());
    out
}

/// Whether [`redact`] would return `text` unchanged: short, single-spaced, and with no token
/// that is a secret or could introduce one. Most provider messages are; checking costs one
/// pass and no allocation.
fn is_clean(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() > MAX_MESSAGE_CHARS || text.starts_with(' ') || text.ends_with(' ') {
        return false;
    }
    // Single spaces only: no double space, no other whitespace.
    let mut previous = 0u8;
    for &b in bytes {
        if (b == b' ' && previous == b' ') || (b != b' ' && is_space_byte(b)) {
            return false;
        }
        previous = b;
    }
    if !text.is_ascii() && text.chars().any(|c| c.is_whitespace() && c != ' ') {
        return false;
    }
    let leads = [
        "bearer",
        "provided:",
        "key:",
        "api-key:",
        "x-api-key:",
        "token:",
    ];
    !tokens(text).any(|token| {
        looks_secret(token) || leads.iter().any(|lead| token.eq_ignore_ascii_case(lead))
    })
}

/// `char::is_whitespace` for an ASCII byte.
const fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | b' ')
}

fn is_delimiter(ch: char) -> bool {
    ch.is_whitespace() || matches!(ch, '"' | '\'' | ',' | ')' | '(' | '<' | '>')
}

/// [`is_delimiter`] for an ASCII byte, as a table (one load per byte).
fn is_delimiter_byte(b: u8) -> bool {
    const TABLE: [bool; 256] = {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 128 {
            table[b] = is_space_byte(b as u8)
                || matches!(b as u8, b'"' | b'\'' | b',' | b')' | b'(' | b'<' | b'>');
            b += 1;
        }
        table
    };
    TABLE[b as usize]
}

/// The pieces of `text` between delimiters, exactly as `text.split(is_delimiter)` gives
/// them; ASCII text (nearly every message) is split byte by byte.
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    let mut unicode = (!text.is_ascii()).then(|| text.split(is_delimiter));
    let mut start = Some(0);
    std::iter::from_fn(move || {
        if let Some(split) = unicode.as_mut() {
            return split.next();
        }
        let from = start?;
        match text.as_bytes()[from..]
            .iter()
            .position(|b| is_delimiter_byte(*b))
        {
            Some(len) => {
                start = Some(from + len + 1);
                Some(&text[from..from + len])
            }
            None => {
                start = None;
                Some(&text[from..])
            }
        }
    })
}

fn looks_secret(token: &str) -> bool {
    // Trimming below only shortens the token, and no secret is shorter than seven bytes.
    if token.len() < 7 {
        return false;
    }
    let token = token.trim_start_matches(['[', '{', ':', '=', '`']);
    // The shortest secret is a three-byte prefix and four key characters; most words are
    // shorter, and no prefix starts with a character outside this set.
    if token.len() < 7
        || (token.len() < 32
            && !matches!(
                token.as_bytes()[0],
                b's' | b'r' | b'p' | b'A' | b'g' | b'x' | b'h' | b'o' | b'c' | b'n'
            ))
    {
        return false;
    }
    // A prefix followed by at least four key characters ("sk-" alone, or "AIza" followed by
    // punctuation, is not a key).
    let key_char = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*' | b'.');
    let first = token.as_bytes()[0];
    SECRET_PREFIXES.iter().any(|prefix| {
        prefix.as_bytes()[0] == first
            && token
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.as_bytes().iter().take_while(|b| key_char(b)).count() >= 4)
    }) || is_long_opaque(token)
}

/// A long run of key-like characters with both letters and digits (JWTs, hex secrets).
fn is_long_opaque(token: &str) -> bool {
    token.len() >= 32
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*'))
        && token.bytes().any(|b| b.is_ascii_digit())
        && token.bytes().any(|b| b.is_ascii_alphabetic())
        && !token.contains("://")
}

/// True when `text` still contains anything that [`redact`] would remove. Used by tests.
pub fn contains_secret(text: &str) -> bool {
    tokens(text).any(looks_secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_known_key_shape() {
        let cases = [
            "Incorrect API key provided: sk-proj-abcdefgh1234****wxyz. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid x-api-key sk-ant-api03-AbCdEf123456",
            "API key not valid: AIzaSyA1234567890abcdefghij",
            "key gsk_abcdefghijklmnop rejected",
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
    fn clean_text_is_returned_as_is_and_dirty_text_is_not_taken_for_clean() {
        for text in [
            "Rate limit reached for requests.",
            "Overloaded",
            "model: claude-3 (not found)",
        ] {
            assert!(is_clean(text));
            assert_eq!(redact(text), text);
        }
        for text in [
            "a  b",
            " lead",
            "x\ny",
            "Bearer abc",
            "sk-abcdef1234 leaked",
            &"x".repeat(300),
        ] {
            assert!(!is_clean(text), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn tokens_split_like_str_split(text in "([a-z\\-_]{0,3}|[ \t\n\x0b\x0c\r\"',()<>]|\u{a0}|\u{2028}|é){0,24}") {
            let fast: Vec<&str> = tokens(&text).collect();
            let plain: Vec<&str> = text.split(is_delimiter).collect();
            proptest::prop_assert_eq!(fast, plain);
        }
    }

    #[test]
    fn every_prefix_is_recognised() {
        for prefix in SECRET_PREFIXES {
            let token = format!("{prefix}abcd1234");
            assert!(looks_secret(&token), "{token}");
            assert!(!looks_secret(prefix), "{prefix} alone is not a key");
        }
    }

    #[test]
    fn keeps_ordinary_text_and_urls() {
        let text = "Rate limit reached for gpt-4o in organization org-123 on requests per min (RPM): Limit 3, Used 3. Please try again in 20s.";
        assert_eq!(redact(text), text);
        assert_eq!(
            redact("  many   spaces\n\tand lines  "),
            "many spaces and lines"
        );
    }

    #[test]
    fn truncates_long_messages_on_char_boundaries() {
        let long = "é".repeat(1000);
        let out = redact(&long);
        assert_eq!(out.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(out.ends_with('…'));
    }
}
