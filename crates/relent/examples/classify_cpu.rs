//! Classifies every HTTP case of a corpus file many times, or parses every body into a
//! `serde_json::Value` (the floor), and prints the time per case. Run it under
//! `perf stat -e task-clock` to read CPU time rather than wall time on a busy machine:
//!
//! ```text
//! cargo build --release -p relent --example classify_cpu
//! perf stat -e task-clock target/release/examples/classify_cpu classify 400
//! perf stat -e task-clock target/release/examples/classify_cpu floor 400
//! ```
//!
//! Arguments: the mode (`classify` or `floor`), the number of passes (default 200) and the
//! corpus file (default `crates/relent/tests/corpus/cases.jsonl`).

use relent::classify::{classify, HttpResponse, Observation, Provider};
use std::hint::black_box;
use std::time::Instant;

struct Case {
    provider: Provider,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn load(path: &str) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut cases = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{path} line {}: {e}", n + 1))?;
        let Some(status) = v.get("status").and_then(|s| s.as_u64()) else {
            continue; // a transport-error case: nothing to classify from bytes
        };
        let provider: Provider = serde_json::from_value(v["provider"].clone())
            .map_err(|e| format!("{path} line {}: {e}", n + 1))?;
        let headers = match v.get("headers") {
            Some(serde_json::Value::Object(m)) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect(),
            Some(serde_json::Value::Array(pairs)) => pairs
                .iter()
                .filter_map(|p| Some((p.get(0)?.as_str()?.into(), p.get(1)?.as_str()?.into())))
                .collect(),
            _ => Vec::new(),
        };
        let body = v.get("body").and_then(|b| b.as_str()).unwrap_or("").into();
        cases.push(Case {
            provider,
            status: u16::try_from(status).map_err(|e| format!("line {}: {e}", n + 1))?,
            headers,
            body,
        });
    }
    Ok(cases)
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "classify".into());
    let passes: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let path = args
        .next()
        .unwrap_or_else(|| "crates/relent/tests/corpus/cases.jsonl".into());
    let cases = load(&path)?;
    let prepared: Vec<(&Case, Vec<(&str, &str)>)> = cases
        .iter()
        .map(|c| {
            let headers = c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            (c, headers.collect())
        })
        .collect();
    let start = Instant::now();
    for _ in 0..passes {
        for (case, headers) in &prepared {
            match mode.as_str() {
                "floor" => {
                    let parsed = serde_json::from_slice::<serde_json::Value>(case.body.as_bytes());
                    black_box(parsed.ok());
                }
                "classify" => {
                    let seen = Observation::Http(HttpResponse {
                        status: case.status,
                        headers,
                        body: case.body.as_bytes(),
                    });
                    black_box(classify(case.provider, &seen, Some(1_790_000_000_000)));
                }
                other => return Err(format!("unknown mode {other:?}: use classify or floor")),
            }
        }
    }
    let elapsed = start.elapsed();
    let per_case = elapsed.as_secs_f64() * 1e6 / (passes * prepared.len()).max(1) as f64;
    println!(
        "{mode}: {} cases x {passes} passes in {elapsed:?}: {per_case:.3} µs per case (wall)",
        prepared.len()
    );
    Ok(())
}
