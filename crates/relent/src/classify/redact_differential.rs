//! The redactor against its own earlier version (`redact_before`, the code at `ac69154`): the
//! speed work of issue #16 must not change a single output. Checked on every string of the
//! corpus (whole bodies and every string inside them) and on generated text that embeds key
//! shapes, lead words, parameters, encodings and invisible characters among ordinary words.

use super::redact;
use super::redact_before as before;
use proptest::prelude::*;

fn same(text: &str) {
    assert_eq!(
        redact::redact(text),
        before::redact(text),
        "redact({text:?})"
    );
    assert_eq!(
        redact::contains_secret(text),
        before::contains_secret(text),
        "contains_secret({text:?})"
    );
}

/// Every string in a JSON value.
fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => {
            out.push(s.clone());
            // A body holding JSON: its strings too.
            if let Ok(inner) = serde_json::from_str::<serde_json::Value>(s) {
                strings(&inner, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(members) => members.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out);
        }),
        _ => {}
    }
}

#[test]
fn the_corpus_redacts_as_before() {
    let corpus = include_str!("../../tests/corpus/cases.jsonl");
    let mut texts = Vec::new();
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).expect("a corpus line");
        strings(&case, &mut texts);
    }
    assert!(texts.len() > 1000, "only {} strings", texts.len());
    for text in &texts {
        same(text);
    }
}

/// Pieces that exercise every rule and every decoding step, and ordinary text between them.
fn piece() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "sk-",
        "sk-proj-",
        "sk-ant-api03-",
        "sk_",
        "AIza",
        "gsk_",
        "xai-",
        "ghp_",
        "gho_",
        "github_pat_",
        "hf_",
        "pplx-",
        "csk-",
        "nvapi-",
        "r8_",
        "AKIA",
        "ASIA",
        "eyJ",
        "Bearer ",
        "bearer=",
        "Basic ",
        "BASIC:",
        "key=",
        "api_key: ",
        "\"apiKey\": \"",
        "x-api-key:",
        "access_token=",
        "password=",
        "Secret:",
        "key provided: ",
        "?key=",
        "%2D",
        "%41",
        "%2",
        "%",
        "\\u002d",
        "\\x2d",
        "%C3%A9",
        "%e2%80%8b",
        "%25",
        "%252D",
        "%C3",
        "\\ud83d\\ude00",
        "\\ud83d",
        "\\udc00",
        "\\U200B",
        "\\X41",
        "\\x9f",
        "\\/",
        "\\'",
        "\\n",
        "\\\"",
        "\\",
        "\u{200b}",
        "\u{ad}",
        "\u{feff}",
        "é",
        "…",
        " ",
        "  ",
        "\t",
        "\n",
        ".",
        "..",
        "/",
        "+",
        "=",
        ":",
        "-",
        "_",
        "*",
        "\"",
        "'",
        ",",
        ";",
        "(",
        ")",
        "https://example.com/v1?",
        "&",
        "Rate limit reached for requests",
        "Please try again in 1.2s.",
        "rate_limit_exceeded",
        "org-abc",
        "b",
        "B",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        3 => fixed,
        2 => "[A-Za-z0-9]{1,45}",
        1 => "[A-Za-z0-9+/]{30,60}",
        1 => "[A-Z0-9]{16,20}",
        1 => "[a-z ]{1,12}",
        1 => any::<char>().prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6000))]

    #[test]
    fn generated_text_redacts_as_before(pieces in prop::collection::vec(piece(), 0..14)) {
        same(&pieces.concat());
    }

    #[test]
    fn arbitrary_text_redacts_as_before(text in "\\PC{0,300}") {
        same(&text);
    }
}

/// Lead words of every kind, in every case, with every separator and terminator that the
/// scheme and parameter passes handle: these passes are skipped unless a run of key
/// characters ends with such a word, so the words are mixed with dots, glued to other key
/// characters and followed by every byte that can end a run.
fn lead_piece() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "bearer",
        "Bearer",
        "BEARER",
        "bEaReR",
        "basic",
        "Basic",
        "BASIC",
        "key",
        "KEY",
        "Key",
        "api_key",
        "apiKey",
        "x-api-key",
        "token",
        "Token",
        "access_token",
        "secret",
        "client_secret",
        "password",
        "PASSWORD",
        "passwd",
        "signature",
        "Signature",
        "credential",
        "Credential",
        "provided",
        "key provided",
        "KEY PROVIDED",
        "keys",
        "tokens",
        "bearers",
        "basics",
        "key.",
        ".key",
        "xkey",
    ])
    .prop_map(str::to_string);
    let glue = prop::sample::select(vec![
        "", " ", "  ", "\t", "=", ":", " = ", " : ", "\"", "'", "\":", "\" : \"", "(", "[", "<",
        "{", ".", "-", "_", "*", "…", "\u{200b}", "%3D", "\\u003a", ",", ";", "&", "?",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        3 => words,
        3 => glue,
        2 => "[A-Za-z0-9+/=]{1,30}",
        1 => "[A-Za-z0-9]{20,45}",
        1 => piece(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6000))]

    #[test]
    fn lead_words_redact_as_before(pieces in prop::collection::vec(lead_piece(), 0..12)) {
        same(&pieces.concat());
    }
}

/// Long base64 runs of every length around the threshold, with and without an AWS key id,
/// between every kind of whitespace: the base64 pass is skipped when no stretch between
/// whitespace bytes is long enough to hold one.
#[test]
fn base64_runs_at_the_threshold_redact_as_before() {
    let alphabet = b"aB3+/xY9zQ";
    for len in 30..50 {
        let run: String = (0..len)
            .map(|n| alphabet[n % alphabet.len()] as char)
            .collect();
        for (before, after) in [
            ("", ""),
            (" ", " "),
            ("\t", "\n"),
            ("x ", " y"),
            ("AKIAABCDEFGHIJKLMNOP ", ""),
            ("", " ASIAABCDEFGHIJKLMNOP"),
            ("AKIAABCDEFGHIJKLMNOP", ""),
            ("a\u{a0}", "\u{2003}b"),
            ("  ", "\r\n"),
        ] {
            same(&format!("{before}{run}{after}"));
            same(&format!("{before}{}{after}", &run[..len / 2]));
            same(&format!(
                "{before}{} {}{after}",
                &run[..len / 2],
                &run[len / 2..]
            ));
        }
    }
}
