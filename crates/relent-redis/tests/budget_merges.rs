//! What Redis makes of budget reports from several processes, and in whose time.
//!
//! The world: a real redis-server and stores of one namespace (processes, as far as Redis
//! can tell) reporting straight through `Store::exchange_budget`.
//!
//! What must happen: the fleet's balance starts full; concurrent spending from many
//! clients adds up exactly; a report sent twice (an answer lost to a timeout) counts once;
//! the balance never goes above the capacity nor below the floor (a debt of at most the
//! capacity: overspending is remembered and paid back first); a client Redis forgot counts
//! from its acknowledged counters; the refill accrues in Redis server time, once for the
//! fleet; both keys have TTLs.
//!
//! Why: the budget's merge must be atomic (Lua) and idempotent, or a fleet would over- or
//! under-count its retries (issue #19, items 1 and 5).

mod support;

use relent::BudgetPolicy;
use relent_redis::{RedisStore, RedisStoreConfig};
use relent_tokio::store::{BudgetReport, Store};
use std::time::Duration;
use support::RedisServer;

fn policy(capacity: u32, refill_per_sec: u32) -> BudgetPolicy {
    BudgetPolicy {
        capacity,
        retry_cost: 5,
        timeout_retry_cost: 5,
        success_reward: 1,
        retry_refund_percent: 100,
        refill_per_sec,
    }
}

fn report(client: u64, policy: BudgetPolicy, spent: u64, earned: u64) -> BudgetReport {
    let mut r = BudgetReport::new(client, policy);
    r.spent_milli = spent;
    r.earned_milli = earned;
    r
}

async fn exchange(store: &RedisStore, r: &BudgetReport) -> i64 {
    store
        .exchange_budget(r)
        .await
        .unwrap()
        .expect("shared")
        .milli
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spending_adds_up_once_between_the_floor_and_the_capacity() {
    let Some(redis) = RedisServer::start(None) else {
        return;
    };
    let config = RedisStoreConfig::new(redis.url(), "budget").memory(Duration::from_secs(600));
    let a = RedisStore::new(config.clone()).unwrap();
    let b = RedisStore::new(config.clone()).unwrap();
    let p = policy(100, 0);

    // A fresh fleet's budget is full.
    assert_eq!(exchange(&a, &report(1, p, 0, 0)).await, 100_000);

    // Twenty clients spend 0.5 token each, all at once: exactly 10 tokens go.
    let stores: Vec<RedisStore> = (0..20)
        .map(|_| RedisStore::new(config.clone()).unwrap())
        .collect();
    let tasks = stores
        .iter()
        .enumerate()
        .map(|(i, s)| async move { exchange(s, &report(100 + i as u64, p, 500, 0)).await });
    futures_util::future::join_all(tasks).await;
    assert_eq!(exchange(&b, &report(2, p, 0, 0)).await, 90_000);
    let key = a.budget_key_name();
    assert_eq!(key, "relent:{budget}:budget");
    assert_eq!(redis.hget(&key, "spent"), Some(10_000));

    // A report sent again (its answer was lost) counts once; growth counts.
    let mut r = report(1, p, 5_000, 0);
    assert_eq!(exchange(&a, &r).await, 85_000);
    assert_eq!(exchange(&a, &r).await, 85_000);
    r.spent_milli = 7_000;
    assert_eq!(exchange(&a, &r).await, 83_000);

    // Redis forgets client 1's record: it counts from what was acknowledged (7 tokens),
    // so only the 2 tokens spent since go.
    let mut con = redis.connection().unwrap();
    let records: Vec<String> = redis::cmd("KEYS")
        .arg("relent:{budget}:budget:client:*")
        .query(&mut con)
        .unwrap();
    assert_eq!(records.len(), 22);
    let _: () = redis::cmd("DEL")
        .arg("relent:{budget}:budget:client:0000000000000001")
        .query(&mut con)
        .unwrap();
    r.acked_spent_milli = 7_000;
    r.spent_milli = 9_000;
    assert_eq!(exchange(&a, &r).await, 81_000);

    // The floor: spending more than is left leaves a debt of at most the capacity, which
    // earnings pay back first.
    assert_eq!(exchange(&b, &report(2, p, 500_000, 0)).await, -100_000);
    assert_eq!(exchange(&b, &report(2, p, 500_000, 3_000)).await, -97_000);
    // The ceiling: earning more than fits leaves the capacity.
    assert_eq!(exchange(&b, &report(2, p, 500_000, 900_000)).await, 100_000);

    // TTLs: the budget lives the memory period, a client's record a minute.
    let ttl = redis.pttl(&key);
    assert!((590_000..=600_000).contains(&ttl), "{ttl}");
    let ttl = redis.pttl("relent:{budget}:budget:client:0000000000000002");
    assert!((50_000..=60_000).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn the_refill_accrues_in_redis_time_once_for_the_fleet() {
    let Some(redis) = RedisServer::start(None) else {
        return;
    };
    let config = RedisStoreConfig::new(redis.url(), "refill");
    let a = RedisStore::new(config.clone()).unwrap();
    let b = RedisStore::new(config).unwrap();
    // 10 tokens, 2 a second.
    let p = policy(10, 2);
    assert_eq!(exchange(&a, &report(1, p, 10_000, 0)).await, 0);
    let spent_at = redis.hget(&a.budget_key_name(), "as_of").unwrap();
    let server = redis.time_ms();
    assert!(server.abs_diff(spent_at) < 1_000, "as_of is Redis time");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Two processes read: the half second's refill (1 token) is counted once, not twice.
    let first = exchange(&b, &report(2, p, 0, 0)).await;
    let second = exchange(&a, &report(1, p, 10_000, 0)).await;
    let elapsed = (redis.time_ms() - spent_at) as i64;
    assert!(
        (1_000..=elapsed * 2).contains(&second),
        "{second} milli-tokens after {elapsed} ms"
    );
    assert!(first <= second && second < 4_000, "{first} then {second}");
    // The refill stops at the capacity.
    let far = report(3, policy(1, 1_000), 0, 0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(exchange(&a, &far).await, 1_000);
}
