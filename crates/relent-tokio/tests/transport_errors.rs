//! reqwest's failures, caused for real on loopback, reach relent as the right transport error
//! kinds, and the client acts on them: a certificate it would not trust is never retried,
//! while a trusted TLS server works. Certificates are made at test time (rcgen); the TLS
//! servers are a few lines of tokio-rustls that answer one fixed HTTP/1.1 response.

use relent::{AbortReason, KeySpec, Policy, Provider, Target, TransportError};
use relent_tokio::{
    Api, AttemptRequest, AttemptResult, Client, Endpoint, KeyStore, ReqwestTransport, Secret,
    Transport,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const OK_BODY: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}]}"#;

/// One attempt with a transport, expecting it to fail below HTTP.
async fn failure(transport: &ReqwestTransport, url: &str) -> TransportError {
    let result = transport
        .send(AttemptRequest {
            method: "POST",
            url,
            headers: vec![("content-type".to_string(), "application/json".to_string())].into(),
            body: b"{}",
            fresh_connection: true,
        })
        .await;
    match result {
        AttemptResult::Failed(kind) => kind,
        other => panic!("expected a transport failure from {url}, got {other:?}"),
    }
}

/// A self-signed certificate for 127.0.0.1, and the server config that presents it.
fn certificate() -> (rcgen::CertifiedKey, Arc<rustls::ServerConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .expect("a self-signed certificate");
    let chain = vec![certified.cert.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a server config");
    (certified, Arc::new(config))
}

/// A TLS server on loopback that answers every request with a 200 and counts the TCP
/// connections it accepts.
async fn tls_server(config: Arc<rustls::ServerConfig>) -> (String, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    let connections = Arc::new(AtomicU32::new(0));
    let counter = connections.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake: nothing to do.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if read_request(&mut tls).await.is_some() {
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{OK_BODY}",
                        OK_BODY.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (url, connections)
}

/// Reads one request (head and a `content-length` body); `None` if the peer went away.
async fn read_request<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(data);
            }
        }
    }
}

fn client(transport: ReqwestTransport, url: String) -> Client<ReqwestTransport> {
    let targets = vec![Target::new(
        Provider::Openai,
        "gpt-4o",
        vec![KeySpec::new(1, "tls-key")],
    )];
    let mut keys = KeyStore::new();
    keys.insert(relent::KeyId(1), Secret::new("sk-test-not-a-real-key"));
    let endpoints = vec![Endpoint::new(url, Api::OpenAiCompatible)];
    Client::new(transport, targets, endpoints, keys, Policy::default()).unwrap()
}

#[tokio::test]
async fn a_closed_port_is_connection_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    assert_eq!(
        failure(&ReqwestTransport::new(), &url).await,
        TransportError::ConnectRefused
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_certificate_failure() {
    let (_, config) = certificate();
    let (url, _) = tls_server(config).await;
    assert_eq!(
        failure(&ReqwestTransport::new(), &url).await,
        TransportError::TlsCertificate
    );
}

/// A plain TCP server on loopback that reads one request per connection, then answers
/// with `reply` (nothing: just close) and closes. Returns its `host:port`.
async fn plain_server(reply: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            // A TLS client's hello is not HTTP: read what comes, whatever it is.
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp.write_all(reply).await;
        }
    });
    address
}

#[tokio::test]
async fn plain_http_behind_https_is_a_handshake_failure() {
    let address = plain_server(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
    assert_eq!(
        failure(&ReqwestTransport::new(), &format!("https://{address}/")).await,
        TransportError::TlsHandshake
    );
}

#[tokio::test]
async fn a_connection_closed_before_the_response_is_a_reset() {
    let address = plain_server(b"").await;
    assert_eq!(
        failure(&ReqwestTransport::new(), &format!("http://{address}/")).await,
        TransportError::Reset
    );
}

#[tokio::test]
async fn the_client_never_retries_a_certificate_it_does_not_trust() {
    let (_, config) = certificate();
    let (url, connections) = tls_server(config).await;
    let error = client(ReqwestTransport::new(), url)
        .call(b"{}")
        .await
        .unwrap_err();
    let abort = error.abort().expect("an abort");
    assert_eq!(abort.reason, AbortReason::NotRetryable, "{}", abort.message);
    assert!(
        abort.message.contains("certificate"),
        "the message says what to check: {}",
        abort.message
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1, "exactly one attempt");
}

#[tokio::test]
async fn a_trusted_certificate_works_through_a_configured_transport() {
    let (certified, config) = certificate();
    let (url, connections) = tls_server(config).await;
    let root = reqwest::Certificate::from_der(certified.cert.der()).unwrap();
    let transport = ReqwestTransport::with_builder(move || {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root.clone())
    });
    let completion = client(transport, url).call(b"{}").await.unwrap();
    assert!(
        String::from_utf8_lossy(&completion.body).contains("Hello!"),
        "{:?}",
        completion
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}
