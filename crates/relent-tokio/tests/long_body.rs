//! Timeouts after the headers: a body idle timeout and the call's deadline, not the
//! attempt timeout.
//!
//! The world: a provider that sends its headers at once and then a non-streamed JSON body
//! in small pieces, one every 100 ms, for 1 s (a scaled-down 90 s reasoning reply with a
//! 60 s attempt timeout). The client's attempt timeout is 200 ms and its body idle
//! timeout 400 ms. What must happen: the call succeeds with one request and the whole
//! body, because bytes keep flowing; a body that stops for longer than the idle timeout
//! fails that attempt (the machine tries again: nothing had been handed over); a body that
//! outlasts the call's deadline ends the call. Why: the attempt timeout used to cover
//! reading the whole body, so a long reply always timed out and was sent again (and each
//! abandoned generation was likely billed).

mod common;

use common::{serve, Reply, OPENAI_OK};
use relent::{AbortReason, KeyId, KeySpec, Provider, Target};
use relent_tokio::{CallOptions, Client, Endpoint, KeyStore, Request, ReqwestTransport, Secret};
use std::time::Duration;

fn pieces(delay_ms: u64) -> Vec<(u64, Vec<u8>)> {
    OPENAI_OK
        .as_bytes()
        .chunks(OPENAI_OK.len().div_ceil(10))
        .map(|c| (delay_ms, c.to_vec()))
        .collect()
}

fn client(url: String) -> Client<ReqwestTransport> {
    let mut policy = common::quick();
    policy.attempt_timeout_ms = 200;
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new("secret-1"));
    Client::builder(ReqwestTransport::new())
        .target(
            Target::new(Provider::Openai, "gpt-4o", vec![KeySpec::new(1, "k")]),
            Endpoint::openai(url),
        )
        .keys(keys)
        .policy(policy)
        .body_idle_timeout(Duration::from_millis(400))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_long_body_completes_while_bytes_keep_flowing() {
    let server = serve(|_, _| Reply::Chunks {
        status: 200,
        content_type: "application/json",
        chunks: pieces(100),
        hang: false,
    })
    .await;
    let done = client(server.url("/v1/chat/completions"))
        .call(b"{}")
        .await
        .unwrap();
    assert_eq!(done.body, OPENAI_OK.as_bytes());
    assert_eq!(done.attempts, 1);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_body_that_stops_flowing_fails_the_attempt_and_is_tried_again() {
    // The first answer stalls after one piece for longer than the idle timeout; the
    // second flows.
    let server = serve(|_, index| {
        let mut chunks = pieces(50);
        if index == 0 {
            chunks.truncate(1);
        }
        Reply::Chunks {
            status: 200,
            content_type: "application/json",
            chunks,
            hang: index == 0,
        }
    })
    .await;
    let done = client(server.url("/v1/chat/completions"))
        .call(b"{}")
        .await
        .unwrap();
    assert_eq!(done.body, OPENAI_OK.as_bytes());
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn the_call_deadline_bounds_the_body() {
    let server = serve(|_, _| Reply::Chunks {
        status: 200,
        content_type: "application/json",
        chunks: pieces(150),
        hang: false,
    })
    .await;
    let error = client(server.url("/v1/chat/completions"))
        .send(
            Request::raw(&b"{}"[..]),
            CallOptions::new().deadline(Duration::from_millis(500)),
        )
        .await
        .unwrap_err();
    let abort = error.abort().expect("an abort");
    assert_eq!(abort.reason, AbortReason::DeadlineExceeded, "{abort:?}");
}
