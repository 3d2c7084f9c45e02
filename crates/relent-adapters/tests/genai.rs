//! The real genai client inside `relent_tokio::retry`, over loopback.
//!
//! The world: relent-sim's stub provider speaking the OpenAI chat API, and one
//! `genai::Client` whose every attempt is made by the closure of the genai example
//! (`examples/genai/relent_genai.rs`, included below, so the example's own code is what
//! runs). What must happen, read off the stub's schedule:
//!
//! - **A dead key among three** (the stub rejects key 1 every time; keys 2 and 3 answer):
//!   the call succeeds with the stub's answer, and over several calls the stub sees key 1
//!   at most once — a rejected key is dead for the pool — key 2 once per call, key 3
//!   never (fill-first keeps to key 2 while it answers).
//! - **A 429 with `Retry-After`** (the only key is limited until 1 s; the stub announces
//!   the end in whole seconds): the second send comes no earlier than the header said,
//!   and there are exactly two sends. That holds only if the closure hands genai's error
//!   headers to relent: without them relent would back off for tens of milliseconds and
//!   meet the limit again.
//!
//! Why: genai is a client without a seam; the closure must carry relent's key, endpoint
//! and headers into genai, and genai's answers (status, headers, body) back out.

#[path = "../examples/genai/relent_genai.rs"]
mod relent_genai;

use genai::chat::{ChatOptions, ChatRequest};
use relent::{KeyId, Policy};
use relent_sim::stub::{Seen, Stub};
use relent_sim::Schedule;
use relent_tokio::{Endpoint, KeyStore, RetryState, Secret};

async fn start_stub(schedule: &str) -> (Stub, Schedule) {
    let schedule: Schedule = serde_json::from_str(schedule).unwrap();
    let stub = Stub::start(schedule.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (stub, schedule)
}

/// The schedule's one target at the stub's `/v1`, every key with the secret the stub
/// expects (`stub-<id>`), and short backoffs.
fn state(stub: &Stub, schedule: &Schedule) -> RetryState {
    let mut keys = KeyStore::new();
    for key in schedule.targets.iter().flat_map(|t| &t.keys) {
        keys.insert(key.id, Secret::new(format!("stub-{}", key.id.0)));
    }
    let mut policy = Policy::default();
    policy.backoff.base_ms = 50;
    policy.backoff.cap_ms = 200;
    RetryState::builder()
        .target(
            schedule.targets[0].clone(),
            Endpoint::openai(format!("{}/v1", stub.base_url())),
        )
        .keys(keys)
        .policy(policy)
        .seed(18)
        .build_state()
        .unwrap()
}

fn genai_client() -> genai::Client {
    genai::Client::builder()
        .with_reqwest(relent_genai::http_client())
        .build()
        .unwrap()
}

fn sent_with(seen: &[Seen], key: u32) -> usize {
    seen.iter().filter(|s| s.key == Some(KeyId(key))).count()
}

#[tokio::test]
async fn a_dead_key_among_three_is_sent_at_most_once_and_the_calls_succeed_on_another() {
    let (stub, schedule) = start_stub(
        r#"{"targets": [{"provider": "openai", "model": "gpt-4o",
             "keys": [{"id": 1, "label": "dead"}, {"id": 2, "label": "live"}, {"id": 3, "label": "spare"}]}],
            "faults": [{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}],
            "latency_ms": 2}"#,
    )
    .await;
    let state = state(&stub, &schedule);
    let client = genai_client();
    let request = ChatRequest::from_user("hi");
    let calls = 3;
    for _ in 0..calls {
        let answer = relent_genai::chat(&state, &client, &request, &ChatOptions::default())
            .await
            .unwrap();
        // The stub's answer, parsed by genai.
        assert_eq!(answer.first_text(), Some("Hello!"));
        assert_eq!(&*answer.model_iden.model_name, "gpt-4o");
    }
    let seen = stub.seen();
    assert!(sent_with(&seen, 1) <= 1, "{seen:#?}");
    assert_eq!(sent_with(&seen, 2), calls, "{seen:#?}");
    assert_eq!(sent_with(&seen, 3), 0, "{seen:#?}");
    // Every request carried one of relent's keys, at the path genai builds under the base.
    assert_eq!(seen.len(), calls + sent_with(&seen, 1), "{seen:#?}");
    assert!(
        seen.iter().all(|s| s.path == "/v1/chat/completions"),
        "{seen:#?}"
    );
    // relent's headers went through genai: one idempotency key per call, and every send
    // numbered.
    let mut calls_seen: Vec<_> = seen.iter().map(|s| s.idempotency_key.clone()).collect();
    calls_seen.dedup();
    assert_eq!(calls_seen.len(), calls, "{seen:#?}");
    assert!(
        seen.iter()
            .all(|s| s.idempotency_key.is_some() && s.attempt.is_some()),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_as_the_header_says() {
    // The only key is rate limited until 1 s; the stub says so with `Retry-After`.
    let limited_ms: u64 = 1000;
    let (stub, schedule) = start_stub(&format!(
        r#"{{"targets": [{{"provider": "openai", "model": "gpt-4o", "keys": [{{"id": 1, "label": "only"}}]}}],
            "faults": [{{"scope": {{"key": 1}}, "until_ms": {limited_ms},
                        "kind": {{"type": "rate_limited", "hint": "retry_after_seconds"}}}}],
            "latency_ms": 2}}"#
    ))
    .await;
    let state = state(&stub, &schedule);
    let answer = relent_genai::chat(
        &state,
        &genai_client(),
        &ChatRequest::from_user("hi"),
        &ChatOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer.first_text(), Some("Hello!"));
    let seen = stub.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    // `Retry-After` is in whole seconds, counted from the first answer: the stub announces
    // the limit's remaining time rounded up to the next second. Honouring it means sending
    // again no earlier than that, and not long after: a wait of relent's own making (no
    // header seen) would be some other length.
    let announced = limited_ms.saturating_sub(seen[0].at_ms).div_ceil(1000) * 1000;
    let waited = seen[1].at_ms - seen[0].at_ms;
    assert!(
        waited + 50 >= announced && waited <= announced + 600,
        "waited {waited} ms, the server asked for {announced} ms"
    );
    assert_eq!(seen[0].idempotency_key, seen[1].idempotency_key);
}
