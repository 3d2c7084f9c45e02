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

/// One input object: `{"provider", "status", "headers", "body"}` or
/// `{"provider", "transport_error"}`. Headers are an object or a list of pairs.
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
        let mut failures = 0;
        for (n, line) in stdin.lock().lines().enumerate() {
            let line = line.map_err(|e| format!("reading stdin: {e}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let result = serde_json::from_str::<Input>(&line)
                .map_err(|e| format!("line {}: {e}", n + 1))
                .and_then(|input| classify_input(input, provider_flag, args.now_unix_ms));
            let text = match result {
                Ok(value) => value.to_string(),
                Err(error) => {
                    failures += 1;
                    serde_json::json!({ "error": error }).to_string()
                }
            };
            writeln!(out, "{text}").map_err(|e| e.to_string())?;
        }
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
    println!(
        "{}",
        serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
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
    let body = match input.body {
        Body::None => String::new(),
        Body::Text(text) => text,
        Body::Json(value) => value.to_string(),
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
            body: body.as_bytes(),
        }),
        (Some(_), Some(_)) => {
            return Err("give either `status` or `transport_error`, not both".into())
        }
        (None, None) => return Err("missing `status` (or `transport_error`)".into()),
    };
    let c = classify(provider, &observation, now_unix_ms);
    serde_json::to_value(c).map_err(|e| e.to_string())
}
