//! Per-target requests over loopback.
//!
//! The world: a chain of two targets behind one local server, an OpenAI-compatible
//! `gpt-4o` (key 1) whose model is gone (404 `model_not_found`), then an Anthropic
//! Messages `claude-x` (key 2) that answers. The caller describes the request once, as a
//! typed chat request. What must happen: the first request goes to the chat path with a
//! Bearer key and model `gpt-4o`; the fallback goes to `/v1/messages` with `x-api-key`,
//! `anthropic-version`, no `Authorization`, model `claude-x` and the chat converted to
//! Messages (system text lifted out, `max_tokens` filled in). Why: the old driver sent
//! the same bytes, model and auth to every target, so fallback could not work. The other
//! tests check each auth style's header and that a request that cannot be converted is
//! refused before anything is sent.

mod common;

use common::{serve, Reply, ANTHROPIC_OK, OPENAI_OK};
use relent::{KeyId, KeySpec, Policy, Provider, Target};
use relent_tokio::{
    Api, Auth, CallOptions, ChatRequest, Client, Endpoint, KeyStore, Message, Request,
    ReqwestTransport, Secret, SignRequest, Signer,
};

fn chat() -> ChatRequest {
    let mut chat = ChatRequest::new(vec![
        Message::new("system", "answer briefly"),
        Message::new("user", "hi"),
    ]);
    chat.max_tokens = Some(77);
    chat
}

fn keys(n: u32) -> KeyStore {
    let mut keys = KeyStore::new();
    for i in 1..=n {
        keys.insert(KeyId(i), Secret::new(format!("secret-{i}")));
    }
    keys
}

#[tokio::test]
async fn a_gone_openai_model_falls_back_to_anthropic_with_its_model_and_auth() {
    let server = serve(|r, _| match r.path.as_str() {
        "/v1/chat/completions" => Reply::Json(
            404,
            r#"{"error":{"message":"The model `gpt-4o` does not exist or you do not have access to it.","type":"invalid_request_error","code":"model_not_found"}}"#.into(),
        ),
        "/v1/messages" => Reply::Json(200, ANTHROPIC_OK.into()),
        _ => Reply::Json(418, "{}".into()),
    })
    .await;
    let client = Client::builder(ReqwestTransport::new())
        .target(
            Target::new(Provider::Openai, "gpt-4o", vec![KeySpec::new(1, "oa")]),
            Endpoint::openai(server.url("/v1/chat/completions")),
        )
        .target(
            Target::new(Provider::Anthropic, "claude-x", vec![KeySpec::new(2, "an")]),
            Endpoint::anthropic(server.url("/v1/messages")),
        )
        .keys(keys(2))
        .policy(common::quick())
        .build()
        .unwrap();

    let done = client
        .send(Request::chat(chat()), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(done.api, Api::AnthropicMessages);
    assert_eq!(done.via.target, 1);
    assert_eq!(done.text().as_deref(), Some("hello from claude"));

    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    let (first, second) = (&seen[0], &seen[1]);
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(first.header("authorization"), Some("Bearer secret-1"));
    assert_eq!(first.json()["model"], "gpt-4o");
    assert_eq!(first.json()["messages"][0]["role"], "system");
    assert_eq!(first.header("content-type"), Some("application/json"));

    assert_eq!(second.path, "/v1/messages");
    assert_eq!(second.header("x-api-key"), Some("secret-2"));
    assert_eq!(second.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(second.header("authorization"), None);
    let body = second.json();
    assert_eq!(body["model"], "claude-x");
    assert_eq!(body["system"], "answer briefly");
    assert_eq!(body["max_tokens"], 77);
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(body["messages"][0]["content"], "hi");
    // One logical call: both attempts carry the same idempotency key.
    assert_eq!(
        first.header("idempotency-key"),
        second.header("idempotency-key")
    );
}

#[tokio::test]
async fn a_raw_body_gets_each_targets_model() {
    let server = serve(|r, _| match r.json()["model"].as_str() {
        Some("small") => Reply::Json(
            400,
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#.into(),
        ),
        _ => Reply::Json(200, OPENAI_OK.into()),
    })
    .await;
    let mut small = Target::new(Provider::Openai, "small", vec![KeySpec::new(1, "a")]);
    small.context_tokens = Some(8_192);
    let mut large = Target::new(Provider::Openai, "large", vec![KeySpec::new(2, "b")]);
    large.context_tokens = Some(128_000);
    let client = Client::builder(ReqwestTransport::new())
        .target(small, Endpoint::openai(server.url("/v1/chat/completions")))
        .target(large, Endpoint::openai(server.url("/v1/chat/completions")))
        .keys(keys(2))
        .build()
        .unwrap();
    let done = client
        .call(br#"{"model":"whatever","messages":[{"role":"user","content":"long"}]}"#)
        .await
        .unwrap();
    assert_eq!(done.via.target, 1);
    let models: Vec<_> = server
        .seen()
        .iter()
        .map(|r| r.json()["model"].clone())
        .collect();
    assert_eq!(models, ["small", "large"]);
}

#[tokio::test]
async fn a_request_that_cannot_be_converted_is_refused_before_any_send() {
    let server = serve(|_, _| Reply::Json(200, OPENAI_OK.into())).await;
    let client = Client::builder(ReqwestTransport::new())
        .target(
            Target::new(Provider::Openai, "gpt-4o", vec![KeySpec::new(1, "oa")]),
            Endpoint::openai(server.url("/v1/chat/completions")),
        )
        .target(
            Target::new(Provider::Anthropic, "claude-x", vec![KeySpec::new(2, "an")]),
            Endpoint::anthropic(server.url("/v1/messages")),
        )
        .keys(keys(2))
        .build()
        .unwrap();
    let mut with_tools = chat();
    with_tools
        .extra
        .insert("tools".into(), serde_json::json!([{"type": "function"}]));
    let error = client
        .send(Request::chat(with_tools), CallOptions::new())
        .await
        .unwrap_err();
    assert!(error.is_config(), "{error}");
    assert!(error.to_string().contains("tools"), "{error}");
    assert_eq!(server.seen().len(), 0);
}

type Check = Box<dyn Fn(&common::Recorded) -> bool>;

struct Hmac;

impl Signer for Hmac {
    fn sign(&self, request: &mut SignRequest<'_>, secret: &Secret) -> Result<(), String> {
        // Not a real signature: enough to see the signer ran with the secret and the body.
        let sum: u32 = request.body.iter().map(|&b| u32::from(b)).sum();
        request.headers.push_sensitive(
            "x-signature",
            format!("{}:{}:{sum}", request.method, secret.expose().len()),
        );
        Ok(())
    }
}

#[tokio::test]
async fn each_auth_style_puts_the_key_where_its_provider_expects_it() {
    let server = serve(|_, _| Reply::Json(200, OPENAI_OK.into())).await;
    let url = server.url("/v1/chat/completions");
    let cases: Vec<(Auth, Check)> = vec![
        (
            Auth::Bearer,
            Box::new(|r| r.header("authorization") == Some("Bearer secret-1")),
        ),
        (
            Auth::AzureApiKey,
            Box::new(|r| r.header("api-key") == Some("secret-1")),
        ),
        (
            Auth::GoogApiKey,
            Box::new(|r| r.header("x-goog-api-key") == Some("secret-1")),
        ),
        (
            Auth::QueryKey {
                param: "key".into(),
            },
            Box::new(|r| r.query.as_deref() == Some("key=secret-1")),
        ),
        (
            Auth::Header {
                name: "x-custom".into(),
                prefix: "Token ".into(),
            },
            Box::new(|r| r.header("x-custom") == Some("Token secret-1")),
        ),
        (
            Auth::AnthropicKey {
                version: "2024-01-01".into(),
            },
            Box::new(|r| {
                r.header("x-api-key") == Some("secret-1")
                    && r.header("anthropic-version") == Some("2024-01-01")
            }),
        ),
        (
            Auth::Signed(std::sync::Arc::new(Hmac)),
            Box::new(|r| {
                r.header("x-signature")
                    .is_some_and(|s| s.starts_with("POST:8:"))
            }),
        ),
        (
            Auth::None,
            Box::new(|r| r.header("authorization").is_none()),
        ),
    ];
    for (n, (auth, check)) in cases.into_iter().enumerate() {
        let shown = format!("{auth:?}");
        let client = Client::builder(ReqwestTransport::new())
            .target(
                Target::new(Provider::Generic, "m", vec![KeySpec::new(1, "k")]),
                Endpoint::new(url.clone(), Api::OpenAiCompatible).with_auth(auth),
            )
            .keys(keys(1))
            .policy(Policy::default())
            .build()
            .unwrap();
        client.call(b"{}").await.unwrap();
        let seen = server.seen();
        assert_eq!(seen.len(), n + 1);
        assert!(check(&seen[n]), "{shown}: {:#?}", seen[n]);
        assert!(!shown.contains("secret"), "{shown}");
    }
}

#[tokio::test]
async fn any_method_and_per_call_headers_reach_the_server() {
    let server = serve(|_, _| Reply::Json(200, OPENAI_OK.into())).await;
    let client = Client::new(
        ReqwestTransport::new(),
        vec![Target::new(
            Provider::Generic,
            "m",
            vec![KeySpec::new(1, "k")],
        )],
        // A local server without auth: the key needs no secret.
        vec![Endpoint::openai(server.url("/v1/models/{model}")).with_auth(Auth::None)],
        KeyStore::new(),
        Policy::default(),
    )
    .unwrap();
    let options = CallOptions::new()
        .header("x-request-id", "r-42")
        .metadata("tenant", "acme");
    client
        .send(
            Request::raw(Vec::new()).method("GET").content_type(None),
            options,
        )
        .await
        .unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/v1/models/m");
    assert_eq!(seen[0].header("x-request-id"), Some("r-42"));
    assert_eq!(seen[0].header("content-type"), None);
    assert_eq!(seen[0].header("authorization"), None);
}
