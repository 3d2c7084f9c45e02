//! Committed streams: error events, cancellation, silence.
//!
//! The world: a provider that answers 200 with server-sent events, sends a first delta,
//! and then either an Anthropic `overloaded_error` event, or nothing more while the
//! connection stays open. What must happen: the error event ends the stream with
//! `failed_after_commit` and the classified reason (`overloaded`), after the data that
//! came before it, with one request only (never retried behind the caller's back, since
//! part of the answer was delivered; a buffered call, which has handed nothing over, treats
//! it as an error answer and lets the machine decide); a cancel ends a silent stream at once with
//! `cancelled`; a silent stream ends at the body idle timeout. Why: `next_chunk` had no
//! deadline, idle timeout or cancellation, and an error event after the first chunk was
//! reported as success.

mod common;

use common::{serve, Reply};
use relent::{AbortReason, KeyId, KeySpec, Provider, Reason, Target};
use relent_tokio::{
    CallError, CallOptions, CancellationToken, Client, Endpoint, KeyStore, Request,
    ReqwestTransport, Secret,
};
use std::time::Duration;

const DELTA: &[u8] = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n";
const OVERLOADED: &[u8] = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";

fn client(url: String) -> Client<ReqwestTransport> {
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new("secret-1"));
    Client::builder(ReqwestTransport::new())
        .target(
            Target::new(Provider::Anthropic, "claude-x", vec![KeySpec::new(1, "k")]),
            Endpoint::anthropic(url),
        )
        .keys(keys)
        .policy(common::quick())
        .body_idle_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn sse(chunks: Vec<(u64, Vec<u8>)>, hang: bool) -> Reply {
    Reply::Chunks {
        status: 200,
        content_type: "text/event-stream",
        chunks,
        hang,
    }
}

fn assert_overloaded_after_commit(error: CallError) {
    let abort = error.abort().expect("an abort").clone();
    assert_eq!(abort.reason, AbortReason::FailedAfterCommit, "{abort:?}");
    assert_eq!(abort.last_failure, Some(Reason::Overloaded), "{abort:?}");
}

#[tokio::test]
async fn an_error_event_mid_stream_is_failed_after_commit_and_not_retried() {
    let server =
        serve(|_, _| sse(vec![(0, DELTA.to_vec()), (100, OVERLOADED.to_vec())], false)).await;
    let client = client(server.url("/v1/messages"));
    let mut stream = client
        .send_streaming(Request::raw(&b"{}"[..]), CallOptions::new())
        .await
        .unwrap();
    let first = stream.next_chunk().await.unwrap().unwrap();
    assert_eq!(first, DELTA);
    let error = stream.next_chunk().await.unwrap_err();
    assert_overloaded_after_commit(error);
    assert_eq!(stream.next_chunk().await.unwrap(), None);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn an_error_event_in_the_same_chunk_comes_after_the_data_before_it() {
    let mut both = DELTA.to_vec();
    both.extend_from_slice(OVERLOADED);
    // The streamed call gets the error; a buffered call's first answer too, its second not.
    let server = serve(move |_, index| match index {
        0 | 1 => sse(vec![(0, DELTA.to_vec()), (50, both.clone())], false),
        _ => sse(vec![(0, DELTA.to_vec()), (50, DELTA.to_vec())], false),
    })
    .await;
    let client = client(server.url("/v1/messages"));
    let mut stream = client
        .send_streaming(Request::raw(&b"{}"[..]), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(stream.next_chunk().await.unwrap().unwrap(), DELTA);
    assert_eq!(stream.next_chunk().await.unwrap().unwrap(), DELTA);
    assert_overloaded_after_commit(stream.next_chunk().await.unwrap_err());
    assert_eq!(server.seen().len(), 1);

    // A buffered call hands nothing over before its body is whole, so an error event in
    // it is an error answer like any other: the machine decides (here: wait, try again).
    let done = client.call(b"{}").await.unwrap();
    assert_eq!(done.attempts, 2);
    assert_eq!(done.body, [DELTA, DELTA].concat());
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn cancelling_mid_stream_ends_it_at_once() {
    let server = serve(|_, _| sse(vec![(0, DELTA.to_vec())], true)).await;
    let client = client(server.url("/v1/messages"));
    // No idle timeout to speak of: only the cancel can end this stream soon.
    let client = client.body_idle_timeout(Duration::from_secs(3600));
    let cancel = CancellationToken::new();
    let mut stream = client
        .send_streaming(
            Request::raw(&b"{}"[..]),
            CallOptions::new().cancel(cancel.clone()),
        )
        .await
        .unwrap();
    assert_eq!(stream.next_chunk().await.unwrap().unwrap(), DELTA);
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let error = tokio::time::timeout(Duration::from_secs(10), stream.next_chunk())
        .await
        .expect("the cancel ends the read")
        .unwrap_err();
    assert_eq!(error.abort().unwrap().reason, AbortReason::Cancelled);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_silent_stream_ends_at_the_idle_timeout() {
    let server = serve(|_, _| sse(vec![(0, DELTA.to_vec())], true)).await;
    let client = client(server.url("/v1/messages"));
    let mut stream = client
        .send_streaming(Request::raw(&b"{}"[..]), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(stream.next_chunk().await.unwrap().unwrap(), DELTA);
    let error = tokio::time::timeout(Duration::from_secs(10), stream.next_chunk())
        .await
        .expect("the idle timeout ends the read")
        .unwrap_err();
    assert_eq!(
        error.abort().unwrap().reason,
        AbortReason::FailedAfterCommit
    );
    assert_eq!(server.seen().len(), 1);
}
