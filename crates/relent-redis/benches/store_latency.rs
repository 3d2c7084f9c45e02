//! What a Redis store adds: per call (a client with the store against one without, on a
//! loopback stub provider) and per store operation (a write and a read of two keys over
//! loopback), with Redis up and with Redis down (a closed port).
//!
//! Needs redis-server on PATH (it is started here on a free port and killed at the end).
//! Run: `cargo bench -p relent-redis --bench store_latency`.

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use relent::KeyId;
use relent_redis::{RedisStore, RedisStoreConfig};
use relent_tokio::store::{KeyReport, ReportKind, Store, StoreOptions};
use relent_tokio::{Client, Endpoint, KeyStore, ReqwestTransport, Secret};
use std::time::Duration;

const BODY: &[u8] = br#"{"model": "gpt-4o", "messages": []}"#;

fn client(stub_url: &str, store: Option<RedisStore>) -> Client<ReqwestTransport> {
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new("stub-1"));
    keys.insert(KeyId(2), Secret::new("stub-2"));
    let mut builder = Client::builder(ReqwestTransport::new())
        .target(
            support::schedule("[]").targets.remove(0),
            Endpoint::openai(format!("{stub_url}/v1/chat/completions")),
        )
        .keys(keys)
        .seed(1);
    if let Some(store) = store {
        builder = builder
            .store(store)
            .store_options(StoreOptions::new().op_timeout(Duration::from_millis(50)));
    }
    builder.build().unwrap()
}

fn bench(c: &mut Criterion) {
    let Some(redis) = support::RedisServer::start(None) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut schedule = support::schedule("[]");
    schedule.latency_ms = 0;
    let stub = rt
        .block_on(relent_sim::stub::Stub::start(
            schedule,
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let url = redis.url();
    let (plain, fleet, down, store) = rt.block_on(async {
        let store = |url: &str| RedisStore::new(RedisStoreConfig::new(url, "bench")).unwrap();
        let plain = client(&stub.base_url(), None);
        let fleet = client(&stub.base_url(), Some(store(&url)));
        let down = client(&stub.base_url(), Some(store("redis://127.0.0.1:1")));
        // The first call of a store client waits for its first read; take it out here.
        for c in [&plain, &fleet, &down] {
            c.call(BODY).await.unwrap();
        }
        (plain, fleet, down, store(&url))
    });

    let mut group = c.benchmark_group("per_call");
    group.bench_function("no_store", |b| {
        b.iter(|| rt.block_on(async { plain.call(BODY).await.unwrap() }))
    });
    group.bench_function("redis_loopback", |b| {
        b.iter(|| rt.block_on(async { fleet.call(BODY).await.unwrap() }))
    });
    group.bench_function("redis_down", |b| {
        b.iter(|| rt.block_on(async { down.call(BODY).await.unwrap() }))
    });
    group.finish();

    let reports = [
        KeyReport {
            key: KeyId(1),
            kind: ReportKind::CoolingFor(Duration::from_secs(30)),
            seen_ago: Duration::ZERO,
        },
        KeyReport {
            key: KeyId(2),
            kind: ReportKind::Revoked,
            seen_ago: Duration::ZERO,
        },
    ];
    let keys = [KeyId(1), KeyId(2)];
    let mut group = c.benchmark_group("store_op_loopback");
    group.bench_function("write_2_reports", |b| {
        b.iter(|| rt.block_on(async { store.write(&reports).await.unwrap() }))
    });
    group.bench_function("read_2_keys", |b| {
        b.iter(|| rt.block_on(async { store.read(&keys).await.unwrap() }))
    });
    group.finish();
    drop(redis);
}

criterion_group!(benches, bench);
criterion_main!(benches);
