//! What one call learns reaches the other running calls of the client.
//!
//! The world: one client, one target, keys 1 and 2; key 1 is dead (401 every time), key
//! 2 works. Call B starts first and its first request (key 1) is held by the server for
//! 400 ms and answered 503, so B backs off and sends again. Meanwhile call A starts, is
//! told at once that key 1 is dead (401), revokes it and succeeds with key 2. What must
//! happen: B's second request uses key 2, because B learns of A's revocation before it
//! decides; B makes 2 requests and no request with key 1 reaches the server after the
//! 401 that revoked it. Why: each call used to work on its own copy of the pool, so B
//! sent again with the key A had revoked (issue #17: "call B sent with a key at 684 ms
//! that call A had revoked at 165 ms").

mod common;

use common::{serve, Reply, OPENAI_BAD_KEY, OPENAI_OK};
use relent::{KeyId, KeySpec, KeyState, Provider, Target};
use relent_tokio::{CallOptions, Client, Endpoint, KeyStore, Request, ReqwestTransport, Secret};
use std::time::Duration;

#[tokio::test]
async fn call_b_never_sends_with_the_key_call_a_revoked() {
    let server = serve(|r, _| {
        let call = r.header("x-call").unwrap_or("");
        let key = r.header("authorization").unwrap_or("");
        if call == "B" && r.header("x-relent-attempt") == Some("1") {
            return Reply::After(
                400,
                Box::new(Reply::Json(
                    503,
                    r#"{"error":{"message":"The server is overloaded","type":"server_error"}}"#
                        .into(),
                )),
            );
        }
        if key == "Bearer secret-1" {
            Reply::Json(401, OPENAI_BAD_KEY.into())
        } else {
            Reply::Json(200, OPENAI_OK.into())
        }
    })
    .await;
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new("secret-1"));
    keys.insert(KeyId(2), Secret::new("secret-2"));
    let client = Client::builder(ReqwestTransport::new())
        .target(
            Target::new(
                Provider::Openai,
                "gpt-4o",
                vec![KeySpec::new(1, "dead"), KeySpec::new(2, "good")],
            ),
            Endpoint::openai(server.url("/v1/chat/completions")),
        )
        .keys(keys)
        .policy(common::quick())
        .build()
        .unwrap();

    let b = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .send(
                    Request::raw(&b"{}"[..]),
                    CallOptions::new().header("x-call", "B"),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let a = client
        .send(
            Request::raw(&b"{}"[..]),
            CallOptions::new().header("x-call", "A"),
        )
        .await
        .unwrap();
    assert_eq!(a.attempts, 2); // the dead key, then the good one at once
    let b = b.await.unwrap().unwrap();

    let seen = server.seen();
    let key_of = |r: &common::Recorded| r.header("authorization").unwrap_or("").to_string();
    let b_keys: Vec<_> = seen
        .iter()
        .filter(|r| r.header("x-call") == Some("B"))
        .map(key_of)
        .collect();
    assert_eq!(b_keys, ["Bearer secret-1", "Bearer secret-2"], "{seen:#?}");
    assert_eq!(b.attempts, 2);
    // The 401 that revoked key 1 was A's first request; nothing used key 1 after it.
    let revoked_at = seen
        .iter()
        .find(|r| r.header("x-call") == Some("A"))
        .map(|r| r.at_ms)
        .unwrap();
    let late: Vec<_> = seen
        .iter()
        .filter(|r| r.at_ms > revoked_at && key_of(r) == "Bearer secret-1")
        .collect();
    assert!(late.is_empty(), "{late:#?}");
    assert_eq!(client.pool().state(KeyId(1)), KeyState::Revoked);
}

#[tokio::test]
async fn a_key_added_by_one_clone_wakes_a_call_waiting_on_another() {
    // Every key is rate limited for a minute; while a call waits, a fresh key is added
    // through a clone of the client: the call uses it at once instead of waiting.
    let server = serve(|r, _| {
        if r.header("authorization") == Some("Bearer secret-9") {
            Reply::Json(200, OPENAI_OK.into())
        } else {
            Reply::Json(
                429,
                r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#.into(),
            )
        }
    })
    .await;
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new("secret-1"));
    let client = Client::builder(ReqwestTransport::new())
        .target(
            Target::new(Provider::Openai, "gpt-4o", vec![KeySpec::new(1, "only")]),
            Endpoint::openai(server.url("/v1/chat/completions")),
        )
        .keys(keys)
        .policy(common::quick())
        .build()
        .unwrap();
    let other = client.clone();
    let call = tokio::spawn(async move { client.call(b"{}").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    other
        .add_key(0, KeySpec::new(9, "fresh"), Secret::new("secret-9"))
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the call ends soon after the key is added")
        .unwrap()
        .unwrap();
    assert_eq!(done.via.key, KeyId(9));
}
