//! relent inside the real async-openai client, over loopback.
//!
//! The world: relent-sim's stub provider speaking the OpenAI chat API, and an
//! async-openai `Client` whose HTTP service is relent's [`OpenAiService`], configured with
//! the stub's base URL and a placeholder key. What must happen:
//!
//! - **A dead key among three** (key 1 of 1, 2, 3 is rejected; fill-first selection): the
//!   first call sends key 1 once and then key 2, and every later call, on clones of the
//!   client, goes straight to key 2 — so the stub sees key 1 exactly once, key 2 once per
//!   call, key 3 never, and never the placeholder.
//! - **A 429 with `Retry-After`** (the only key is limited until 1 s): the call waits as
//!   long as the header says and then succeeds, with the same idempotency key on both
//!   sends. When the wait would outlast the call's deadline, the call gives up at once and
//!   the async-openai error carries relent's abort (reason `deadline_exceeded`) and the
//!   time until a retry could succeed.
//! - **A streaming chat** behind a dead key: the stream is handed over from the live key
//!   and its chunks spell the stub's answer.
//! - **Fallback to another target**: the URL moves under the second target's base URL and
//!   the body's model becomes the second target's.
//!
//! Why: async-openai's own retry layer knows one key and one endpoint; the seam replaces
//! it, so relent's pool, learning and failover must hold through async-openai's own
//! request building, parsing and streaming.

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs,
};
use async_openai::Client;
use futures_util::StreamExt;
use relent::{AbortReason, KeyId, Policy, Target};
use relent_adapters::openai::{relent_error, OpenAiService};
use relent_sim::stub::{Seen, Stub};
use relent_sim::Schedule;
use relent_tokio::{Endpoint, KeyStore, RetryState, Secret};
use std::time::{Duration, Instant};

const PLACEHOLDER: &str = "placeholder-not-a-key";

async fn start_stub(schedule: &str) -> (Stub, Schedule) {
    let schedule: Schedule = serde_json::from_str(schedule).unwrap();
    let stub = Stub::start(schedule.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (stub, schedule)
}

/// Secrets `stub-<id>` (what the stub expects) for every key of the schedule.
fn keys(targets: &[Target]) -> KeyStore {
    let mut keys = KeyStore::new();
    for key in targets.iter().flat_map(|t| &t.keys) {
        keys.insert(key.id, Secret::new(format!("stub-{}", key.id.0)));
    }
    keys
}

fn quick() -> Policy {
    let mut policy = Policy::default();
    policy.backoff.base_ms = 50;
    policy.backoff.cap_ms = 200;
    policy
}

/// A state whose targets are the schedule's, each at the given base URL.
fn state(schedule: &Schedule, bases: &[String], policy: Policy) -> RetryState {
    schedule
        .targets
        .iter()
        .zip(bases)
        .fold(RetryState::builder(), |b, (t, base)| {
            b.target(t.clone(), Endpoint::openai(base.clone()))
        })
        .keys(keys(&schedule.targets))
        .policy(policy)
        .seed(18)
        .build_state()
        .unwrap()
}

fn openai_client(base: &str, state: RetryState) -> Client<OpenAIConfig> {
    let config = OpenAIConfig::new()
        .with_api_base(base)
        .with_api_key(PLACEHOLDER);
    Client::with_config(config).with_http_service(OpenAiService::new(state))
}

fn chat(model: &str) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("hi")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap()
}

/// One OpenAI target whose first of three keys is rejected, every time.
const DEAD_KEY_AMONG_THREE: &str = r#"{"targets": [{"provider": "openai", "model": "gpt-4o",
    "keys": [{"id": 1, "label": "dead"}, {"id": 2, "label": "live"}, {"id": 3, "label": "spare"}]}],
    "faults": [{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}],
    "latency_ms": 2}"#;

/// An async-openai client of the stub's one target, through relent with the quick policy.
fn quick_client(stub: &Stub, schedule: &Schedule) -> Client<OpenAIConfig> {
    let base = format!("{}/v1", stub.base_url());
    openai_client(&base, state(schedule, std::slice::from_ref(&base), quick()))
}

fn sent_with(seen: &[Seen], key: u32) -> usize {
    seen.iter().filter(|s| s.key == Some(KeyId(key))).count()
}

#[tokio::test]
async fn a_dead_key_among_three_is_sent_once_and_never_again_by_any_clone() {
    let (stub, schedule) = start_stub(DEAD_KEY_AMONG_THREE).await;
    let client = quick_client(&stub, &schedule);
    let calls = 4;
    for _ in 0..calls {
        let answer = client.clone().chat().create(chat("gpt-4o")).await.unwrap();
        assert_eq!(answer.choices[0].message.content.as_deref(), Some("Hello!"));
        assert_eq!(answer.model, "gpt-4o");
    }
    let seen = stub.seen();
    assert_eq!(sent_with(&seen, 1), 1, "{seen:#?}");
    assert_eq!(sent_with(&seen, 2), calls, "{seen:#?}");
    assert_eq!(sent_with(&seen, 3), 0, "{seen:#?}");
    // Every request carried one of relent's keys, none the client's placeholder.
    assert_eq!(seen.len(), calls + 1);
    assert!(seen.iter().all(|s| s.key.is_some()), "{seen:#?}");
    // The first call's two sends share an idempotency key and count their attempts.
    assert_eq!(seen[0].idempotency_key, seen[1].idempotency_key);
    assert_eq!(
        (seen[0].attempt.as_deref(), seen[1].attempt.as_deref()),
        (Some("1"), Some("2"))
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_a_wait_past_the_deadline_is_reported() {
    // The only key is rate limited until 1 s; the stub says so with `Retry-After: 1`.
    let limited_ms: u64 = 1000;
    let (stub, schedule) = start_stub(&format!(
        r#"{{"targets": [{{"provider": "openai", "model": "gpt-4o", "keys": [{{"id": 1, "label": "only"}}]}}],
            "faults": [{{"scope": {{"key": 1}}, "until_ms": {limited_ms},
                        "kind": {{"type": "rate_limited", "hint": "retry_after_seconds"}}}}],
            "latency_ms": 2}}"#
    ))
    .await;
    let client = quick_client(&stub, &schedule);
    let answer = client.chat().create(chat("gpt-4o")).await.unwrap();
    assert_eq!(answer.choices[0].message.content.as_deref(), Some("Hello!"));
    let seen = stub.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    // `Retry-After` is whole seconds: the wait runs to the next second after the limit's end
    // as the header states it, counted from the first answer.
    let announced = limited_ms.saturating_sub(seen[0].at_ms).div_ceil(1000) * 1000;
    let waited = seen[1].at_ms - seen[0].at_ms;
    assert!(
        waited + 50 >= announced,
        "waited {waited} ms, the server asked for {announced} ms"
    );
    assert_eq!(seen[0].idempotency_key, seen[1].idempotency_key);

    // A second world: the limit lasts 30 s, the call may take 2 s.
    let limited_ms: u64 = 30_000;
    let (stub, schedule) = start_stub(&format!(
        r#"{{"targets": [{{"provider": "openai", "model": "gpt-4o", "keys": [{{"id": 1, "label": "only"}}]}}],
            "faults": [{{"scope": {{"key": 1}}, "until_ms": {limited_ms},
                        "kind": {{"type": "rate_limited", "hint": "retry_after_seconds"}}}}],
            "latency_ms": 2}}"#
    ))
    .await;
    let mut policy = quick();
    policy.deadline_ms = 2_000;
    let base = format!("{}/v1", stub.base_url());
    let client = openai_client(&base, state(&schedule, std::slice::from_ref(&base), policy));
    let started = Instant::now();
    let error = client.chat().create(chat("gpt-4o")).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "it waited"
    );
    let relent = relent_error(&error).unwrap_or_else(|| panic!("not relent's: {error:?}"));
    assert_eq!(
        relent.reason(),
        Some(AbortReason::DeadlineExceeded),
        "{relent}"
    );
    let retry_after = relent.retry_after().expect("the server said when");
    let announced = Duration::from_millis(limited_ms);
    assert!(
        retry_after <= announced && retry_after + Duration::from_secs(3) >= announced,
        "retry after {retry_after:?}, the server announced about {announced:?}"
    );
    assert!(error.to_string().contains("deadline_exceeded"), "{error}");
    assert!(!format!("{error:?}").contains("stub-1"), "{error:?}");
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn a_streaming_chat_behind_a_dead_key_streams_from_the_live_one() {
    let (stub, schedule) = start_stub(DEAD_KEY_AMONG_THREE).await;
    let client = quick_client(&stub, &schedule);
    let mut stream = client.chat().create_stream(chat("gpt-4o")).await.unwrap();
    let mut text = String::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        chunks += 1;
        if let Some(part) = chunk
            .choices
            .first()
            .and_then(|c| c.delta.content.as_deref())
        {
            text.push_str(part);
        }
    }
    assert_eq!(text, "Hello!");
    assert!(chunks >= 2, "{chunks} chunks");
    let seen = stub.seen();
    assert_eq!(
        seen.iter().map(|s| s.key.map(|k| k.0)).collect::<Vec<_>>(),
        vec![Some(1), Some(2)]
    );
}

#[tokio::test]
async fn a_fallback_moves_the_url_under_the_next_base_and_rewrites_the_model() {
    // Target 1's model is gone; target 2 is another model at another base path of the stub.
    let (stub, schedule) = start_stub(
        r#"{"targets": [
              {"provider": "openai", "model": "gpt-4o", "keys": [{"id": 1, "label": "a"}]},
              {"provider": "openai", "model": "gpt-4o-mini", "keys": [{"id": 2, "label": "b"}]}],
            "faults": [{"scope": {"target": 0}, "kind": {"type": "model_not_found"}}],
            "latency_ms": 2}"#,
    )
    .await;
    let bases = [format!("{}/v1", stub.base_url()), stub.base_url()];
    let client = openai_client(&bases[0], state(&schedule, &bases, quick()));
    let answer = client.chat().create(chat("gpt-4o")).await.unwrap();
    assert_eq!(answer.model, "gpt-4o-mini");
    let seen = stub.seen();
    let sent: Vec<_> = seen
        .iter()
        .map(|s| (s.path.as_str(), s.model.as_deref(), s.key.map(|k| k.0)))
        .collect();
    assert_eq!(
        sent,
        vec![
            ("/v1/chat/completions", Some("gpt-4o"), Some(1)),
            ("/chat/completions", Some("gpt-4o-mini"), Some(2)),
        ]
    );
}
