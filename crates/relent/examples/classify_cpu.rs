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
//!
//! Two modes measure each case on its own, for the *median per case* that issue #16 names
//! (the mean over the corpus is dominated by its few large bodies):
//!
//! * `median REPS [ROUNDS]`: for every case, classify it `REPS` times in a row and parse its
//!   body `REPS` times in a row, timed separately, `ROUNDS` times (default 7), alternating;
//!   a case's time is the smallest round divided by `REPS` (the least disturbed by other
//!   processes). Prints the median and the mean over the cases of both, and their ratios.
//! * `percase MODE REPS`: for every case, calls `measure_case` once, which classifies the
//!   case (or parses its body, with `MODE` = `floor`) `REPS` times. Run under callgrind so
//!   that each call is counted on its own:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*measure_case*' --dump-after='*measure_case*' \
//!     --callgrind-out-file=/tmp/cg/classify.%p target/release/examples/classify_cpu percase classify 10
//! ```
//!
//!   Each dump file then holds one case's count (`totals:`), in corpus order; divided by
//!   `REPS` it is the instructions per classification of that case. Every case is classified
//!   (or parsed) once before, outside `measure_case`, so one-time costs are not counted.

use relent::classify::{classify, HttpResponse, Observation, Provider};
use std::hint::black_box;
use std::time::Instant;

struct Case {
    provider: Provider,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// The corpus read when no file is named.
const CORPUS: &str = "crates/relent/tests/corpus/cases.jsonl";

/// Each case with its headers borrowed as the classifier takes them.
fn prepare(cases: &[Case]) -> Vec<(&Case, Vec<(&str, &str)>)> {
    cases
        .iter()
        .map(|c| {
            let headers = c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            (c, headers.collect())
        })
        .collect()
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

/// Classifies `case` (or parses its body, with `floor`) `reps` times. Never inlined, so that
/// callgrind can count each call on its own (see the module docs).
#[inline(never)]
fn measure_case(floor: bool, case: &Case, headers: &[(&str, &str)], reps: usize) {
    for _ in 0..reps {
        run_once(floor, case, headers);
    }
}

#[inline(always)]
fn run_once(floor: bool, case: &Case, headers: &[(&str, &str)]) {
    if floor {
        let parsed = serde_json::from_slice::<serde_json::Value>(black_box(case.body.as_bytes()));
        black_box(parsed.ok());
    } else {
        let seen = Observation::Http(HttpResponse {
            status: case.status,
            headers,
            body: black_box(case.body.as_bytes()),
        });
        black_box(classify(case.provider, &seen, Some(1_790_000_000_000)));
    }
}

/// The median of `values` (the mean of the two middle ones for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The `median` mode: per-case times in nanoseconds, the smallest of `rounds` rounds of
/// `reps` runs each, for the classifier and the floor.
fn per_case_times(prepared: &[(&Case, Vec<(&str, &str)>)], reps: usize, rounds: usize) {
    let mut classifier = Vec::with_capacity(prepared.len());
    let mut floor = Vec::with_capacity(prepared.len());
    let mut ratios = Vec::with_capacity(prepared.len());
    for (case, headers) in prepared {
        let mut best = [f64::INFINITY; 2];
        for _ in 0..rounds {
            for (slot, is_floor) in [(0, false), (1, true)] {
                let start = Instant::now();
                for _ in 0..reps {
                    run_once(is_floor, case, headers);
                }
                let ns = start.elapsed().as_secs_f64() * 1e9 / reps as f64;
                best[slot] = best[slot].min(ns);
            }
        }
        classifier.push(best[0]);
        floor.push(best[1]);
        ratios.push(best[0] / best[1]);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (mean_c, mean_f) = (mean(&classifier), mean(&floor));
    let (median_c, median_f) = (median(&mut classifier), median(&mut floor));
    println!(
        "{} cases, {reps} runs x {rounds} rounds each, smallest round per case (wall)",
        prepared.len()
    );
    println!("classifier: median {median_c:.1} ns, mean {mean_c:.1} ns per case");
    println!("floor:      median {median_f:.1} ns, mean {mean_f:.1} ns per case");
    println!(
        "ratio of medians {:.2}, ratio of means {:.2}, median of per-case ratios {:.2}",
        median_c / median_f,
        mean_c / mean_f,
        median(&mut ratios)
    );
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "classify".into());
    if mode == "median" || mode == "percase" {
        let sub = if mode == "percase" {
            args.next().unwrap_or_else(|| "classify".into())
        } else {
            String::new()
        };
        let reps: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
        let rounds: usize = if mode == "median" {
            args.next().and_then(|s| s.parse().ok()).unwrap_or(7)
        } else {
            0
        };
        let path = args.next().unwrap_or_else(|| CORPUS.into());
        let cases = load(&path)?;
        let prepared = prepare(&cases);
        if mode == "median" {
            per_case_times(&prepared, reps, rounds);
            return Ok(());
        }
        let floor = match sub.as_str() {
            "floor" => true,
            "classify" => false,
            other => return Err(format!("unknown mode {other:?}: use classify or floor")),
        };
        for (case, headers) in &prepared {
            run_once(floor, case, headers);
        }
        for (case, headers) in &prepared {
            measure_case(floor, case, headers, reps);
        }
        return Ok(());
    }
    let passes: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let path = args.next().unwrap_or_else(|| CORPUS.into());
    let cases = load(&path)?;
    let prepared = prepare(&cases);
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
