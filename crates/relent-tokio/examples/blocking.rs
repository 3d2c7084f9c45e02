//! A blocking driver loop, for programs without an async runtime: plain `std::net` HTTP/1.1
//! and `std::thread::sleep`, with relent's machine deciding. (The stub provider it talks to
//! runs on a background thread with its own runtime; that is test equipment, not part of the
//! loop.)
//!
//! ```sh
//! cargo run -p relent-tokio --example blocking
//! ```

use relent::{
    Action, HttpResponse, KeySpec, Observation, Policy, Provider, RetryMachine, Target, Time,
    TransportError,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let addr = start_stub();
    let target = Target::new(
        Provider::Openai,
        "gpt-4o",
        vec![KeySpec::new(1, "primary"), KeySpec::new(2, "backup")],
    );
    let secrets = ["stub-1", "stub-2"];
    let mut machine =
        RetryMachine::new(Policy::default(), vec![target], 42).expect("a valid configuration");
    let start = Instant::now();
    let now = || Time(start.elapsed().as_millis() as u64);

    machine.start(now()).expect("a new machine starts");
    loop {
        let Some(action) = machine.poll_action() else {
            // Waiting for a timer (this loop sends synchronously, so only sleeps remain).
            let until = machine
                .next_timeout()
                .expect("a waiting machine has a timer");
            std::thread::sleep(Duration::from_millis(until.0.saturating_sub(now().0)));
            machine.handle_timeout(now()).expect("a due timer fits");
            continue;
        };
        match action {
            Action::Send(send) => {
                println!("send #{} with key {}", send.attempt, send.key);
                let secret = secrets[send.key.0 as usize - 1];
                let timeout =
                    Duration::from_millis(send.timeout_at.0.saturating_sub(now().0).max(1));
                match post(addr, secret, &send.idempotency_key.to_string(), timeout) {
                    Ok((status, headers, body)) => {
                        let pairs: Vec<(&str, &str)> = headers
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        machine
                            .handle_response(
                                now(),
                                Observation::Http(HttpResponse {
                                    status,
                                    headers: &pairs,
                                    body: &body,
                                }),
                            )
                            .expect("a response fits");
                    }
                    Err(kind) => machine
                        .handle_response(now(), Observation::Transport(kind))
                        .expect("a failure fits"),
                }
            }
            Action::Sleep { until, reason } => println!("sleep until {until} ({reason:?})"),
            Action::Rotate { from, to, why } => {
                let from = from.map_or_else(|| "none".to_string(), |f| f.key.to_string());
                println!("rotate {from} -> {} ({why})", to.key)
            }
            Action::Succeeded { via, attempts } => {
                println!("succeeded via {} after {attempts} attempt(s)", via.key);
                break;
            }
            Action::Abort(abort) => {
                println!("gave up: {}: {}", abort.reason, abort.message);
                break;
            }
        }
    }
}

/// Status, headers and body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// One HTTP/1.1 POST on a new connection.
fn post(
    addr: SocketAddr,
    secret: &str,
    idempotency_key: &str,
    timeout: Duration,
) -> Result<Answer, TransportError> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|_| TransportError::ConnectRefused)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|_| TransportError::Other)?;
    let body = r#"{"model":"gpt-4o","messages":[]}"#;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {secret}\r\nIdempotency-Key: {idempotency_key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|_| TransportError::Reset)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut {
            TransportError::Timeout
        } else {
            TransportError::Reset
        }
    })?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(TransportError::Reset)?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(TransportError::Reset)?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok((status, headers, raw[split + 4..].to_vec()))
}

/// The stub provider on a background thread: the first key is dead.
fn start_stub() -> SocketAddr {
    let schedule: relent_sim::Schedule = serde_json::from_str(
        r#"{"targets": [{"provider": "openai", "model": "gpt-4o", "keys": [{"id": 1, "label": "primary"}, {"id": 2, "label": "backup"}]}],
            "faults": [{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}], "latency_ms": 20}"#,
    )
    .expect("a valid schedule");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let stub =
                relent_sim::stub::Stub::start(schedule, "127.0.0.1:0".parse().expect("an address"))
                    .await
                    .expect("the stub starts");
            tx.send(stub.addr).expect("main thread waits");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("the stub's address")
}
