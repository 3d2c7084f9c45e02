//! What Redis holds after processes report in any order, and in whose time.
//!
//! The world: a real redis-server and two stores in one namespace (two processes, as far
//! as Redis can tell), writing reports straight through the `Store` trait.
//!
//! What must happen: a later cooldown wins over an earlier one whichever is written
//! first; a revocation stays through a cooldown and until a restore; news seen before the
//! last restore is dropped; a removal stays through a restore; waits are stored as Redis
//! server time (`TIME`) plus the reported duration, so a writer's clock plays no part (the
//! report carries no clock at all, and what the other store reads is the same duration);
//! every hash has a TTL (the wait's end, or the memory period for a revocation).
//!
//! Why: the fleet's merges must be monotone and atomic (Lua), and a host whose clock is
//! off must neither shorten nor lengthen a wait (issue #19, "Time across hosts").

mod support;

use relent::KeyId;
use relent_redis::{RedisStore, RedisStoreConfig};
use relent_tokio::store::{KeyReport, ReportKind, Store};
use std::time::Duration;
use support::RedisServer;

fn report(key: u32, kind: ReportKind, seen_ago_ms: u64) -> KeyReport {
    KeyReport {
        key: KeyId(key),
        kind,
        seen_ago: Duration::from_millis(seen_ago_ms),
    }
}

fn cooling(ms: u64) -> ReportKind {
    ReportKind::CoolingFor(Duration::from_millis(ms))
}

#[tokio::test]
async fn merges_are_monotone_and_waits_are_in_server_time() {
    let Some(redis) = RedisServer::start(None) else {
        return;
    };
    let config = RedisStoreConfig::new(redis.url(), "merges").memory(Duration::from_secs(600));
    let a = RedisStore::new(config.clone()).unwrap();
    let b = RedisStore::new(config).unwrap();
    let k = |id| a.key_name(KeyId(id));

    // A 5 s cooldown, then a 2 s one from the other process: the later end stays.
    a.write(&[report(1, cooling(5_000), 0)]).await.unwrap();
    b.write(&[report(1, cooling(2_000), 0)]).await.unwrap();
    let now = redis.time_ms();
    let stored = redis.hget(&k(1), "cooling").unwrap();
    assert!(
        (4_800..=5_000).contains(&(stored - now)),
        "{}",
        stored - now
    );
    let view = &b.read(&[KeyId(1)]).await.unwrap().keys[0];
    let wait = view.wait.unwrap().as_millis() as u64;
    assert!((4_800..=5_000).contains(&wait), "{wait}");
    assert!(!view.revoked);
    let ttl = redis.pttl(&k(1));
    assert!(
        (4_800..=5_000).contains(&ttl),
        "the hash lives as long as its wait: {ttl}"
    );
    // Now the other order: the longer one comes second and wins.
    b.write(&[report(1, cooling(8_000), 0)]).await.unwrap();
    let wait = a.read(&[KeyId(1)]).await.unwrap().keys[0].wait.unwrap();
    assert!(wait > Duration::from_millis(7_800), "{wait:?}");

    // A revocation stays through a later cooldown, and the hash is kept for the memory
    // period.
    a.write(&[report(2, ReportKind::Revoked, 0)]).await.unwrap();
    b.write(&[report(2, cooling(1_000), 0)]).await.unwrap();
    let view = &b.read(&[KeyId(2)]).await.unwrap().keys[0];
    assert!(view.revoked);
    assert_eq!(view.restores, 0);
    assert!(redis.pttl(&k(2)) > 590_000);

    // A restore lifts it and counts; news seen before the restore (a revocation a process
    // learned 10 s ago and writes only now, after an outage) is dropped; news seen after
    // it is not.
    b.write(&[report(2, ReportKind::Restored, 0)])
        .await
        .unwrap();
    a.write(&[report(2, ReportKind::Revoked, 10_000)])
        .await
        .unwrap();
    let view = &a.read(&[KeyId(2)]).await.unwrap().keys[0];
    assert!(!view.revoked, "stale news undid a restore");
    assert_eq!(view.wait, None, "a restore lifts waits too");
    assert_eq!(view.restores, 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.write(&[report(2, ReportKind::Revoked, 0)]).await.unwrap();
    assert!(a.read(&[KeyId(2)]).await.unwrap().keys[0].revoked);

    // A removal is final: a restore does not lift it.
    a.write(&[report(4, ReportKind::Removed, 0)]).await.unwrap();
    b.write(&[report(4, ReportKind::Restored, 0)])
        .await
        .unwrap();
    let view = &a.read(&[KeyId(4)]).await.unwrap().keys[0];
    assert!(view.removed);
    assert_eq!(view.restores, 1);

    // A key no one reported on reads as nothing bad; the first read of a process finds no
    // marker of it (Redis "forgot" it), the next one does.
    let fresh = RedisStore::new(RedisStoreConfig::new(redis.url(), "merges")).unwrap();
    let first = fresh.read(&[KeyId(9)]).await.unwrap();
    assert!(first.forgot_us);
    assert_eq!(first.keys[0].wait, None);
    assert!(!first.keys[0].revoked);
    assert!(!fresh.read(&[KeyId(9)]).await.unwrap().forgot_us);

    // The server's clock is the one in Redis: what was stored is `TIME` + the duration,
    // whatever the writer's clock says (its report carries none).
    let before = b.server_time_ms().await.unwrap();
    b.write(&[report(
        3,
        ReportKind::ExhaustedFor(Duration::from_secs(60)),
        0,
    )])
    .await
    .unwrap();
    let after = b.server_time_ms().await.unwrap();
    let stored = redis.hget(&k(3), "exhausted").unwrap();
    assert!(
        (before + 60_000..=after + 60_000).contains(&stored),
        "{before} {stored} {after}"
    );
}
