//! Classifier cost over the whole corpus: the median time per classification, the floor (one
//! `serde_json::Value` parse of the same bodies), and per KiB on a large body (to show the scan
//! bound at work).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use relent::classify::{classify, HttpResponse, Observation, Provider, VerdictCache};
use std::hint::black_box;

struct Case {
    provider: Provider,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn corpus() -> Vec<Case> {
    include_str!("../tests/corpus/cases.jsonl")
        .lines()
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let status = v.get("status")?.as_u64()? as u16;
            let provider = serde_json::from_value(v.get("provider")?.clone()).ok()?;
            let headers = match v.get("headers") {
                Some(serde_json::Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect(),
                Some(serde_json::Value::Array(pairs)) => pairs
                    .iter()
                    .filter_map(|p| {
                        Some((
                            p.get(0)?.as_str()?.to_string(),
                            p.get(1)?.as_str()?.to_string(),
                        ))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let body = v
                .get("body")
                .and_then(|b| b.as_str())
                .unwrap_or("")
                .to_string();
            Some(Case {
                provider,
                status,
                headers,
                body,
            })
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let cases = corpus();
    type Prepared<'a> = (Provider, u16, Vec<(&'a str, &'a str)>, &'a [u8]);
    let prepared: Vec<Prepared> = cases
        .iter()
        .map(|c| {
            (
                c.provider,
                c.status,
                c.headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
                c.body.as_bytes(),
            )
        })
        .collect();
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(prepared.len() as u64));
    // The floor: one `serde_json::Value` parse of each body, the least a JSON-reading
    // classifier could do. `docs/BENCHMARKS.md` reports the corpus time against it.
    group.bench_function("floor_value_parse", |b| {
        b.iter(|| {
            for (_, _, _, body) in &prepared {
                black_box(serde_json::from_slice::<serde_json::Value>(black_box(body)).ok());
            }
        })
    });
    group.bench_function("corpus", |b| {
        b.iter(|| {
            for (provider, status, headers, body) in &prepared {
                black_box(classify(
                    *provider,
                    &Observation::Http(HttpResponse {
                        status: *status,
                        headers,
                        body,
                    }),
                    Some(1_790_000_000_000),
                ));
            }
        })
    });
    let typical = br#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    group.throughput(Throughput::Elements(1));
    group.bench_function("typical_openai_429", |b| {
        let headers = [
            ("retry-after", "1"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "120ms"),
        ];
        b.iter(|| {
            black_box(classify(
                Provider::Openai,
                &Observation::Http(HttpResponse {
                    status: 429,
                    headers: &headers,
                    body: typical,
                }),
                None,
            ))
        })
    });
    // The same 429 through a `VerdictCache` whose slot holds its body, with a wait that
    // changes from one response to the next (as a storm of 429s brings): a hit.
    group.bench_function("typical_openai_429_kept", |b| {
        let waits: Vec<String> = (0..64).map(|n| format!("{}ms", 100 + n)).collect();
        let mut cache = VerdictCache::new(16);
        let mut n = 0;
        b.iter(|| {
            n = (n + 1) % waits.len();
            let headers = [
                ("retry-after", "1"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", waits[n].as_str()),
            ];
            let seen = Observation::Http(HttpResponse {
                status: 429,
                headers: &headers,
                body: typical,
            });
            black_box(
                cache
                    .classify(Provider::Openai, &seen, None)
                    .classification()
                    .reason,
            )
        })
    });
    group.bench_function("success_200", |b| {
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how can I help?"},"finish_reason":"stop"}]}"#;
        b.iter(|| black_box(classify(Provider::Openai, &Observation::Http(HttpResponse { status: 200, headers: &[], body }), None)))
    });
    for kib in [1usize, 16, 64, 1024] {
        let body = format!(
            "<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
            "x".repeat(kib * 1024)
        );
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("html_502_body", format!("{kib}KiB")),
            &body,
            |b, body| {
                b.iter(|| {
                    black_box(classify(
                        Provider::Generic,
                        &Observation::Http(HttpResponse {
                            status: 502,
                            headers: &[],
                            body: body.as_bytes(),
                        }),
                        None,
                    ))
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
