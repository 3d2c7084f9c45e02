//! Serves relent's metrics as Prometheus text.
//!
//! Installs metrics-exporter-prometheus as the `metrics` recorder, starts relent-sim's stub
//! provider with a dead first key, makes a few calls through the client (each rotates to the
//! second key), and serves the text at `http://127.0.0.1:9898/metrics` until Ctrl-C.
//!
//! ```text
//! cargo run -p relent-tokio --example metrics            # serve
//! cargo run -p relent-tokio --example metrics -- --once  # print and exit
//! ```
//!
//! Any other `metrics` exporter (OpenTelemetry, StatsD) plugs in the same way; see
//! `relent_tokio::metrics` for the names and labels.

use relent::{KeyId, Policy};
use relent_tokio::{Client, Endpoint, KeyStore, ReqwestTransport, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;

    let schedule: relent_sim::Schedule = serde_json::from_str(
        r#"{"targets":[{"provider":"openai","model":"gpt-4o","keys":[{"id":1,"label":"old"},{"id":2,"label":"new"}]}],
            "faults":[{"scope":{"key":1},"kind":{"type":"key_rejected"}}],"latency_ms":5}"#,
    )?;
    let stub = relent_sim::stub::Stub::start(schedule.clone(), "127.0.0.1:0".parse()?).await?;
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new("stub-1"));
    keys.insert(KeyId(2), Secret::new("stub-2"));
    let client = Client::new(
        ReqwestTransport::new(),
        schedule.targets,
        vec![Endpoint::openai(format!(
            "{}/v1/chat/completions",
            stub.base_url()
        ))],
        keys,
        Policy::default(),
    )?;
    for _ in 0..3 {
        client.call(br#"{"model":"gpt-4o","messages":[]}"#).await?;
    }

    if std::env::args().any(|a| a == "--once") {
        print!("{}", handle.render());
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9898").await?;
    println!("serving http://127.0.0.1:9898/metrics (Ctrl-C to stop)");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (mut socket, _) = accepted?;
                let handle = handle.clone();
                tokio::spawn(async move {
                    // One request per connection; whatever was asked, the answer is the text.
                    let mut request = [0u8; 1024];
                    let _ = socket.read(&mut request).await;
                    let body = handle.render();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                });
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
