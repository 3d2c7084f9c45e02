//! Configuration mistakes are found before the first send and never retried.
//!
//! The world: a local server that counts requests, and clients configured with one
//! mistake each: a secret with a trailing newline (what `KeyStore::from_env` gives for
//! `export KEY=$(cat key.txt)` gone wrong), a bad header value, an unparseable URL, an HTTP
//! client builder that fails, a missing secret, a key file that is fine but for its final
//! line break. What must happen: `CallError::Config`, with the server seeing 0 requests,
//! and no secret in the message. Why: the old driver let reqwest fail to build the request,
//! took that for a connection failure and retried it 5 times with 4 sleeps, sending
//! nothing; and it replaced a failing client builder (a user's proxy and root
//! certificates) by reqwest's defaults without a word.

mod common;

use common::{serve, Reply, OPENAI_OK};
use relent::{KeyId, KeySpec, Policy, Provider, Target};
use relent_tokio::{
    CallError, CallOptions, Client, Config, Endpoint, KeyStore, Request, ReqwestTransport, Secret,
};

fn target() -> Target {
    Target::new(Provider::Openai, "gpt-4o", vec![KeySpec::new(1, "prod")])
}

fn keys(secret: &str) -> KeyStore {
    let mut keys = KeyStore::new();
    keys.insert(KeyId(1), Secret::new(secret));
    keys
}

fn assert_config(error: CallError, mentions: &str) {
    assert!(error.is_config(), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(mentions), "{text}");
    assert!(!text.contains("sk-live"), "{text}");
}

#[tokio::test]
async fn a_trailing_newline_in_a_secret_is_a_config_error_with_nothing_sent() {
    let server = serve(|_, _| Reply::Json(200, OPENAI_OK.into())).await;
    let url = server.url("/v1/chat/completions");
    let error = Client::new(
        ReqwestTransport::new(),
        vec![target()],
        vec![Endpoint::openai(url.clone())],
        keys("sk-live-1234567890\n"),
        Policy::default(),
    )
    .unwrap_err();
    assert_config(error, "line break");

    // A key added later is checked the same way.
    let client = Client::new(
        ReqwestTransport::new(),
        vec![target()],
        vec![Endpoint::openai(url.clone())],
        keys("sk-live-good"),
        Policy::default(),
    )
    .unwrap();
    let error = client
        .add_key(0, KeySpec::new(2, "new"), Secret::new("sk-live-2\r\n"))
        .unwrap_err();
    assert_config(error, "\"new\"");

    // The same secret from the environment through a configuration file.
    std::env::set_var("RELENT_TEST_NEWLINE_KEY", "sk-live-1234567890\n");
    let config = Config::from_toml_str(&format!(
        r#"
        [[targets]]
        provider = "openai"
        model = "gpt-4o"
        url = "{url}"
        keys = [{{ label = "prod", env = "RELENT_TEST_NEWLINE_KEY" }}]
        "#
    ))
    .unwrap();
    let error = config
        .builder(ReqwestTransport::new(), std::path::Path::new("."))
        .unwrap()
        .build()
        .unwrap_err();
    assert_config(error, "line break");
    assert_eq!(server.seen().len(), 0);
}

#[tokio::test]
async fn a_key_file_may_end_with_a_line_break() {
    let server = serve(|_, _| Reply::Json(200, OPENAI_OK.into())).await;
    let dir = std::env::temp_dir().join(format!("relent-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("openai.key"), "sk-live-from-file\n").unwrap();
    let path = dir.join("relent.toml");
    std::fs::write(
        &path,
        format!(
            r#"
            [[targets]]
            provider = "openai"
            model = "gpt-4o"
            url = "{}"
            keys = [{{ label = "prod", file = "openai.key" }}]
            "#,
            server.url("/v1/chat/completions")
        ),
    )
    .unwrap();
    let client = Client::from_config_file(&path).unwrap();
    client.call(b"{}").await.unwrap();
    assert_eq!(
        server.seen()[0].header("authorization"),
        Some("Bearer sk-live-from-file")
    );
}

#[tokio::test]
async fn bad_headers_urls_builders_and_missing_secrets_are_config_errors() {
    let server = serve(|_, _| Reply::Json(200, OPENAI_OK.into())).await;
    let url = server.url("/v1/chat/completions");
    let build = |endpoint: Endpoint, keys: KeyStore, transport: ReqwestTransport| {
        Client::builder(transport)
            .target(target(), endpoint)
            .keys(keys)
            .build()
    };
    // An unparseable URL.
    let error = build(
        Endpoint::openai("http//no-scheme/v1"),
        keys("sk-live-1"),
        ReqwestTransport::new(),
    )
    .unwrap_err();
    assert_config(error, "URL");
    // A header value with a line break, on the target.
    let error = build(
        Endpoint::openai(url.clone()).with_header("x-team", "a\r\nb"),
        keys("sk-live-1"),
        ReqwestTransport::new(),
    )
    .unwrap_err();
    assert_config(error, "x-team");
    // A missing secret.
    let error = build(
        Endpoint::openai(url.clone()),
        KeyStore::new(),
        ReqwestTransport::new(),
    )
    .unwrap_err();
    assert_config(error, "no secret for key k1");
    // A client builder that fails (an invalid user agent) is not replaced by defaults.
    let broken =
        ReqwestTransport::with_builder(|| reqwest::Client::builder().user_agent("bad\nagent"));
    let error = build(Endpoint::openai(url.clone()), keys("sk-live-1"), broken).unwrap_err();
    assert_config(error, "HTTP client");
    assert!(ReqwestTransport::try_with_builder(
        || reqwest::Client::builder().user_agent("bad\nagent")
    )
    .is_err());

    // A bad header in the call's options: found before the first send.
    let client = build(
        Endpoint::openai(url),
        keys("sk-live-1"),
        ReqwestTransport::new(),
    )
    .unwrap();
    let error = client
        .send(
            Request::raw(&b"{}"[..]),
            CallOptions::new().header("x-trace", "line\nbreak"),
        )
        .await
        .unwrap_err();
    assert_config(error, "x-trace");
    let error = client
        .send(
            Request::raw(&b"{}"[..]).method("NOT A METHOD"),
            CallOptions::new(),
        )
        .await
        .unwrap_err();
    assert_config(error, "method");
    assert_eq!(server.seen().len(), 0);
}
