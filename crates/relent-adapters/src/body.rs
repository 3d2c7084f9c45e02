//! Bodies between relent's loop and `http` types: a response body read chunk by chunk by
//! the loop, and a committed response handed back to the client as a stream.

use crate::RelentError;
use bytes::{Buf, Bytes};
use futures_util::Stream;
use http_body_util::BodyExt;
use relent::TransportError;
use relent_tokio::{BodyReader, NextChunk, RetryState, Streaming};
use std::pin::Pin;

/// The body of a response handed back by an adapter: what the provider sent, read through
/// relent (the body idle timeout, the call's deadline, server-sent error events). A
/// failure while it is read is a [`RelentError`] with reason `failed_after_commit`.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub type RelentBody = http_body_util::combinators::UnsyncBoxBody<Bytes, RelentError>;

/// The rest of a committed response as a stream of chunks; it ends after an error.
pub(crate) fn chunks(
    streaming: Streaming,
    state: RetryState,
) -> impl Stream<Item = Result<Bytes, RelentError>> + Send + 'static {
    futures_util::stream::unfold(Some((streaming, state)), |step| async move {
        let (mut streaming, state) = step?;
        match streaming.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(Bytes::from(chunk)), Some((streaming, state)))),
            Ok(None) => None,
            Err(error) => Some((Err(RelentError::new(error, &state)), None)),
        }
    })
}

/// A committed response's body as an `http_body::Body`.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn relent_body(streaming: Streaming, state: RetryState) -> RelentBody {
    use futures_util::StreamExt;
    let frames = chunks(streaming, state).map(|chunk| chunk.map(http_body::Frame::data));
    http_body_util::StreamBody::new(frames).boxed_unsync()
}

/// Reads an `http_body::Body` for the loop.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) struct HttpBodyReader<B>(pub Pin<Box<B>>);

impl<B> BodyReader for HttpBodyReader<B>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn next_chunk(&mut self) -> NextChunk<'_> {
        Box::pin(async move {
            loop {
                match self.0.frame().await {
                    None => return Ok(None),
                    Some(Ok(frame)) => {
                        if let Ok(mut data) = frame.into_data() {
                            let bytes = data.copy_to_bytes(data.remaining());
                            return Ok(Some(bytes.to_vec()));
                        }
                        // Trailers carry nothing the loop reads.
                    }
                    Some(Err(error)) => return Err(transport_kind(&*error.into())),
                }
            }
        })
    }
}

/// The transport error kind named by an error's typed causes (an I/O error's kind) or,
/// failing that, by what it says.
pub(crate) fn transport_kind(error: &(dyn std::error::Error + 'static)) -> TransportError {
    use std::io::ErrorKind;
    let mut cause = Some(error);
    let mut text = String::new();
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            match io.kind() {
                ErrorKind::ConnectionRefused => return TransportError::ConnectRefused,
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof => return TransportError::Reset,
                ErrorKind::TimedOut => return TransportError::Timeout,
                _ => {}
            }
        }
        text.push_str(&current.to_string().to_ascii_lowercase());
        text.push(' ');
        cause = current.source();
    }
    if text.contains("timed out") || text.contains("timeout") {
        TransportError::Timeout
    } else if text.contains("certificate") {
        TransportError::TlsCertificate
    } else if text.contains("tls") || text.contains("handshake") {
        TransportError::TlsHandshake
    } else if text.contains("dns") || text.contains("lookup") || text.contains("resolve") {
        TransportError::Dns
    } else if text.contains("reset") || text.contains("closed") || text.contains("incomplete") {
        TransportError::Reset
    } else if text.contains("connect") {
        TransportError::ConnectRefused
    } else {
        TransportError::Other
    }
}
