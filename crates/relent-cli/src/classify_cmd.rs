//! `relent classify`: one response from flags or stdin JSON, or many with `--jsonl`.

use relent::{classify, HttpResponse, Observation, Provider, TransportError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The provider (openai, azure, anthropic, gemini, vertex, bedrock, deepseek, mistral,
    /// groq, xai, openrouter, generic). Overrides the JSON's `provider`.
    #[arg(long)]
    provider: Option<String>,
    /// The HTTP status. With --status, the response comes from flags instead of stdin.
    #[arg(long)]
    status: Option<u16>,
    /// A header as `name: value`; repeatable.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// The body text.
    #[arg(long, default_value = "")]
    body: String,
    /// A transport error instead of a response (timeout, connect_refused, dns, reset,
    /// tls_handshake, tls_certificate, other).
    #[arg(long, conflicts_with = "status")]
    transport_error: Option<String>,
    /// Read one JSON object per line from stdin and write one result per line.
    #[arg(long)]
    jsonl: bool,
    /// The caller's wall clock in Unix milliseconds, for absolute reset times.
    #[arg(long)]
    now_unix_ms: Option<u64>,
}

/// One input object: `{"provider", "status", "headers", "body"}` (or `"body_base64"` for raw
/// bytes) or `{"provider", "transport_error"}`. Headers are an object or a list of pairs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    headers: Headers,
    #[serde(default)]
    body: Body,
    /// The body as base64 (standard or URL-safe alphabet, padding optional), for bytes that
    /// are not UTF-8 text.
    #[serde(default)]
    body_base64: Option<String>,
    #[serde(default)]
    transport_error: Option<TransportError>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Headers {
    #[default]
    None,
    Map(BTreeMap<String, String>),
    Pairs(Vec<(String, String)>),
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Body {
    #[default]
    None,
    Text(String),
    Json(serde_json::Value),
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    let provider_flag = args
        .provider
        .as_deref()
        .map(str::parse::<Provider>)
        .transpose()
        .map_err(|e| e.to_string())?;
    if args.jsonl {
        let stdin = std::io::stdin();
        let mut out = std::io::stdout().lock();
        let failures = run_jsonl(stdin.lock(), &mut out, provider_flag, args.now_unix_ms)?;
        return Ok(if failures == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let input = if args.status.is_some() || args.transport_error.is_some() {
        let transport_error = args
            .transport_error
            .as_deref()
            .map(|t| {
                serde_json::from_value::<TransportError>(serde_json::Value::String(t.to_string()))
                    .map_err(|_| format!("unknown transport error {t:?}"))
            })
            .transpose()?;
        let headers = args
            .headers
            .iter()
            .map(|h| {
                h.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| format!("header {h:?} is not `name: value`"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Input {
            provider: None,
            status: args.status,
            headers: Headers::Pairs(headers),
            body: Body::Text(args.body.clone()),
            body_base64: None,
            transport_error,
        }
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading stdin: {e}"))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("stdin is not a response object ({e}); see docs/cli.md"))?
    };
    let value = classify_input(input, provider_flag, args.now_unix_ms)?;
    outln!(
        "{}",
        serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}

/// Classifies one JSON object per line of `input`, writing one result per line to `out`.
/// A line that is not UTF-8, not JSON or not a valid response gets an `{"error": …}` line
/// of its own, and the lines after it are still classified. Returns how many lines failed.
fn run_jsonl(
    mut input: impl BufRead,
    out: &mut impl Write,
    provider_flag: Option<Provider>,
    now_unix_ms: Option<u64>,
) -> Result<usize, String> {
    let mut failures = 0;
    let mut raw = Vec::new();
    for n in 1.. {
        raw.clear();
        let read = input
            .read_until(b'\n', &mut raw)
            .map_err(|e| format!("reading stdin: {e}"))?;
        if read == 0 {
            break;
        }
        let result = match std::str::from_utf8(&raw) {
            Err(e) => Err(format!(
                "line {n}: not valid UTF-8 (at byte {}); give raw bytes as `body_base64`",
                e.valid_up_to()
            )),
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => serde_json::from_str::<Input>(line)
                .map_err(|e| format!("line {n}: {e}"))
                .and_then(|input| {
                    classify_input(input, provider_flag, now_unix_ms)
                        .map_err(|e| format!("line {n}: {e}"))
                }),
        };
        let text = match result {
            Ok(value) => value.to_string(),
            Err(error) => {
                failures += 1;
                serde_json::json!({ "error": crate::scrub(&error) }).to_string()
            }
        };
        if let Err(error) = writeln!(out, "{text}") {
            crate::out::end(&error);
        }
    }
    Ok(failures)
}

/// Decodes base64 in the standard or the URL-safe alphabet; padding is optional and ASCII
/// whitespace is ignored.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let mut buffer = 0u32;
    let mut bits = 0u32;
    let mut padding = 0usize;
    for (at, c) in text.bytes().enumerate() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => continue,
            _ => return Err(format!("body_base64: not base64 at byte {at}")),
        };
        if padding > 0 {
            return Err(format!("body_base64: data after padding at byte {at}"));
        }
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // What is left must be the zero bits of a partial group: 2 or 4 of them.
    if bits >= 6 || buffer != 0 || padding > 2 {
        return Err("body_base64: truncated or badly padded".into());
    }
    Ok(out)
}

fn classify_input(
    input: Input,
    provider_flag: Option<Provider>,
    now_unix_ms: Option<u64>,
) -> Result<serde_json::Value, String> {
    let provider = match (provider_flag, input.provider.as_deref()) {
        (Some(p), _) => p,
        (None, Some(name)) => name
            .parse()
            .map_err(|e: relent::classify::UnknownProvider| e.to_string())?,
        (None, None) => Provider::Generic,
    };
    let headers: Vec<(String, String)> = match input.headers {
        Headers::None => Vec::new(),
        Headers::Map(map) => map.into_iter().collect(),
        Headers::Pairs(pairs) => pairs,
    };
    let body: Vec<u8> = match (input.body, input.body_base64) {
        (Body::None, Some(encoded)) => decode_base64(&encoded)?,
        (_, Some(_)) => return Err("give either `body` or `body_base64`, not both".into()),
        (Body::None, None) => Vec::new(),
        (Body::Text(text), None) => text.into_bytes(),
        (Body::Json(value), None) => value.to_string().into_bytes(),
    };
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let observation = match (input.transport_error, input.status) {
        (Some(kind), None) => Observation::Transport(kind),
        (None, Some(status)) => Observation::Http(HttpResponse {
            status,
            headers: &pairs,
            body: &body,
        }),
        (Some(_), Some(_)) => {
            return Err("give either `status` or `transport_error`, not both".into())
        }
        (None, None) => return Err("missing `status` (or `transport_error`)".into()),
    };
    let c = classify(provider, &observation, now_unix_ms);
    serde_json::to_value(c).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonl(input: &[u8]) -> (Vec<serde_json::Value>, usize) {
        let mut out = Vec::new();
        let failures = run_jsonl(input, &mut out, None, None).unwrap();
        let lines = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines, failures)
    }

    #[test]
    fn a_line_that_is_not_utf8_gets_an_error_and_the_rest_are_classified() {
        let mut input = Vec::new();
        input.extend_from_slice(br#"{"provider":"openai","status":429,"body":"slow down"}"#);
        input.extend_from_slice(
            b"\n{\"provider\":\"openai\",\"status\":500,\"body\":\"\xff\xfe\"}\n",
        );
        input.extend_from_slice(b"\n");
        input.extend_from_slice(br#"{"provider":"anthropic","status":529}"#);
        let (lines, failures) = jsonl(&input);
        assert_eq!(failures, 1);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0]["reason"], "rate_limited");
        let error = lines[1]["error"].as_str().unwrap();
        assert!(error.starts_with("line 2: not valid UTF-8"), "{error}");
        assert_eq!(lines[2]["reason"], "overloaded");
    }

    #[test]
    fn an_error_line_never_echoes_a_key() {
        // Canaries made up here, each quoted back by a different refusal: an unknown
        // provider, an unknown field, a status of the wrong type, an unknown transport error.
        let keys = [
            "sk-proj-Qx7Lm2Np9Rt4Vw8Yz3Bc6Df1Gh5Jk0",
            "AIzaSyQ7m2N9r4T8w3Y6c1F5h0KjLpXvBnMzQa",
            "gsk_Tq8Wm3Np7Rx2Vz6Bc9Df4Gh1Jk5Lm0PsYw",
            "xai-Hn4Qp8Rt2Vw6Yz1Bc5Df9Gh3Jk7Lm0NsPw",
        ];
        let lines = [
            format!(r#"{{"provider":"{}","status":401}}"#, keys[0]),
            format!(r#"{{"provider":"openai","status":401,"{}":1}}"#, keys[1]),
            format!(r#"{{"provider":"openai","status":"{}"}}"#, keys[2]),
            format!(r#"{{"provider":"openai","transport_error":"{}"}}"#, keys[3]),
        ];
        let (out, failures) = jsonl(lines.join("\n").as_bytes());
        assert_eq!(failures, 4, "{out:?}");
        for (line, key) in out.iter().zip(keys) {
            let text = line.to_string();
            assert!(line["error"].is_string(), "{text}");
            for start in 0..=key.len() - 12 {
                assert!(
                    !text.contains(&key[start..start + 12]),
                    "{key} leaked in {text}"
                );
            }
        }
    }

    #[test]
    fn raw_bytes_are_classified_from_base64() {
        // A Gemini 429 whose message holds a byte that is not UTF-8: no JSON string can
        // carry it, base64 can.
        let body = b"{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted \xff\",\"status\":\"RESOURCE_EXHAUSTED\"}}";
        let encoded = encode(body);
        let line = format!(r#"{{"provider":"gemini","status":429,"body_base64":"{encoded}"}}"#);
        let (lines, failures) = jsonl(line.as_bytes());
        assert_eq!(failures, 0, "{lines:?}");
        assert_eq!(lines[0]["code"], "RESOURCE_EXHAUSTED", "{lines:?}");
        assert_eq!(
            lines[0]["message"], "Resource has been exhausted \u{fffd}",
            "{lines:?}"
        );

        let both = r#"{"status":500,"body":"x","body_base64":"eA=="}"#;
        let (lines, failures) = jsonl(both.as_bytes());
        assert_eq!(failures, 1);
        assert!(lines[0]["error"].as_str().unwrap().contains("not both"));
    }

    /// A plain encoder for the tests, written the obvious way (three bytes to four
    /// characters), to check the decoder against.
    fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn base64_decodes_both_alphabets_with_or_without_padding() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8 ^ 0xa5).collect();
            let encoded = encode(&bytes);
            assert_eq!(decode_base64(&encoded).unwrap(), bytes, "{encoded}");
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(decode_base64(unpadded).unwrap(), bytes);
            let url_safe = encoded.replace('+', "-").replace('/', "_");
            assert_eq!(decode_base64(&url_safe).unwrap(), bytes);
        }
        assert_eq!(decode_base64("aGVs\nbG8=").unwrap(), b"hello");
        for bad in ["a", "aGVsbG8=x", "aGV*", "aGVsbG9===", "aGVsbG9"] {
            assert!(decode_base64(bad).is_err(), "{bad}");
        }
    }
}
