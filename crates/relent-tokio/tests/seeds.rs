//! Randomness per client.
//!
//! The world: two clients built the same way, with no seed, call the same stub provider
//! once each. What must happen: their requests carry different idempotency keys (and
//! their calls different seeds), because each client seeds from OS entropy. Why: every
//! client used to start from seed `0x5eed`, so two clients (or one program after a
//! restart) sent the same key, which a deduplicating gateway may answer with another
//! call's response, and drew the same jitter. The control: two clients given the same
//! explicit seed do send the same key, so the check can tell the difference. And each
//! call's seed is in its `relent.call` tracing span, so a call seen in a log can be
//! replayed in the simulator.

use relent::{KeySpec, Policy, Provider, Target};
use relent_sim::stub::Stub;
use relent_sim::Schedule;
use relent_tokio::{Client, Endpoint, KeyStore, ReqwestTransport, Secret};

async fn stub() -> Stub {
    let schedule: Schedule = serde_json::from_str(
        r#"{"targets":[{"provider":"openai","model":"gpt-4o","keys":[{"id":1,"label":"k"}]}],"latency_ms":1}"#,
    )
    .unwrap();
    Stub::start(schedule, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn client(stub: &Stub, seed: Option<u64>) -> Client<ReqwestTransport> {
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

const BODY: &[u8] = br#"{"model":"gpt-4o","messages":[]}"#;

#[tokio::test]
async fn two_clients_send_different_idempotency_keys() {
    let stub = stub().await;
    let a = client(&stub, None).call(BODY).await.unwrap();
    let b = client(&stub, None).call(BODY).await.unwrap();
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].idempotency_key.is_some());
    assert_ne!(seen[0].idempotency_key, seen[1].idempotency_key);
    assert_ne!(a.seed, b.seed);
}

#[tokio::test]
async fn a_fixed_seed_replays_the_same_keys() {
    let stub = stub().await;
    let a = client(&stub, Some(42)).call(BODY).await.unwrap();
    let b = client(&stub, Some(42)).call(BODY).await.unwrap();
    let seen = stub.seen();
    assert_eq!(seen[0].idempotency_key, seen[1].idempotency_key);
    assert_eq!((a.seed, b.seed), (42, 42));
    // Calls of one client take successive seeds, so they differ from each other.
    let c = client(&stub, Some(42));
    c.call(BODY).await.unwrap();
    let second = c.call(BODY).await.unwrap();
    assert_eq!(second.seed, 43);
    let seen = stub.seen();
    assert_ne!(seen[2].idempotency_key, seen[3].idempotency_key);
}

/// A writer into a shared buffer, for the log of one test.
#[derive(Clone, Default)]
struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_calls_seed_is_in_its_tracing_span() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let stub = stub().await;
            client(&stub, Some(4242)).call(BODY).await.unwrap();
        })
    });
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("relent.call{seed=4242"), "{log}");
}
