//! Test equipment: a real redis-server started by the test (killed on drop), a stub
//! provider schedule, and a fleet worker: this test binary run again as a child process
//! that holds one client and answers commands on stdin.

#![allow(dead_code)]

use relent::KeyId;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A redis-server on a free loopback port, without persistence.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    password: Option<String>,
}

/// Whether redis-server can be started. When it cannot: under CI (env `CI` set) the test
/// fails with a clear message; elsewhere it prints a loud skip notice and the test returns.
fn available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!(
                "redis-server is not installed, and CI is set: the fleet tests need a real \
                 Redis (.ci/run installs it with `apt-get install -y redis-server`)"
            );
        }
        // Straight to stderr, past the test harness's capture, so it is seen.
        let _ = std::io::stderr().write_all(
            b"\n!!!!!!!! SKIPPED: redis-server not found on PATH; the relent-redis fleet \
              tests did not run. Install it (apt-get install redis-server) to run them. \
              !!!!!!!!\n\n",
        );
    }
    found
}

impl RedisServer {
    /// Starts one, or returns `None` (after the notice) when redis-server is missing.
    pub fn start(password: Option<&str>) -> Option<RedisServer> {
        if !available() {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut server = RedisServer {
            child: None,
            port,
            password: password.map(str::to_string),
        };
        server.launch();
        Some(server)
    }

    fn launch(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut con) = self.connection() {
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return;
                }
            }
            assert!(Instant::now() < until, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    pub fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_millis(500))
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        signal(self.pid(), "-STOP");
    }

    /// Thaws a paused server.
    pub fn resume(&self) {
        signal(self.pid(), "-CONT");
    }

    /// Kills the server; what it held is lost (no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Every key and its value(s), as text: what a canary scan looks through.
    pub fn dump(&self) -> Vec<(String, String)> {
        let mut con = self.connection().expect("connect");
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
        keys.into_iter()
            .map(|k| {
                let kind: String = redis::cmd("TYPE").arg(&k).query(&mut con).unwrap();
                let value = match kind.as_str() {
                    "hash" => {
                        let v: Vec<(String, String)> =
                            redis::cmd("HGETALL").arg(&k).query(&mut con).unwrap();
                        format!("{v:?}")
                    }
                    "string" => redis::cmd("GET").arg(&k).query(&mut con).unwrap(),
                    other => format!("<{other}>"),
                };
                (k, value)
            })
            .collect()
    }

    /// A field of a hash, as a number.
    pub fn hget(&self, key: &str, field: &str) -> Option<u64> {
        let mut con = self.connection().ok()?;
        redis::cmd("HGET")
            .arg(key)
            .arg(field)
            .query(&mut con)
            .ok()?
    }

    /// Redis's clock in ms.
    pub fn time_ms(&self) -> u64 {
        let mut con = self.connection().expect("connect");
        let (s, us): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
        s * 1000 + us / 1000
    }

    /// A key's remaining TTL in ms.
    pub fn pttl(&self, key: &str) -> i64 {
        let mut con = self.connection().expect("connect");
        redis::cmd("PTTL").arg(key).query(&mut con).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen server ignores SIGKILL until thawed on some systems: thaw first.
            signal(child.id(), "-CONT");
        }
        self.stop();
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig} {pid}");
}

/// Waits for `check` to hold, at most `within`; returns how long it took.
pub fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The stub's world: one OpenAI target, keys 1 and 2 (secrets `stub-1`, `stub-2`), and
/// the given faults.
pub fn schedule(faults: &str) -> relent_sim::Schedule {
    serde_json::from_str(&format!(
        r#"{{
            "targets": [{{"provider": "openai", "model": "gpt-4o",
                         "keys": [{{"id": 1, "label": "label-one"}}, {{"id": 2, "label": "label-two"}}]}}],
            "faults": {faults},
            "latency_ms": 2
        }}"#
    ))
    .expect("a schedule")
}

/// A client of the stub's world (`schedule`: keys 1 and 2 with their secrets) whose pool is
/// shared through `store` with the given store options.
pub fn store_client(
    stub_url: &str,
    store: relent_redis::RedisStore,
    options: relent_tokio::store::StoreOptions,
) -> relent_tokio::Client<relent_tokio::ReqwestTransport> {
    use relent_tokio::{Client, Endpoint, KeyStore, ReqwestTransport, Secret};
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new("stub-1"));
    keys.insert(KeyId(2), Secret::new("stub-2"));
    Client::builder(ReqwestTransport::new())
        .target(
            schedule("[]").targets.remove(0),
            Endpoint::openai(format!("{stub_url}/v1/chat/completions")),
        )
        .keys(keys)
        .store(store)
        .store_options(options)
        .build()
        .unwrap()
}

/// Requests the stub saw with key `id`.
pub fn sends(stub: &relent_sim::stub::Stub, id: u32) -> usize {
    stub.seen()
        .iter()
        .filter(|s| s.key == Some(KeyId(id)))
        .count()
}

/// One fleet worker: a child process holding one client with a Redis store.
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Everything the child wrote, protocol and logs: a canary scan looks through it.
    pub transcript: Arc<Mutex<String>>,
}

/// The environment variable that turns the test binary into a worker.
pub const WORKER_ENV: &str = "RELENT_FLEET_WORKER";

/// Gives the worker's client a retry budget, `capacity,retry_cost,refill_per_sec`, with
/// breakers off and a congestion backoff of 100 to 200 ms (equal jitter on 200 ms).
pub const BUDGET_ENV: &str = "RELENT_FLEET_BUDGET";

impl Worker {
    /// Runs `test_name` of the current test binary (an ignored test that acts as the
    /// worker when [`WORKER_ENV`] is set).
    pub fn spawn(test_name: &str, redis_url: &str, namespace: &str, stub_url: &str) -> Worker {
        Worker::spawn_with(test_name, redis_url, namespace, stub_url, &[])
    }

    /// [`Worker::spawn`] with more environment for the worker (say, [`BUDGET_ENV`]).
    pub fn spawn_with(
        test_name: &str,
        redis_url: &str,
        namespace: &str,
        stub_url: &str,
        env: &[(&str, &str)],
    ) -> Worker {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .envs(env.iter().copied())
            .args([
                test_name,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WORKER_ENV, "1")
            .env("RELENT_FLEET_REDIS", redis_url)
            .env("RELENT_FLEET_NAMESPACE", namespace)
            .env("RELENT_FLEET_STUB", stub_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        let transcript = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let log = transcript.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
            }
        });
        let mut worker = Worker {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            transcript,
        };
        assert_eq!(worker.reply(), "ready");
        worker
    }

    /// Sends one command without waiting for its reply (read it with [`Worker::reply`]).
    pub fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("write the worker");
        self.stdin.flush().unwrap();
    }

    /// The next reply.
    pub fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read the worker");
            assert!(
                n > 0,
                "the worker ended early:\n{}",
                self.transcript.lock().unwrap()
            );
            self.transcript.lock().unwrap().push_str(&line);
            // The test harness may print its own words ahead of ours on the line.
            if let Some(at) = line.find("@@ ") {
                return line[at + 3..].trim_end().to_string();
            }
        }
    }

    /// Sends one command, returns the reply.
    pub fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("write the worker");
        self.stdin.flush().unwrap();
        self.reply()
    }

    /// Makes one call; returns its attempts (panics on an error).
    pub fn call(&mut self) -> u32 {
        let reply = self.ask("call");
        let rest = reply
            .strip_prefix("ok 200 ")
            .unwrap_or_else(|| panic!("call failed: {reply}"));
        rest.parse().unwrap()
    }

    /// The worker's pool state of key `id`, as `Debug`.
    pub fn state(&mut self, id: u32) -> String {
        self.ask(&format!("state {id}"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The worker's side: run by the ignored `fleet_worker` test when [`WORKER_ENV`] is set.
pub fn worker_main() {
    use relent_redis::{RedisStore, RedisStoreConfig};
    use relent_tokio::store::StoreOptions;
    use relent_tokio::{Client, Endpoint, KeyStore, ReqwestTransport, Secret};

    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = RedisStore::new(RedisStoreConfig::new(
            env("RELENT_FLEET_REDIS"),
            env("RELENT_FLEET_NAMESPACE"),
        ))
        .expect("a store");
        // Debug output goes to the transcript the canary scan reads.
        eprintln!("worker store: {store:?}");
        let mut keys = KeyStore::new();
        keys.insert(KeyId(1), Secret::new("stub-1"));
        keys.insert(KeyId(2), Secret::new("stub-2"));
        let target = schedule("[]").targets.remove(0);
        let mut policy = relent::Policy::default();
        if let Ok(budget) = std::env::var(BUDGET_ENV) {
            let n: Vec<u32> = budget.split(',').map(|x| x.parse().unwrap()).collect();
            policy.overload = relent::OverloadPolicy {
                budget: relent::BudgetPolicy {
                    capacity: n[0],
                    retry_cost: n[1],
                    timeout_retry_cost: n[1],
                    success_reward: 0,
                    retry_refund_percent: 100,
                    refill_per_sec: n[2],
                },
                breaker: relent::BreakerPolicy::off(),
            };
            policy.congestion_backoff.base_ms = 200;
            policy.congestion_backoff.cap_ms = 200;
            policy.deadline_ms = 10_000;
        }
        let client = Client::builder(ReqwestTransport::new())
            .policy(policy)
            .target(
                target,
                Endpoint::openai(format!("{}/v1/chat/completions", env("RELENT_FLEET_STUB"))),
            )
            .keys(keys)
            // Long enough that news within a test arrives by pub/sub, not by the re-read.
            .store(store)
            .store_options(
                StoreOptions::new()
                    .op_timeout(Duration::from_millis(300))
                    .reread_every(Duration::from_secs(10)),
            )
            .build()
            .expect("a client");
        eprintln!("worker client: {client:?}");
        assert!(
            client.flush_store(Duration::from_secs(5)).await,
            "Redis answers"
        );
        println!("@@ ready");
        let mut lines = BufReader::new(std::io::stdin()).lines();
        while let Some(Ok(line)) = lines.next() {
            let reply = match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["call"] => match client.call(br#"{"model": "gpt-4o", "messages": []}"#).await {
                    Ok(done) => format!("ok {} {}", done.status, done.attempts),
                    Err(e) => format!("err {e}"),
                },
                // `n` calls one after another: how many ended well, how many did not.
                ["calls", n] => {
                    let (mut ok, mut failed) = (0, 0);
                    for _ in 0..n.parse::<u32>().unwrap() {
                        match client.call(br#"{"model": "gpt-4o", "messages": []}"#).await {
                            Ok(_) => ok += 1,
                            Err(_) => failed += 1,
                        }
                    }
                    format!("calls {ok} {failed}")
                }
                ["budget"] => format!("budget {}", client.retry_budget()),
                ["flush"] => format!(
                    "flushed {}",
                    client.flush_store(Duration::from_secs(2)).await
                ),
                ["state", id] => format!("{:?}", client.pool().state(KeyId(id.parse().unwrap()))),
                ["quit"] => break,
                _ => format!("unknown command {line}"),
            };
            println!("@@ {reply}");
        }
    });
}
