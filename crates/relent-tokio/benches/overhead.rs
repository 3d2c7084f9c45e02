//! The driver's overhead per call: a call through relent's client against a plain reqwest
//! call, both to the stub provider on loopback (latency 0, always success), same process,
//! same run. The ratio of the medians is the cost of relent's decisions and bookkeeping.
//! Both send the same request: the body, the bearer key and the JSON content type; relent
//! adds its idempotency key and attempt number, which count as its overhead.

use criterion::{criterion_group, criterion_main, Criterion};
use relent::{KeyId, Policy};
use relent_tokio::{Api, Client, Endpoint, KeyStore, ReqwestTransport, Secret};
use std::hint::black_box;

const BODY: &[u8] = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

fn bench(c: &mut Criterion) {
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
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new("stub-1"));
    let client = Client::new(
        ReqwestTransport::new(),
        schedule.targets.clone(),
        vec![Endpoint::new(url.clone(), Api::OpenAiCompatible)],
        keys,
        Policy::default(),
    )
    .unwrap();
    let plain = reqwest::Client::new();

    let mut group = c.benchmark_group("driver_overhead");
    group.bench_function("plain_reqwest", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = plain
                    .post(&url)
                    // What any program posting JSON to an LLM API sends (reqwest's own
                    // `RequestBuilder::json` sets it too), and relent sends.
                    .header("content-type", "application/json")
                    .header("authorization", "Bearer stub-1")
                    .body(BODY)
                    .send()
                    .await
                    .unwrap();
                black_box(response.bytes().await.unwrap());
            })
        })
    });
    group.bench_function("relent_client", |b| {
        b.iter(|| rt.block_on(async { black_box(client.call(BODY).await.unwrap()) }))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
