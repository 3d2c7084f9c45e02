//! One stub provider and a client of it with an optional seed, for the seed tests.

use relent::{KeySpec, Policy, Provider, Target};
use relent_sim::stub::Stub;
use relent_sim::Schedule;
use relent_tokio::{Client, Endpoint, KeyStore, ReqwestTransport, Secret};

pub async fn stub() -> Stub {
    let schedule: Schedule = serde_json::from_str(
        r#"{"targets":[{"provider":"openai","model":"gpt-4o","keys":[{"id":1,"label":"k"}]}],"latency_ms":1}"#,
    )
    .unwrap();
    Stub::start(schedule, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

pub fn client(stub: &Stub, seed: Option<u64>) -> Client<ReqwestTransport> {
    let mut keys = KeyStore::new();
    keys.insert(relent::KeyId(1), Secret::new("stub-1"));
    let mut builder = Client::builder(ReqwestTransport::new())
        .target(
            Target::new(Provider::Openai, "gpt-4o", vec![KeySpec::new(1, "k")]),
            Endpoint::openai(format!("{}/v1/chat/completions", stub.base_url())),
        )
        .keys(keys)
        .policy(Policy::default());
    if let Some(seed) = seed {
        builder = builder.seed(seed);
    }
    builder.build().unwrap()
}

pub const BODY: &[u8] = br#"{"model":"gpt-4o","messages":[]}"#;
