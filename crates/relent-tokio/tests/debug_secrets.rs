//! Every public driver type that can hold a secret, built around a canary secret and
//! formatted with `{:?}` (and `{}` where it has `Display`): neither the canary nor any
//! 12-character piece of it may appear. The canaries are searched for directly; relent's
//! redactor is not asked whether they are secrets.

use relent::{KeyId, KeySpec, Policy, Provider, Target};
use relent_tokio::{
    Api, AttemptRequest, AttemptResult, BodyReader, Client, Endpoint, Headers, KeyStore, NextChunk,
    ReqwestTransport, Secret, Transport,
};
use std::sync::{Arc, Mutex};

/// A key as OpenAI issues them.
const KEY: &str = "sk-proj-Cn4rY7cAn4ryZ9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz";
/// A Google key, for URLs.
const URL_KEY: &str = "AIzaSyCanary0123456789abcdefGHIJKLmnop";
/// A password in a URL's user part, and a value of an extra header.
const PASSWORD: &str = "hunter2-Canary-Pa55w0rd-long-enough";
/// A cookie a response sets.
const COOKIE: &str = "session=Cookie9Canary8Value7Zz6Yy5Xx4";

/// The first piece of `canary` (whole, or any 12 characters) in `text`.
fn piece_of(text: &str, canary: &str) -> Option<String> {
    let chars: Vec<char> = canary.chars().collect();
    if text.contains(canary) {
        return Some(canary.to_string());
    }
    chars
        .windows(12)
        .map(|w| w.iter().collect::<String>())
        .find(|w| text.contains(w.as_str()))
}

fn assert_hidden(what: &str, text: &str) {
    for canary in [KEY, URL_KEY, PASSWORD, COOKIE] {
        if let Some(piece) = piece_of(text, canary) {
            panic!("{what} shows {piece:?}: {text}");
        }
    }
}

fn url() -> String {
    format!("https://user:{PASSWORD}@llm.example.com/v1beta/models/gemini:generateContent?alt=sse&key={URL_KEY}#token={KEY}")
}

/// Records what it is asked to send, formatted, and answers 200 with a cookie.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
}

struct Body(Option<Vec<u8>>);

impl BodyReader for Body {
    fn next_chunk(&mut self) -> NextChunk<'_> {
        let chunk = self.0.take();
        Box::pin(async move { Ok(chunk) })
    }
}

impl Transport for Recorder {
    fn send(
        &self,
        request: AttemptRequest<'_>,
    ) -> impl std::future::Future<Output = AttemptResult> + Send {
        // The real values are there to send ...
        let auth = request.headers.get("authorization").unwrap_or_default();
        assert_eq!(auth, format!("Bearer {KEY}"));
        assert_eq!(request.url, url());
        // ... and hidden from anything that formats the request.
        self.seen.lock().unwrap().push(format!(
            "{request:?}\n{}\n{:?}",
            request.headers, request.headers
        ));
        async move {
            AttemptResult::Response {
                status: 200,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("set-cookie".into(), COOKIE.into()),
                ],
                body: Box::new(Body(Some(br#"{"id":"x","choices":[]}"#.to_vec()))),
            }
        }
    }
}

fn target() -> Target {
    Target {
        provider: Provider::Gemini,
        model: "gemini".into(),
        context_tokens: None,
        keys: vec![KeySpec::new(1, "main")],
    }
}

fn keys() -> KeyStore {
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new(KEY));
    keys
}

fn endpoint() -> Endpoint {
    Endpoint::new(url(), Api::OpenAiCompatible)
}

#[test]
fn values_types_hide_their_secrets() {
    let secret = Secret::new(KEY);
    assert_hidden("Secret {:?}", &format!("{secret:?}"));
    assert_hidden("Secret {}", &format!("{secret}"));
    assert_hidden("KeyStore", &format!("{:?}", keys()));
    assert_hidden("Endpoint", &format!("{:?}", endpoint()));
    assert_hidden("redact_url", &relent_tokio::redact_url(&url()));

    let mut headers = Headers::new();
    headers.push("authorization", format!("Bearer {KEY}"));
    headers.push("x-api-key", KEY);
    headers.push("X-Goog-Api-Key", URL_KEY);
    headers.push("proxy-authorization", format!("Basic {PASSWORD}"));
    headers.push("cookie", COOKIE);
    headers.push_sensitive("x-custom", PASSWORD);
    // Not named as a credential, but holding one: the redactor's patterns still apply.
    headers.push("x-debug", format!("echo {KEY}"));
    headers.push("content-type", "application/json");
    assert_hidden("Headers {:?}", &format!("{headers:?}"));
    assert_hidden("Headers {}", &format!("{headers}"));
    assert!(format!("{headers}").contains("content-type: application/json"));
    assert_eq!(headers.get("x-api-key"), Some(KEY), "values stay usable");

    let request = AttemptRequest {
        method: "POST",
        url: &url(),
        headers,
        body: KEY.as_bytes(),
        fresh_connection: false,
    };
    assert_hidden("AttemptRequest", &format!("{request:?}"));
    assert_hidden("AttemptRequest {:#?}", &format!("{request:#?}"));

    let transport = ReqwestTransport::with_builder(move || {
        reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(format!("http://user:{PASSWORD}@127.0.0.1:9")).unwrap())
    });
    assert_hidden("ReqwestTransport", &format!("{transport:?}"));
}

#[test]
fn the_client_and_what_it_builds_hide_secrets() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let recorder = Recorder::default();
        let client = Client::new(
            recorder.clone(),
            vec![target()],
            vec![endpoint()],
            keys(),
            Policy::default(),
        )
        .unwrap()
        .extra_headers(vec![
            ("x-proxy-token".into(), PASSWORD.into()),
            ("content-type".into(), "application/json".into()),
        ]);
        assert_hidden("Client", &format!("{client:?}"));
        assert_hidden("Client {:#?}", &format!("{client:#?}"));

        let done = client.call(b"{}").await.unwrap();
        assert_eq!(
            done.headers[1].1, COOKIE,
            "the response headers stay usable"
        );
        assert_hidden("Completion", &format!("{done:?}"));

        let streaming = client
            .call_streaming(b"{}", Default::default())
            .await
            .unwrap();
        assert_hidden("Streaming", &format!("{streaming:?}"));

        let seen = recorder.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        for request in &seen {
            assert_hidden("a request the client built", request);
        }
        assert!(
            seen[0].contains("x-proxy-token") && seen[0].contains("[redacted]"),
            "{}",
            seen[0]
        );
    });
}
