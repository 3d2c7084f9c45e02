//! The tokio driver over real HTTP: reqwest on loopback against relent-sim's stub provider,
//! which answers from a schedule. Each test is one scenario from the issue; wall-clock checks
//! are real (no paused time), so waits are kept short through the policy.

use relent::{AbortReason, KeyId, KeySpec, KeyState, Policy, Provider, Target};
use relent_sim::stub::Stub;
use relent_sim::Schedule;
use relent_tokio::{Api, CancellationToken, Client, Endpoint, KeyStore, ReqwestTransport, Secret};
use std::time::{Duration, Instant};

const BODY: &[u8] = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

fn schedule(keys: u32, faults: &str) -> Schedule {
    let keys: Vec<String> = (1..=keys)
        .map(|i| format!(r#"{{"id":{i},"label":"key-{i}"}}"#))
        .collect();
    let json = format!(
        r#"{{"targets":[{{"provider":"openai","model":"gpt-4o","keys":[{}]}}],"faults":[{faults}],"latency_ms":10}}"#,
        keys.join(",")
    );
    serde_json::from_str(&json).unwrap()
}

async fn setup(schedule: Schedule, policy: Policy) -> (Stub, Client<ReqwestTransport>) {
    let stub = Stub::start(schedule.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut keys = KeyStore::new();
    for t in &schedule.targets {
        for k in &t.keys {
            keys.insert(k.id, Secret::new(format!("stub-{}", k.id.0)));
        }
    }
    let endpoints = vec![Endpoint::new(
        format!("{}/v1/chat/completions", stub.base_url()),
        Api::OpenAiCompatible,
    )];
    let client = Client::new(
        ReqwestTransport::new(),
        schedule.targets,
        endpoints,
        keys,
        policy,
    )
    .unwrap();
    (stub, client)
}

/// Short waits so the real-time tests stay fast; the decisions are the defaults'.
fn quick() -> Policy {
    let mut p = Policy::default();
    p.backoff.base_ms = 100;
    p.backoff.cap_ms = 400;
    p.congestion_backoff.base_ms = 150;
    p.congestion_backoff.cap_ms = 600;
    p
}

#[tokio::test]
async fn one_dead_key_costs_two_requests_then_an_actionable_error() {
    let (stub, client) = setup(
        schedule(1, r#"{"scope":{"key":1},"kind":{"type":"key_rejected"}}"#),
        Policy::default(),
    )
    .await;
    let began = Instant::now();
    let error = client.call(BODY).await.unwrap_err();
    let abort = error.abort().expect("an abort");
    assert_eq!(abort.reason, AbortReason::AuthPermanent);
    assert!(
        abort.message.contains("key-1") && abort.message.contains("openai"),
        "{}",
        abort.message
    );
    assert!(
        !abort.message.contains("sk-proj"),
        "the echoed key is redacted: {}",
        abort.message
    );
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "took {:?}",
        began.elapsed()
    );
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    assert_ne!(
        seen[0].connection, seen[1].connection,
        "the retry opened a fresh connection"
    );
    assert_eq!(seen[0].idempotency_key, seen[1].idempotency_key);
    assert_eq!(
        (seen[0].attempt.as_deref(), seen[1].attempt.as_deref()),
        (Some("1"), Some("2"))
    );
}

#[tokio::test]
async fn dead_first_key_is_skipped_and_never_used_again() {
    let (stub, client) = setup(
        schedule(3, r#"{"scope":{"key":1},"kind":{"type":"key_rejected"}}"#),
        Policy::default(),
    )
    .await;
    let first = client.call(BODY).await.unwrap();
    assert_eq!(
        (first.status, first.attempts, first.via.key),
        (200, 2, KeyId(2))
    );
    let second = client.call(BODY).await.unwrap();
    assert_eq!(
        (second.attempts, second.via.key),
        (1, KeyId(2)),
        "the revoked key carries over"
    );
    let keys: Vec<_> = stub.seen().iter().map(|s| s.key).collect();
    assert_eq!(keys, vec![Some(KeyId(1)), Some(KeyId(2)), Some(KeyId(2))]);
    assert_eq!(client.pool().state(KeyId(1)), KeyState::Revoked);
}

/// Key states carry times, and they carry over: every call counts from the client's epoch,
/// so a cooldown that has run out by the next call is over for it too.
#[tokio::test]
async fn a_cooldown_that_has_run_out_does_not_outlive_its_call() {
    let (_stub, client) = setup(
        schedule(
            2,
            r#"{"scope":{"key":1},"first_sends":1,"until_ms":1000,"kind":{"type":"rate_limited","hint":"retry_after_seconds"}}"#,
        ),
        Policy::default(),
    )
    .await;
    let first = client.call(BODY).await.unwrap();
    assert_eq!((first.attempts, first.via.key), (2, KeyId(2)));
    assert!(matches!(
        client.pool().state(KeyId(1)),
        KeyState::CoolingDown(_)
    ));
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let second = client.call(BODY).await.unwrap();
    assert_eq!(
        (second.attempts, second.via.key),
        (1, KeyId(1)),
        "key 1's one-second cooldown ended before the second call"
    );
}

/// Concurrent calls each work on a copy of the pool; what one learns is merged in, never
/// overwritten by another that knew less. With round-robin selection, call B takes key 1
/// and hangs on it; call A, started while B waits, takes key 2, finds it rejected, and
/// succeeds on key 1. B then retries key 1 and ends last, never having learned about key 2:
/// the revocation must stand.
#[tokio::test]
async fn a_revocation_survives_a_concurrent_call_that_ends_later() {
    let faults = [
        r#"{"scope":{"key":1},"first_sends":1,"kind":{"type":"slow"}}"#,
        r#"{"scope":{"key":2},"kind":{"type":"key_rejected"}}"#,
    ];
    let policy = Policy {
        attempt_timeout_ms: 600,
        selection: relent::Selection::RoundRobin,
        ..Policy::default()
    };
    let (stub, client) = setup(schedule(2, &faults.join(",")), policy).await;
    let b = client.call(BODY);
    let a = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.call(BODY).await
    };
    let (b, a) = tokio::join!(b, a);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.via.key, a.attempts), (KeyId(1), 2));
    assert_eq!((b.via.key, b.attempts), (KeyId(1), 2));
    let keys: Vec<_> = stub.seen().iter().map(|s| s.key).collect();
    assert_eq!(
        keys,
        vec![
            Some(KeyId(1)), // B: hangs
            Some(KeyId(2)), // A: 401
            Some(KeyId(1)), // A: 200
            Some(KeyId(1)), // B: 200 after its timeout
        ]
    );
    assert_eq!(client.pool().state(KeyId(2)), KeyState::Revoked);
}

/// A caller may drop a call at any await (a timeout around it, a closed request). What the
/// call had learned about its keys by then is kept.
#[tokio::test]
async fn a_call_dropped_by_its_caller_keeps_what_it_learned() {
    let faults = [
        r#"{"scope":{"key":1},"kind":{"type":"key_rejected"}}"#,
        r#"{"scope":{"key":2},"first_sends":1,"kind":{"type":"slow"}}"#,
    ];
    let (stub, client) = setup(schedule(2, &faults.join(",")), Policy::default()).await;
    // Key 1 is rejected, key 2 hangs; the caller gives up long before the attempt timeout.
    let dropped = tokio::time::timeout(Duration::from_millis(400), client.call(BODY)).await;
    assert!(dropped.is_err(), "the call was still waiting on key 2");
    assert_eq!(stub.seen().len(), 2);
    assert_eq!(client.pool().state(KeyId(1)), KeyState::Revoked);
    let next = client.call(BODY).await.unwrap();
    assert_eq!((next.attempts, next.via.key), (1, KeyId(2)));
}

#[tokio::test]
async fn retry_after_is_honoured_on_the_only_key() {
    let (stub, client) = setup(schedule(1, r#"{"scope":{"key":1},"until_ms":900,"kind":{"type":"rate_limited","hint":"retry_after_seconds"}}"#), Policy::default()).await;
    let done = client.call(BODY).await.unwrap();
    assert_eq!(done.attempts, 2);
    let seen = stub.seen();
    assert!(
        seen[1].at_ms >= seen[0].at_ms + 1000,
        "second request at {} ms, first at {} ms",
        seen[1].at_ms,
        seen[0].at_ms
    );
}

#[tokio::test]
async fn overload_backs_off_and_leaves_the_keys_alone() {
    let (stub, client) = setup(
        schedule(
            2,
            r#"{"scope":{"target":0},"first_sends":2,"kind":{"type":"overloaded"}}"#,
        ),
        quick(),
    )
    .await;
    let done = client.call(BODY).await.unwrap();
    assert_eq!(
        (done.attempts, done.via.key),
        (3, KeyId(1)),
        "same key: overload is provider-wide"
    );
    let seen = stub.seen();
    assert!(
        seen[1].at_ms >= seen[0].at_ms + 75 && seen[2].at_ms >= seen[1].at_ms + 150,
        "{seen:?}"
    );
    let pool = client.pool();
    assert!(pool.all_keys().all(|(_, k)| k.state == KeyState::Ready));
}

#[tokio::test]
async fn a_hung_attempt_is_abandoned_and_retried_on_a_fresh_connection() {
    let policy = Policy {
        attempt_timeout_ms: 300,
        ..quick()
    };
    let (stub, client) = setup(
        schedule(
            1,
            r#"{"scope":{"target":0},"first_sends":1,"kind":{"type":"slow"}}"#,
        ),
        policy,
    )
    .await;
    let began = Instant::now();
    let done = client.call(BODY).await.unwrap();
    assert_eq!(done.attempts, 2);
    assert!(began.elapsed() >= Duration::from_millis(300));
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0].connection, seen[1].connection);
}

#[tokio::test]
async fn a_stream_that_breaks_after_commit_is_reported_not_retried() {
    let (stub, client) = setup(
        schedule(
            1,
            r#"{"scope":{"key":1},"kind":{"type":"stream_fails_midway"}}"#,
        ),
        Policy::default(),
    )
    .await;
    let mut stream = client
        .call_streaming(BODY, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(stream.status, 200);
    let first = stream.next_chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Hel"));
    let error = loop {
        match stream.next_chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream was meant to break"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        error.abort().map(|a| a.reason),
        Some(AbortReason::FailedAfterCommit)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        stub.seen().len(),
        1,
        "never retried behind the caller's back"
    );
}

#[tokio::test]
async fn cancel_while_sleeping_sends_nothing_more() {
    let (stub, client) = setup(
        schedule(
            1,
            r#"{"scope":{"target":0},"kind":{"type":"server_error"}}"#,
        ),
        Policy::default(),
    )
    .await;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let error = client.call_with_cancel(BODY, cancel).await.unwrap_err();
    assert_eq!(
        error.abort().map(|a| a.reason),
        Some(AbortReason::Cancelled)
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn a_key_added_while_all_keys_cool_ends_the_sleep() {
    let faults = r#"{"scope":{"key":1},"until_ms":30000,"kind":{"type":"rate_limited","hint":"retry_after_seconds"}}"#;
    let (stub, client) = setup(schedule(1, faults), Policy::default()).await;
    let client = std::sync::Arc::new(client);
    let adder = client.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        adder
            .add_key(0, KeySpec::new(2, "key-2-added"), Secret::new("stub-2"))
            .unwrap();
    });
    let began = Instant::now();
    let done = client.call(BODY).await.unwrap();
    assert_eq!((done.via.key, done.attempts), (KeyId(2), 2));
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "the 30 s sleep ended when the key arrived: {:?}",
        began.elapsed()
    );
    assert_eq!(stub.seen().len(), 2);
}

#[tokio::test]
async fn progress_reports_why_it_waits() {
    let (_stub, client) = setup(
        schedule(
            1,
            r#"{"scope":{"target":0},"first_sends":1,"kind":{"type":"server_error"}}"#,
        ),
        quick(),
    )
    .await;
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    let client = client.on_progress(move |p| sink.lock().unwrap().push(p.action.kind()));
    client.call(BODY).await.unwrap();
    assert_eq!(
        *events.lock().unwrap(),
        vec!["send", "sleep", "send", "succeeded"]
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new("sk-live-abcdef123456"));
    let text = format!("{keys:?} {:?}", Secret::new("sk-live-abcdef123456"));
    assert!(!text.contains("sk-live"), "{text}");
    let targets = vec![Target::new(
        Provider::Openai,
        "gpt-4o",
        vec![KeySpec::new(1, "k")],
    )];
    let client = Client::new(
        ReqwestTransport::new(),
        targets,
        vec![Endpoint::new(
            "http://127.0.0.1:9/v1",
            Api::OpenAiCompatible,
        )],
        keys,
        Policy::default(),
    )
    .unwrap();
    assert!(!format!("{client:?}").contains("sk-live"));
}

#[tokio::test]
async fn a_key_added_without_a_secret_is_refused_as_a_config_error() {
    let faults = r#"{"scope":{"key":1},"until_ms":1500,"kind":{"type":"rate_limited","hint":"retry_after_ms"}}"#;
    let (stub, client) = setup(schedule(1, faults), Policy::default()).await;
    let changer = client.clone();
    let refused = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        changer.change_pool(relent::PoolChange::Added {
            target: 0,
            key: KeySpec::new(2, "no-secret"),
        })
    });
    let done = client.call(BODY).await.unwrap();
    let error = refused.await.unwrap().unwrap_err();
    assert!(error.is_config(), "{error}");
    assert_eq!(
        done.via.key,
        KeyId(1),
        "the call went on with the key it had"
    );
    assert!(
        client.pool().find(KeyId(2)).is_none(),
        "the pool is unchanged"
    );
    assert!(
        stub.seen().iter().all(|s| s.key == Some(KeyId(1))),
        "nothing was sent without a secret"
    );
}
