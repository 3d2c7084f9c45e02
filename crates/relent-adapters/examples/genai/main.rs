//! genai with relent, through the closure API (`relent_tokio::retry`): three keys, the
//! first of which the provider rejects, against relent-sim's stub provider on loopback.
//! Run: `cargo run -p relent-adapters --example genai`.
//!
//! genai has no tower or middleware seam, so each attempt is one `exec_chat` made inside
//! the closure relent calls; `relent_genai.rs` beside this file holds that closure and
//! says what genai keeps and loses of each answer.

mod relent_genai;

use genai::chat::{ChatOptions, ChatRequest};
use relent_tokio::{Endpoint, KeyStore, RetryState, Secret};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schedule: relent_sim::Schedule = serde_json::from_str(
        r#"{"targets": [{"provider": "openai", "model": "gpt-4o",
             "keys": [{"id": 1, "label": "old"}, {"id": 2, "label": "main"}, {"id": 3, "label": "spare"}]}],
            "faults": [{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}],
            "latency_ms": 20}"#,
    )?;
    let stub = relent_sim::stub::Stub::start(schedule.clone(), "127.0.0.1:0".parse()?).await?;
    let mut keys = KeyStore::new();
    for id in 1..=3 {
        keys.insert(relent::KeyId(id), Secret::new(format!("stub-{id}")));
    }
    // The target's endpoint is the API's base URL: genai adds `chat/completions`.
    let state = RetryState::builder()
        .target(
            schedule.targets[0].clone(),
            Endpoint::openai(format!("{}/v1", stub.base_url())),
        )
        .keys(keys)
        .build_state()?;

    // One genai client for every call and attempt. No key, no resolvers: each attempt
    // brings its own service target.
    let client = genai::Client::builder()
        .with_reqwest(relent_genai::http_client())
        .build()?;
    let request = ChatRequest::from_user("Say hello.");
    for call in 1..=2 {
        let answer = relent_genai::chat(&state, &client, &request, &ChatOptions::default()).await?;
        println!(
            "call {call}: {:?} from {}",
            answer.first_text().unwrap_or_default(),
            answer.model_iden.model_name
        );
    }
    // The dead key was sent once, by the first call; the second went straight to key 2.
    let per_key: Vec<_> = stub.seen().iter().map(|s| s.key.map(|k| k.0)).collect();
    println!("keys the provider saw, in order: {per_key:?}");
    Ok(())
}
