//! The driver's cost per call in CPU time, which a busy machine distorts less than the
//! wall-clock medians of `benches/overhead.rs`: the same loopback call to relent-sim's stub
//! (latency 0, always a success) made `N` times through a plain `reqwest::Client` and
//! through `relent_tokio::Client`, alternated in rounds, with the process's CPU time
//! (user + system, every thread: the stub's server side included) read around each round.
//!
//! ```text
//! cargo run --release -p relent-tokio --example overhead_cpu -- 5000 5
//! ```
//!
//! Arguments: calls per round (default 5000) and rounds (default 5). Prints, per round, the
//! CPU microseconds per call of each client, then the medians over rounds and their ratio;
//! also the driver alone (a transport that answers in memory) and plain reqwest sending
//! relent's extra headers (idempotency key and attempt number; every mode sends the JSON
//! content type).
//!
//! With `wall` first (`overhead_cpu wall 500 41`), it measures wall-clock time instead, in
//! paired rounds: see [`wall_clock`].
//!
//! For instruction counts, which the machine's load does not move, set `OVERHEAD_MODE` to
//! `plain`, `relent`, `headers` or `memory` and count one run with 1 call and one with 201
//! under callgrind; the difference over 200 is the cost of one call:
//!
//! ```text
//! OVERHEAD_MODE=relent valgrind --tool=callgrind target/release/examples/overhead_cpu 201
//! ```

use relent::{KeyId, Policy};
use relent_tokio::{
    Api, AttemptRequest, AttemptResult, BodyReader, Client, Endpoint, KeyStore, NextChunk,
    ReqwestTransport, Secret, Transport,
};
use std::hint::black_box;
use std::time::Duration;

const BODY: &[u8] = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

/// A transport that answers every attempt at once, in memory, with a small completion: a
/// call through it costs only the driver's own work.
struct Instant200;

struct OneChunk(Option<Vec<u8>>);

const ANSWER: &[u8] = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}"#;

impl BodyReader for OneChunk {
    fn next_chunk(&mut self) -> NextChunk<'_> {
        let chunk = self.0.take();
        Box::pin(async move { Ok(chunk) })
    }
}

impl Transport for Instant200 {
    fn send(
        &self,
        request: AttemptRequest<'_>,
    ) -> impl std::future::Future<Output = AttemptResult> + Send {
        black_box(request);
        async {
            AttemptResult::Response {
                status: 200,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("x-request-id".into(), "req_1".into()),
                ],
                body: Box::new(OneChunk(Some(ANSWER.to_vec()))),
            }
        }
    }
}

/// The process's CPU time so far (user + system, all threads), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports these in clock ticks of 100 Hz on every common configuration.
    Duration::from_millis(ticks * 10)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A client over `transport` for the stub's one key.
fn client_over<T: Transport>(transport: T, targets: Vec<relent::Target>, url: &str) -> Client<T> {
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new("stub-1"));
    Client::new(
        transport,
        targets,
        vec![Endpoint::new(url, Api::OpenAiCompatible)],
        keys,
        Policy::default(),
    )
    .unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let wall = args.next_if(|a| a == "wall").is_some();
    let calls: u32 = args
        .next()
        .map_or(5000, |a| a.parse().expect("calls per round"));
    let rounds: u32 = args.next().map_or(5, |a| a.parse().expect("rounds"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let schedule: relent_sim::Schedule = serde_json::from_str(r#"{"targets":[{"provider":"openai","model":"gpt-4o","keys":[{"id":1,"label":"k"}]}],"latency_ms":0}"#).unwrap();
    let stub = rt
        .block_on(relent_sim::stub::Stub::start(
            schedule.clone(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let url = format!("{}/v1/chat/completions", stub.base_url());
    let client = client_over(ReqwestTransport::new(), schedule.targets.clone(), &url);
    let in_memory = client_over(Instant200, schedule.targets.clone(), &url);
    let plain = reqwest::Client::new();
    // One call of a kind; `n` numbers it (the idempotency key of `headers`).
    let call = |mode: &str, n: u32| match mode {
        "plain" => rt.block_on(async {
            let response = plain
                .post(&url)
                // As in the benchmark: the content type any JSON client sends.
                .header("content-type", "application/json")
                .header("authorization", "Bearer stub-1")
                .body(BODY)
                .send()
                .await
                .unwrap();
            black_box(response.bytes().await.unwrap());
        }),
        "headers" => rt.block_on(async {
            let response = plain
                .post(&url)
                .header("content-type", "application/json")
                .header("authorization", "Bearer stub-1")
                .header("idempotency-key", format!("relent-99d065db{n:016x}"))
                .header("x-relent-attempt", "1")
                .body(BODY)
                .send()
                .await
                .unwrap();
            black_box(response.bytes().await.unwrap());
        }),
        "relent" => {
            rt.block_on(async { black_box(client.call(BODY).await.unwrap()) });
        }
        "memory" => {
            rt.block_on(async { black_box(in_memory.call(BODY).await.unwrap()) });
        }
        other => panic!("unknown OVERHEAD_MODE {other}"),
    };
    // Only that loop, for an instruction count under `valgrind --tool=callgrind` (subtract
    // a run with 1 call from one with 201).
    if let Ok(mode) = std::env::var("OVERHEAD_MODE") {
        for n in 0..calls {
            call(&mode, n);
        }
        return;
    }
    if wall {
        return wall_clock(&call, calls, rounds);
    }
    // CPU microseconds per call of `count` calls of a kind.
    let cpu_per_call = |mode: &str, count: u32| {
        let before = cpu_time();
        for n in 0..count {
            call(mode, n);
        }
        (cpu_time() - before).as_secs_f64() * 1e6 / f64::from(count)
    };
    // Warm both connections and code paths.
    for n in 0..200 {
        call("plain", n);
        call("relent", n);
    }
    let (mut plain_us, mut relent_us) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let p = cpu_per_call("plain", calls);
        let r = cpu_per_call("relent", calls);
        println!("round {round}: plain {p:.1} µs CPU per call, relent {r:.1} µs");
        plain_us.push(p);
        relent_us.push(r);
    }
    let memory_us = (0..rounds)
        .map(|_| cpu_per_call("memory", calls * 10))
        .collect();
    println!(
        "relent over an in-memory transport (the driver alone): median {:.2} µs CPU per call",
        median(memory_us)
    );
    let headers_us = (0..rounds)
        .map(|_| cpu_per_call("headers", calls))
        .collect();
    println!(
        "plain reqwest with relent's headers: median {:.1} µs CPU per call",
        median(headers_us)
    );
    let (p, r) = (median(plain_us), median(relent_us));
    println!(
        "median: plain {p:.1} µs, relent {r:.1} µs, difference {:.1} µs, ratio {:.3}",
        r - p,
        r / p
    );
}

/// Wall-clock time, paired: each round times `calls` plain calls and `calls` relent calls
/// back to back (in A-B then B-A order on alternate rounds, so a drift in the machine's speed
/// weighs on both alike), and the ratio is taken within the round. Prints the median of the
/// rounds' ratios with its quartiles, and the median difference per call.
fn wall_clock(call: &dyn Fn(&str, u32), calls: u32, rounds: u32) {
    let time = |mode: &str| {
        let start = std::time::Instant::now();
        for n in 0..calls {
            call(mode, n);
        }
        start.elapsed().as_secs_f64() * 1e6 / f64::from(calls)
    };
    for n in 0..200 {
        call("plain", n);
        call("relent", n);
    }
    let (mut ratios, mut differences) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (p, r) = if round % 2 == 0 {
            let p = time("plain");
            (p, time("relent"))
        } else {
            let r = time("relent");
            (time("plain"), r)
        };
        ratios.push(r / p);
        differences.push(r - p);
    }
    let quartile = |v: &[f64], q: usize| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[(v.len() - 1) * q / 4]
    };
    println!(
        "wall clock, {rounds} paired rounds of {calls} calls: ratio median {:.3} (quartiles {:.3}-{:.3}), difference median {:.1} µs per call",
        quartile(&ratios, 2),
        quartile(&ratios, 1),
        quartile(&ratios, 3),
        quartile(&differences, 2),
    );
}
