//! Fuzzing entry for redaction, with an oracle that does not trust the redactor.
//!
//! The fuzzer's bytes choose a secret of one of the shapes relent knows (built here from the
//! providers' key formats, not from the redactor's pattern list), a way to write it (plain,
//! percent-encoded, with `\u` escapes, with invisible characters in its prefix), the text
//! around it, and the provider body member it goes into. The real classifier runs, and its
//! message, its code and the `Debug` text of the whole classification must hold neither the
//! secret nor any [`WINDOW`]-character piece of it.

use arbitrary::Unstructured;
use relent::classify::{classify, Classification, HttpResponse, Observation, Provider};

/// Any this many consecutive characters of a secret in the output count as a leak.
pub const WINDOW: usize = 12;

/// An alphabet keys are drawn from.
pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// An alphabet keys are drawn from.
pub const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// An alphabet keys are drawn from.
pub const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// An alphabet keys are drawn from.
pub const HEX: &[u8] = b"0123456789abcdef";
/// An alphabet keys are drawn from.
pub const UPPER_DIGIT: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The characters that may surround a secret: letters and digits, and the punctuation
/// URLs, headers, JSON and shells put next to keys.
const NEIGHBOURS: &[&str] = &[
    " ",
    "=",
    ":",
    "?",
    "&",
    "/",
    "#",
    "%",
    "\\",
    "\"",
    "'",
    ".",
    ",",
    ";",
    "(",
    ")",
    "<",
    ">",
    "[",
    "]",
    "{",
    "}",
    "|",
    "@",
    "!",
    "*",
    "+",
    "-",
    "_",
    "~",
    "\t",
    "\n",
    "a",
    "Z",
    "0",
    "é",
    "…",
    "%20",
    "\\n",
    "\\u0020",
    "url=",
    "Incorrect API key provided: ",
    "invalid x-api-key ",
];

/// Provider body shapes, each with `{}` in one member relent reads (or copies).
const SHAPES: &[(Provider, u16, &str)] = &[
    (
        Provider::Openai,
        401,
        r#"{"error":{"message":"{}","type":"invalid_request_error","code":"invalid_api_key","param":null}}"#,
    ),
    (
        Provider::Openai,
        400,
        r#"{"error":{"message":"bad","type":"{}","param":null}}"#,
    ),
    (
        Provider::Openai,
        400,
        r#"{"error":{"message":"bad","type":"x","code":"{}","param":"{}"}}"#,
    ),
    (
        Provider::Anthropic,
        401,
        r#"{"type":"error","error":{"type":"{}","message":"{}"}}"#,
    ),
    (
        Provider::Gemini,
        400,
        r#"{"error":{"code":400,"message":"{}","status":"INVALID_ARGUMENT","details":[{"reason":"{}"}]}}"#,
    ),
    (
        Provider::Gemini,
        400,
        r#"{"error":{"code":400,"message":"bad","status":"{}"}}"#,
    ),
    (Provider::Bedrock, 403, r#"{"message":"{}"}"#),
    (Provider::Bedrock, 400, r#"{"__type":"{}","message":"bad"}"#),
    (
        Provider::Mistral,
        401,
        r#"{"object":"error","message":"{}","type":"{}","code":"{}"}"#,
    ),
    (Provider::Xai, 400, r#"{"code":"{}","error":"{}"}"#),
    (
        Provider::Openrouter,
        502,
        r#"{"error":{"message":"{}","code":502,"metadata":{"raw":"{}"}}}"#,
    ),
    (Provider::Generic, 502, "{}"),
    (
        Provider::Generic,
        502,
        "<html><head><title>{}</title></head><body>{}</body></html>",
    ),
];

/// `len` characters of `alphabet`, chosen by the fuzzer. The last character is replaced by
/// a digit or a capital when `varied` is set and none was chosen: a real key is random, and
/// a run without either is a label (`xai-main`), which the redactor keeps on purpose.
fn draw(u: &mut Unstructured<'_>, alphabet: &[u8], len: usize, varied: bool) -> String {
    let mut out: Vec<u8> = (0..len)
        .map(|_| alphabet[u.choose_index(alphabet.len()).unwrap_or(0)])
        .collect();
    if varied
        && !out
            .iter()
            .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        if let Some(last) = out.last_mut() {
            *last = b'7';
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

fn pick<'a, T>(u: &mut Unstructured<'_>, items: &'a [T]) -> &'a T {
    &items[u.choose_index(items.len()).unwrap_or(0)]
}

fn length(u: &mut Unstructured<'_>, min: usize, max: usize) -> usize {
    u.int_in_range(min..=max).unwrap_or(min)
}

/// A key of one of the published shapes.
fn key(u: &mut Unstructured<'_>) -> String {
    match u.choose_index(12).unwrap_or(0) {
        0 => format!("sk-{}", draw(u, ALNUM, 48, true)),
        1 => {
            let n = length(u, 40, 120);
            format!("sk-proj-{}", draw(u, URLSAFE, n, true))
        }
        2 => {
            let n = length(u, 40, 100);
            format!("sk-svcacct-{}", draw(u, URLSAFE, n, true))
        }
        3 => format!("sk-ant-api03-{}AA", draw(u, URLSAFE, 93, true)),
        4 => format!("AIza{}", draw(u, URLSAFE, 35, true)),
        5 => format!("gsk_{}", draw(u, ALNUM, 52, true)),
        6 => format!("xai-{}", draw(u, ALNUM, 80, true)),
        7 => format!("sk-or-v1-{}", draw(u, HEX, 64, true)),
        8 => {
            let prefix = pick(u, &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]);
            format!("{prefix}{}", draw(u, ALNUM, 36, true))
        }
        9 => format!(
            "github_pat_{}_{}",
            draw(u, ALNUM, 22, true),
            draw(u, ALNUM, 59, true)
        ),
        10 => {
            let (h, p, s) = (length(u, 12, 40), length(u, 20, 120), length(u, 43, 86));
            format!(
                "eyJ{}.eyJ{}.{}",
                draw(u, URLSAFE, h, true),
                draw(u, URLSAFE, p, true),
                draw(u, URLSAFE, s, true)
            )
        }
        // A key of no known shape: relent takes 20 or more letters and digits in a row, both
        // mixed in, for a secret (a run of letters alone reads as a word or an identifier).
        _ => {
            let n = length(u, 20, 60);
            let mut token = draw(u, ALNUM, n, true).into_bytes();
            if !token.iter().any(u8::is_ascii_digit) {
                token[n / 2] = b'4';
            }
            if !token.iter().any(u8::is_ascii_alphabetic) {
                token[0] = b'q';
            }
            String::from_utf8(token).unwrap_or_default()
        }
    }
}

/// A secret (what must not leak) and the text that carries it.
fn planted(u: &mut Unstructured<'_>) -> (String, String) {
    match u.choose_index(8).unwrap_or(0) {
        0 => {
            let k = key(u);
            (k.clone(), k)
        }
        1 => {
            let id = format!(
                "{}{}",
                pick(u, &["AKIA", "ASIA"]),
                draw(u, UPPER_DIGIT, 16, false)
            );
            let secret = draw(u, BASE64, 40, false);
            let sep = pick(u, &[" ", ":", "/", "=", "\n", ", secret="]);
            let carrier = format!("{id}{sep}{secret}");
            if u.arbitrary::<bool>().unwrap_or(false) {
                (id, carrier)
            } else {
                (secret, carrier)
            }
        }
        2 => {
            let scheme = pick(u, &["Bearer", "bearer", "BEARER", "Authorization:Bearer"]);
            let sep = pick(u, &[" ", "=", ":", ": ", "  ", "=\""]);
            let secret = key(u);
            (secret.clone(), format!("{scheme}{sep}{secret}"))
        }
        3 => {
            let scheme = pick(u, &["Basic", "basic"]);
            let sep = pick(u, &[" ", "=", ":"]);
            let n = length(u, 20, 60);
            let secret = draw(u, BASE64, n, false);
            (secret.clone(), format!("{scheme}{sep}{secret}=="))
        }
        4 => {
            let name = pick(
                u,
                &[
                    "key",
                    "api_key",
                    "apikey",
                    "apiKey",
                    "x-api-key",
                    "token",
                    "access_token",
                    "secret",
                    "client_secret",
                    "password",
                ],
            );
            let sep = pick(u, &["=", ":", ": ", "\":\"", " = "]);
            let secret = key(u);
            (secret.clone(), format!("{name}{sep}{secret}"))
        }
        5 => {
            // A name with a prefix and a suffix, in a variable, a flag or a name and value
            // pair, holding a secret of no known shape.
            let name = format!(
                "{}{}{}",
                pick(u, &["", "OPENAI_", "my_", "X-"]),
                pick(
                    u,
                    &[
                        "API_KEY",
                        "apiKey",
                        "TOKEN",
                        "secret",
                        "Password",
                        "credentials"
                    ]
                ),
                pick(u, &["", "_PROD", "_2", "-dev", "Backup", "_V3"]),
            );
            let flag = kebab(&name);
            let n = length(u, 20, 48);
            // A value that begins with `-` after a flag reads as the next flag (a known
            // limit, docs/CLASSIFIER.md).
            let mut secret = draw(u, URLSAFE, n, true);
            if secret.starts_with('-') {
                secret.replace_range(..1, "Q");
            }
            let shape = pick(
                u,
                &[
                    "{n}={s}",
                    "{n}: {s}",
                    "--{f} {s}",
                    "--{f} \"{s}\"",
                    r#"{"name":"{n}","value":"{s}"}"#,
                    "- name: {n}\n  value: {s}",
                    "curl -u user:{s}",
                    "https://user:{s}@host/",
                ],
            );
            let carrier = shape
                .replace("{n}", &name)
                .replace("{f}", &flag)
                .replace("{s}", &secret);
            (secret, carrier)
        }
        6 => {
            // A secret of no known shape after words that name it, with no parameter's `=`
            // or `:` of its own: it mixes capitals, small letters and digits (its first six
            // characters make sure), as the rule for such values asks (docs/CLASSIFIER.md).
            let n = length(u, 16, 40);
            let classes: [&[u8]; 3] = [
                b"abcdefghijklmnopqrstuvwxyz",
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                b"0123456789",
            ];
            let mut secret: String = (0..6).map(|i| draw(u, classes[i % 3], 1, false)).collect();
            secret.push_str(&draw(u, ALNUM, n - 6, false));
            let shape = pick(
                u,
                &[
                    "your key {s} is invalid",
                    "The API key '{s}' is not valid.",
                    "X-API-KEY {s}",
                    "token is {s}",
                    "API_KEY_FOR_GROQ={s}",
                    "api_key -> {s}",
                    "pass={s}",
                    "db_pw: {s}",
                    "mysql -u root -p{s}",
                    "the password for bob is {s}",
                    r#"{"value":"{s}","name":"X-Api-Key"}"#,
                ],
            );
            (secret.clone(), shape.replace("{s}", &secret))
        }
        _ => {
            let url = pick(
                u,
                &[
                    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent?key=",
                    "https://example.com/v1/chat?alt=sse&key=",
                    "/v1/complete?access_token=",
                    "wss://api.example.com/stream#token=",
                ],
            );
            let secret = key(u);
            (secret.clone(), format!("{url}{secret}"))
        }
    }
}

/// `name` as a command-line flag: words split where case turns (`apiKeyBackup`,
/// `API_KEYBackup`) or at `_` and `.`, joined by `-`, in small letters.
pub fn kebab(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = String::new();
    for (i, &c) in b.iter().enumerate() {
        let turns = i > 0
            && c.is_ascii_uppercase()
            && (!b[i - 1].is_ascii_uppercase() || b.get(i + 1).is_some_and(u8::is_ascii_lowercase))
            && b[i - 1].is_ascii_alphanumeric();
        if turns {
            out.push('-');
        }
        out.push(match c {
            b'_' | b'.' => '-',
            c => c.to_ascii_lowercase() as char,
        });
    }
    out
}

/// The carrier written plainly, percent-encoded in part, with `\u` escapes in part, with
/// an invisible character after each of its first characters, in full-width forms, with
/// HTML, octal or brace escapes in part, or with the secret wrapped across two lines (then
/// the flag is true).
fn disguise(u: &mut Unstructured<'_>, carrier: &str, secret: &str) -> (String, bool) {
    let written = match u.choose_index(7).unwrap_or(0) {
        0 => carrier.to_string(),
        1 => {
            let every = length(u, 1, 6);
            let offset = length(u, 0, 6);
            percent_encoded(carrier, every, offset)
        }
        2 => {
            let every = length(u, 1, 8);
            unicode_escaped(carrier, every)
        }
        3 => {
            let invisible = *pick(u, INVISIBLE);
            zero_width(carrier, invisible)
        }
        4 => wide(carrier),
        5 => {
            let every = length(u, 1, 8);
            let style = *pick(
                u,
                &[
                    Escape::HtmlDecimal,
                    Escape::HtmlHex,
                    Escape::Octal,
                    Escape::Brace,
                ],
            );
            escaped(carrier, every, style)
        }
        _ => {
            let at = u.arbitrary::<usize>().unwrap_or(0);
            let line_break = *pick(u, &["\n", "\r\n", "\n  ", " \n", "\n\t"]);
            return (wrapped(carrier, secret, at, line_break), true);
        }
    };
    (written, false)
}

/// `carrier` with `line_break` put inside `secret` (which it holds), after the secret's
/// first `1 + at % (len - 1)` bytes: a key wrapped across lines by a log or a terminal. A
/// carrier without the secret, or a secret too short to cut, comes back as it is.
pub fn wrapped(carrier: &str, secret: &str, at: usize, line_break: &str) -> String {
    let Some(start) = carrier.find(secret) else {
        return carrier.to_string();
    };
    if secret.len() < 2 {
        return carrier.to_string();
    }
    let mut cut = start + 1 + at % (secret.len() - 1);
    while !carrier.is_char_boundary(cut) {
        cut += 1;
    }
    format!("{}{line_break}{}", &carrier[..cut], &carrier[cut..])
}

/// Characters that render as nothing, put inside a key's prefix to hide it.
pub const INVISIBLE: &[char] = &[
    '\u{200b}', '\u{200c}', '\u{200d}', '\u{200e}', '\u{2060}', '\u{feff}', '\u{ad}',
];

/// Percent-encodes every byte of `s` at positions `n` with `(n + offset) % every == 0`, and
/// every `-`.
pub fn percent_encoded(s: &str, every: usize, offset: usize) -> String {
    s.bytes()
        .enumerate()
        .map(|(n, b)| {
            if (n + offset) % every.max(1) == 0 || b == b'-' {
                format!("%{b:02X}")
            } else {
                char::from(b).to_string()
            }
        })
        .collect()
}

/// Writes every `-` and `_`, and every `every`-th character, as a `\uXXXX` escape.
pub fn unicode_escaped(s: &str, every: usize) -> String {
    s.chars()
        .enumerate()
        .map(|(n, c)| {
            if c == '-' || c == '_' || n % every.max(1) == 0 {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `s` in full-width forms: each printable ASCII character as its full-width twin
/// (`sk-` as `ｓｋ－`, U+FF01–U+FF5E) and each space as the ideographic space, as CJK text
/// and some input methods write them.
pub fn wide(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xfee0).unwrap_or(c),
            ' ' => '\u{3000}',
            _ => c,
        })
        .collect()
}

/// How [`escaped`] writes a character.
#[derive(Clone, Copy, Debug)]
pub enum Escape {
    /// `&#45;`
    HtmlDecimal,
    /// `&#x2d;`
    HtmlHex,
    /// `\055`, ASCII only (others are kept).
    Octal,
    /// `\u{2d}`
    Brace,
}

/// Every `-`, `_`, `=`, `:` and every `every`-th character of `s` written as `style` says.
pub fn escaped(s: &str, every: usize, style: Escape) -> String {
    s.chars()
        .enumerate()
        .map(|(n, c)| {
            if !(matches!(c, '-' | '_' | '=' | ':') || n % every.max(1) == 0) {
                return c.to_string();
            }
            match style {
                Escape::HtmlDecimal => format!("&#{};", c as u32),
                Escape::HtmlHex => format!("&#x{:x};", c as u32),
                Escape::Octal if c.is_ascii() => format!("\\{:03o}", c as u32),
                Escape::Octal => c.to_string(),
                Escape::Brace => format!("\\u{{{:x}}}", c as u32),
            }
        })
        .collect()
}

/// Inserts `invisible` after each of the first four characters (the prefix).
pub fn zero_width(s: &str, invisible: char) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        out.push(c);
        if n < 4 {
            out.push(invisible);
        }
    }
    out
}

fn context(u: &mut Unstructured<'_>) -> String {
    let n = length(u, 0, 6);
    (0..n).map(|_| *pick(u, NEIGHBOURS)).collect()
}

/// JSON string contents for `text`; with `all`, every ASCII punctuation character as a
/// `\u` escape too.
pub fn json_str(text: &str, all: bool) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || (all && c.is_ascii() && !c.is_ascii_alphanumeric()) => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// `haystack`'s first piece of `secret` (the whole, or any [`WINDOW`] characters). One pass
/// over `haystack`, looking each of its windows up among the secret's (the secrets are
/// ASCII, so a byte window of the haystack equal to one of theirs is the same text).
pub fn leaked_piece(haystack: &str, secret: &str) -> Option<String> {
    if haystack.contains(secret) {
        return Some(secret.to_string());
    }
    let width = WINDOW.min(secret.len().max(1));
    let pieces: std::collections::HashSet<&[u8]> = secret.as_bytes().windows(width).collect();
    haystack
        .as_bytes()
        .windows(width)
        .find(|w| pieces.contains(w))
        .map(|w| String::from_utf8_lossy(w).into_owned())
}

/// `haystack`'s first piece of `secret` as it is or in full-width forms ([`wide`]): a
/// redactor that let a wide key through unread would show it wide.
pub fn leaked_piece_any_width(haystack: &str, secret: &str) -> Option<String> {
    leaked_piece(haystack, secret).or_else(|| leaked_piece(haystack, &wide(secret)))
}

/// Panics when the classification shows any piece of `secret`, as it is or wide.
pub fn assert_no_leak(c: &Classification, secret: &str, input: &str) {
    let debug = format!("{c:?}");
    for (what, text) in [
        ("message", c.message.as_ref()),
        ("code", c.code.as_deref().unwrap_or("")),
        ("Debug", debug.as_str()),
    ] {
        if let Some(piece) = leaked_piece_any_width(text, secret) {
            panic!("{what} leaks {piece:?} of a planted secret: {text:?}\ninput: {input:?}");
        }
    }
}

/// The `redact` fuzz target: a generated secret in a generated body through the real
/// classifier, checked for leaks without calling the redactor.
pub fn fuzz_redact(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (secret, carrier) = planted(&mut u);
    let (written, wrapped) = disguise(&mut u, &carrier, &secret);
    let mut before = context(&mut u);
    let after = context(&mut u);
    // A known limit of the redactor (docs/CLASSIFIER.md): an unfinished escape (`%0`,
    // `\u00`, `&#4`) right before a partly encoded key reads two ways, and only one is
    // decoded.
    if before
        .bytes()
        .skip(before.len().saturating_sub(5))
        .any(|b| b == b'%' || b == b'\\' || b == b'&')
    {
        before.push(' ');
    }
    let (provider, status, template) = *pick(&mut u, SHAPES);
    let escape_all = u.arbitrary::<bool>().unwrap_or(false);
    // The output may show the fixed text of the body and the generated neighbours; a piece
    // of the secret that is also in those proves nothing.
    if [template, before.as_str(), after.as_str()]
        .iter()
        .any(|t| leaked_piece(t, &secret).is_some())
    {
        return;
    }
    let text = format!("{before}{written}{after}");
    let body = if template == "{}" {
        text.clone()
    } else {
        template.replace("{}", &json_str(&text, escape_all))
    };
    let c = classify(
        provider,
        &Observation::Http(HttpResponse {
            status,
            headers: &[],
            body: body.as_bytes(),
        }),
        Some(1_790_000_000_000),
    );
    assert_no_leak(&c, &secret, &body);
    // The same text as the AWS error-type header, which becomes Bedrock's code. A header
    // value holds no line break, so a secret wrapped across lines goes in unwrapped.
    let written = if wrapped { carrier } else { written };
    let text = format!("{before}{written}{after}");
    let header = text.replace(['\n', '\t', '\r'], " ");
    let headers = [("x-amzn-errortype", header.as_str())];
    let c = classify(
        Provider::Bedrock,
        &Observation::Http(HttpResponse {
            status: 400,
            headers: &headers,
            body: br#"{"message":"bad request"}"#,
        }),
        None,
    );
    assert_no_leak(&c, &secret, &header);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_catches_a_leak() {
        let mut c = Classification::of(relent::classify::Reason::KeyRejected);
        c.message = "key sk-abcdefghijklmnopqrstuvwxyz0123 echoed".into();
        let outcome = std::panic::catch_unwind(|| {
            assert_no_leak(&c, "sk-abcdefghijklmnopqrstuvwxyz0123", "")
        });
        assert!(outcome.is_err());
        c.message = "partial ghijklmnopqr".into();
        assert_eq!(
            leaked_piece(&c.message, "sk-abcdefghijklmnopqrstuvwxyz0123").as_deref(),
            Some("ghijklmnopqr")
        );
    }

    #[test]
    fn arbitrary_bytes_run() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..200 {
            let data: Vec<u8> = (0..len * 3)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            fuzz_redact(&data);
        }
    }
}
