//! Redis slow, then gone, then back empty: calls never wait on it, and what was learned
//! meanwhile reaches the fleet once it returns.
//!
//! The world: a real redis-server; a stub provider whose key 1 is dead (401) and key 2
//! works; two clients A and B (separate pools, separate Redis connections: two processes
//! as far as Redis can tell) in one namespace, with a 100 ms store timeout and a 200 ms
//! re-read period.
//!
//! What must happen:
//! - with Redis frozen (SIGSTOP: connections open, nothing answered), A's call finds the
//!   dead key, revokes it and succeeds with key 2, in far less than a second (no store
//!   operation on the call's path), and A reports the store unhealthy;
//! - Redis is then killed and started again, empty, on the same port: A's link notices,
//!   writes the revocation it learned during the outage, and B reads it;
//! - B, which made no call during the outage, never sends with key 1;
//! - Redis then loses its data without dropping a connection (`FLUSHALL`, as an operator
//!   or a failover to an empty replica might): the processes find their markers gone at
//!   their next read and write what they know again, so a client started afterwards, C,
//!   never sends with key 1 either.
//!
//! Why: a store outage must never block or fail a call (issue #19, "Faults"), and the news
//! of the outage must not be lost when Redis comes back without its data.

mod support;

use relent::KeyId;
use relent_redis::{RedisStore, RedisStoreConfig};
use relent_tokio::store::StoreOptions;
use relent_tokio::{Client, ReqwestTransport};
use std::time::{Duration, Instant};
use support::{eventually, schedule, sends, store_client, RedisServer};

fn client(redis_url: &str, stub_url: &str) -> Client<ReqwestTransport> {
    let store = RedisStore::new(
        RedisStoreConfig::new(redis_url, "outage").connect_timeout(Duration::from_millis(100)),
    )
    .unwrap();
    store_client(
        stub_url,
        store,
        StoreOptions::new()
            .op_timeout(Duration::from_millis(100))
            .reread_every(Duration::from_millis(200)),
    )
}

const BODY: &[u8] = br#"{"model": "gpt-4o", "messages": []}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_never_holds_up_a_call_and_its_news_is_written_when_redis_returns() {
    let Some(mut redis) = RedisServer::start(None) else {
        return;
    };
    let stub = relent_sim::stub::Stub::start(
        schedule(r#"[{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}]"#),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let a = client(&redis.url(), &stub.base_url());
    let b = client(&redis.url(), &stub.base_url());
    assert!(a.flush_store(Duration::from_secs(5)).await);
    assert!(b.flush_store(Duration::from_secs(5)).await);

    // Redis freezes. A's call runs on its local pool.
    redis.pause();
    let started = Instant::now();
    let done = a.call(BODY).await.unwrap();
    let took = started.elapsed();
    assert_eq!(done.status, 200);
    let dead_sends = sends(&stub, 1);
    assert!(dead_sends >= 1);
    assert_eq!(done.attempts as usize, dead_sends + 1);
    assert!(
        took < Duration::from_millis(500),
        "the call waited on Redis: {took:?}"
    );
    assert!(!a.flush_store(Duration::from_millis(300)).await);
    assert_eq!(a.store_healthy(), Some(false));

    // Redis dies and comes back empty.
    tokio::task::block_in_place(|| redis.restart());
    let key = "relent:{outage}:key:1";
    let back = tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(5), "A writes what it learned", || {
            redis.hget(key, "revoked").is_some()
        })
    });
    eprintln!("A's revocation was in Redis {back:?} after the restart");
    assert!(a.flush_store(Duration::from_secs(2)).await);
    tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(2), "B reads it", || {
            b.pool().state(KeyId(1)) == relent::KeyState::Revoked
        })
    });

    for _ in 0..3 {
        assert_eq!(b.call(BODY).await.unwrap().attempts, 1);
    }
    assert_eq!(sends(&stub, 1), dead_sends, "B sent with the key A revoked");
    assert_eq!(sends(&stub, 2), 1 + 3);
    assert_eq!(b.store_healthy(), Some(true));

    // Redis forgets everything, connections stay up; A and B still know, and say it again.
    tokio::task::block_in_place(|| {
        let mut con = redis.connection().unwrap();
        let () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
        assert_eq!(redis.hget(key, "revoked"), None);
        eventually(
            Duration::from_secs(5),
            "the fleet rewrites what it knew",
            || redis.hget(key, "revoked").is_some(),
        )
    });
    let c = client(&redis.url(), &stub.base_url());
    for _ in 0..2 {
        assert_eq!(c.call(BODY).await.unwrap().attempts, 1);
    }
    assert_eq!(
        sends(&stub, 1),
        dead_sends,
        "C sent with the key the fleet knew was dead"
    );
}
