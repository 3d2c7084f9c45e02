//! Randomness per client.
//!
//! The world: two clients built the same way, with no seed, call the same stub provider
//! once each. What must happen: their requests carry different idempotency keys (and
//! their calls different seeds), because each client seeds from OS entropy. Why: every
//! client used to start from seed `0x5eed`, so two clients (or one program after a
//! restart) sent the same key, which a deduplicating gateway may answer with another
//! call's response, and drew the same jitter. The control: two clients given the same
//! explicit seed do send the same key, so the check can tell the difference. (That each
//! call's seed is in its tracing span is checked in `seed_span.rs`, a test binary of its
//! own.)

mod seeded;

use seeded::{client, stub, BODY};

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
