//! Two processes sharing API keys learn from each other through Redis.
//!
//! The world: a real redis-server (started here, password-protected, no persistence), a
//! stub provider with keys 1 and 2 (key 1 preferred), and worker processes, each a child
//! running this test binary again with one client whose store is Redis. Workers A and B
//! share the namespace `fleet-one`; worker C is in `fleet-two`.
//!
//! What must happen:
//! - a key A sees revoked is never sent by B afterwards (B's pool learns it by pub/sub
//!   within a second, far inside its 10 s re-read period); C, in another namespace, is not
//!   told and sends with it (which also shows the expectation could fail);
//! - a 429 cooldown A is given is honoured by B, until it ends: then B uses key 1 again;
//! - neither the secrets, the labels nor the Redis password end up in Redis, and the
//!   password appears in no worker's output.
//!
//! Why: without a shared store each of N processes spends its own calls on a dead or
//! cooling key (issue #19). Counts are sends per key at the stub.

mod support;

use std::time::Duration;
use support::{eventually, schedule, sends, RedisServer, Worker, WORKER_ENV};

const PASSWORD: &str = "canary-redis-pw-9f3c2a";
const WORKER: &str = "fleet_worker";

#[test]
#[ignore = "the child process of the fleet tests, which run it with RELENT_FLEET_WORKER set"]
fn fleet_worker() {
    if std::env::var_os(WORKER_ENV).is_some() {
        support::worker_main();
    }
}

async fn stub(faults: &str) -> relent_sim::stub::Stub {
    stub_at(faults, 0).await
}

async fn stub_at(faults: &str, port: u16) -> relent_sim::stub::Stub {
    relent_sim::stub::Stub::start(schedule(faults), ([127, 0, 0, 1], port).into())
        .await
        .unwrap()
}

fn no_canaries(redis: &RedisServer, workers: &[&Worker]) {
    let dump = redis.dump();
    assert!(!dump.is_empty(), "the fleet wrote nothing to Redis");
    let text = format!("{dump:?}");
    for canary in ["stub-1", "stub-2", "label-one", "label-two", PASSWORD] {
        assert!(!text.contains(canary), "{canary:?} is in Redis: {text}");
    }
    for worker in workers {
        let transcript = worker.transcript.lock().unwrap();
        assert!(
            transcript.contains("worker store: RedisStore"),
            "{transcript}"
        );
        assert!(
            !transcript.contains(PASSWORD),
            "the password leaked: {transcript}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_by_one_process_is_never_sent_by_another() {
    let Some(redis) = RedisServer::start(Some(PASSWORD)) else {
        return;
    };
    let stub = stub(r#"[{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}]"#).await;
    let url = redis.url();
    tokio::task::block_in_place(|| {
        let mut a = Worker::spawn(WORKER, &url, "fleet-one", &stub.base_url());
        let mut b = Worker::spawn(WORKER, &url, "fleet-one", &stub.base_url());
        let mut c = Worker::spawn(WORKER, &url, "fleet-two", &stub.base_url());

        // A meets the dead key, revokes it, and finishes with key 2.
        let attempts = a.call();
        let dead_sends = sends(&stub, 1);
        assert!(dead_sends >= 1, "A tried key 1 first");
        assert_eq!(attempts as usize, dead_sends + 1);
        assert_eq!(a.ask("flush"), "flushed true");
        let took = eventually(Duration::from_secs(1), "B learns of the revocation", || {
            b.state(1) == "Revoked"
        });
        eprintln!("B learned of the revocation {took:?} after A's flush");

        // B never sends with key 1: each call goes to key 2 at once.
        for _ in 0..3 {
            assert_eq!(b.call(), 1);
        }
        assert_eq!(sends(&stub, 1), dead_sends, "B sent with the revoked key");
        assert_eq!(sends(&stub, 2), 1 + 3);

        // C shares nothing with A and B: it meets the dead key itself.
        assert_eq!(c.state(1), "Ready");
        c.call();
        assert!(sends(&stub, 1) > dead_sends, "C is in another namespace");

        no_canaries(&redis, &[&a, &b, &c]);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_one_process_is_given_is_honoured_by_another_until_it_ends() {
    let Some(redis) = RedisServer::start(Some(PASSWORD)) else {
        return;
    };
    let url = redis.url();
    // The stub's clock starts when it does: start it once the workers are up.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let stub_url = format!("http://127.0.0.1:{port}");
    let (mut a, mut b) = tokio::task::block_in_place(|| {
        (
            Worker::spawn(WORKER, &url, "fleet-one", &stub_url),
            Worker::spawn(WORKER, &url, "fleet-one", &stub_url),
        )
    });
    // Key 1 is rate limited for the stub's first 2.5 s, with `retry-after` in seconds.
    let stub = stub_at(
        r#"[{"scope": {"key": 1}, "until_ms": 2500,
             "kind": {"type": "rate_limited", "hint": "retry_after_seconds"}}]"#,
        port,
    )
    .await;
    tokio::task::block_in_place(|| {
        assert_eq!(a.call(), 2, "A: key 1 answers 429, key 2 succeeds");
        assert_eq!(sends(&stub, 1), 1);
        assert_eq!(a.ask("flush"), "flushed true");
        eventually(Duration::from_secs(1), "B learns of the cooldown", || {
            b.state(1).starts_with("CoolingDown")
        });
        // In Redis the wait's end is in Redis's own time: `retry-after` rounds the
        // window's end up to whole seconds from A's send, so at most 3 s from now.
        let left = redis
            .hget("relent:{fleet-one}:key:1", "cooling")
            .expect("the cooldown is stored")
            .saturating_sub(redis.time_ms());
        assert!((1..=3_000).contains(&left), "{left} ms left");

        assert_eq!(b.call(), 1);
        assert_eq!(b.call(), 1);
        assert_eq!(sends(&stub, 1), 1, "B sent with the cooling key");
        assert_eq!(sends(&stub, 2), 3);

        // Once the wait is over, key 1 is B's first choice again (and the stub's window
        // is over too, so it succeeds).
        std::thread::sleep(Duration::from_millis(left + 100));
        assert_eq!(b.call(), 1);
        assert_eq!(sends(&stub, 1), 2);

        no_canaries(&redis, &[&a, &b]);
    });
}
