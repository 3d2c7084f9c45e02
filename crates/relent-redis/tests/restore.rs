//! A restore reaches the fleet as a revocation does.
//!
//! The world: a real redis-server; a stub provider whose key 1 answers its first request
//! with 401 and works afterwards (the owner fixed it); two clients A and B with separate
//! pools and connections in one namespace.
//!
//! What must happen: A's first call revokes key 1 and B learns it; B's calls go to key 2.
//! Then A's operator restores key 1 (`change_pool(Restored)`): B learns that too, and B's
//! next call goes to key 1 again (its first choice) and succeeds. A removal is shared the
//! same way.
//!
//! Why: a revocation that stays until restored must also end when restored, in every
//! process, or the fleet loses a good key for the store's memory period (issue #19).

mod support;

use relent::{KeyId, KeyState, PoolChange};
use relent_redis::{RedisStore, RedisStoreConfig};
use relent_tokio::store::StoreOptions;
use relent_tokio::{Client, ReqwestTransport};
use std::time::Duration;
use support::{eventually, schedule, sends, store_client, RedisServer};

fn client(redis_url: &str, stub_url: &str) -> Client<ReqwestTransport> {
    let store = RedisStore::new(RedisStoreConfig::new(redis_url, "restore")).unwrap();
    store_client(
        stub_url,
        store,
        StoreOptions::new().reread_every(Duration::from_secs(10)),
    )
}

const BODY: &[u8] = br#"{"model": "gpt-4o", "messages": []}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_by_one_process_brings_the_key_back_in_another() {
    let Some(redis) = RedisServer::start(None) else {
        return;
    };
    let stub = relent_sim::stub::Stub::start(
        schedule(r#"[{"scope": {"key": 1}, "first_sends": 1, "kind": {"type": "key_rejected"}}]"#),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let a = client(&redis.url(), &stub.base_url());
    let b = client(&redis.url(), &stub.base_url());
    let state_in_b = |want: KeyState| {
        tokio::task::block_in_place(|| {
            eventually(Duration::from_secs(2), &format!("B sees {want:?}"), || {
                b.pool().state(KeyId(1)) == want
            })
        })
    };

    assert_eq!(a.call(BODY).await.unwrap().attempts, 2);
    assert_eq!(sends(&stub, 1), 1);
    state_in_b(KeyState::Revoked);
    assert_eq!(b.call(BODY).await.unwrap().attempts, 1);
    assert_eq!(sends(&stub, 1), 1);

    a.change_pool(PoolChange::Restored { key: KeyId(1) })
        .unwrap();
    state_in_b(KeyState::Ready);
    let done = b.call(BODY).await.unwrap();
    assert_eq!((done.attempts, done.via.key), (1, KeyId(1)));
    assert_eq!(sends(&stub, 1), 2);

    // A removal reaches B too, and B stops using the key.
    a.change_pool(PoolChange::Removed { key: KeyId(1) })
        .unwrap();
    state_in_b(KeyState::Removed);
    assert_eq!(redis.hget("relent:{restore}:key:1", "restores"), Some(1));
    assert!(redis.hget("relent:{restore}:key:1", "removed").is_some());
    assert_eq!(b.call(BODY).await.unwrap().via.key, KeyId(2));
    assert_eq!(sends(&stub, 1), 2);
}
