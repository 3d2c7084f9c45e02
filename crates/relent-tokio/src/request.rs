//! A request described once and shaped for each target.
//!
//! Three bodies: a typed OpenAI-compatible chat request ([`ChatRequest`]), a typed
//! Anthropic Messages request ([`MessagesRequest`]), and raw bytes. Each is shaped for
//! the target it goes to:
//!
//! | body | OpenAI-compatible target | Anthropic Messages target | other API |
//! |---|---|---|---|
//! | [`ChatRequest`] | as is, `model` set | converted (plain text only) | refused |
//! | [`MessagesRequest`] | converted (plain text only) | as is, `model` set | refused |
//! | raw bytes | top-level `"model"` rewritten | top-level `"model"` rewritten | same |
//!
//! **Conversion** between the two typed shapes covers plain text conversations: system
//! text, then `user` and `assistant` turns whose content is a string, `max_tokens`,
//! `temperature` (at most 1 for Anthropic), `top_p`, `stop` and `stream`. Anything else
//! (tools, images, provider-specific fields in `extra`) cannot be converted faithfully, so
//! a call whose fallback chain needs such a conversion is refused with
//! [`crate::CallError::Config`] before anything is sent. The answer is in the shape of the
//! target that gave it ([`crate::Completion::api`]; [`crate::Completion::text`] reads the
//! text of either).

use crate::target::Api;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// `max_tokens` sent to Anthropic when a converted chat request names none (Anthropic
/// requires it).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// One plain text message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant` (`developer` is taken as `system`).
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// An OpenAI-compatible chat completions body. `model` is set to each target's model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Replaced by the target's model.
    #[serde(default)]
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// The most tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Stream the answer as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Any other field, sent as is to OpenAI-compatible targets; a conversion refuses it.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// A request with these messages.
    pub fn new(messages: Vec<Message>) -> Self {
        ChatRequest {
            messages,
            ..ChatRequest::default()
        }
    }
}

/// An Anthropic Messages body. `model` is set to each target's model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// Replaced by the target's model.
    #[serde(default)]
    pub model: String,
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The conversation (`user` and `assistant`).
    pub messages: Vec<Message>,
    /// The most tokens to generate (required by Anthropic).
    pub max_tokens: u32,
    /// Sampling temperature (0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Stream the answer as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Any other field, sent as is to Anthropic targets; a conversion refuses it.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug)]
enum Body {
    Chat(ChatRequest),
    Messages(MessagesRequest),
    Raw(Vec<u8>),
}

/// One logical request, described once and shaped for each target (see the [module
/// docs](self)). POST with `content-type: application/json` unless told otherwise.
#[derive(Clone, Debug)]
pub struct Request {
    body: Body,
    method: String,
    content_type: Option<String>,
}

impl Request {
    /// A typed OpenAI-compatible chat request.
    pub fn chat(chat: ChatRequest) -> Self {
        Request::with_body(Body::Chat(chat))
    }

    /// A typed Anthropic Messages request.
    pub fn messages(messages: MessagesRequest) -> Self {
        Request::with_body(Body::Messages(messages))
    }

    /// Raw bytes, sent to every target with only the top-level JSON `"model"` rewritten
    /// (see [`crate::Endpoint::rewrite_model`]).
    pub fn raw(body: impl Into<Vec<u8>>) -> Self {
        Request::with_body(Body::Raw(body.into()))
    }

    fn with_body(body: Body) -> Self {
        Request {
            body,
            method: "POST".into(),
            content_type: Some("application/json".into()),
        }
    }

    /// Uses another HTTP method (`GET`, `PUT`, …).
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }

    /// Sets the `content-type` (`None`: send none).
    pub fn content_type(mut self, content_type: Option<String>) -> Self {
        self.content_type = content_type;
        self
    }

    /// The HTTP method.
    pub fn http_method(&self) -> &str {
        &self.method
    }

    pub(crate) fn content_type_header(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The body for a target speaking `api` with `model`.
    pub(crate) fn shape(
        &self,
        api: Api,
        model: &str,
        rewrite_model: bool,
    ) -> Result<Cow<'_, [u8]>, String> {
        let json = |value: &dyn erased::Ser| value.to_vec().map(Cow::Owned);
        match (&self.body, api) {
            (Body::Raw(bytes), _) => Ok(rewrite(bytes, model, rewrite_model)),
            (Body::Chat(chat), Api::OpenAiCompatible) => {
                let mut chat = chat.clone();
                chat.model = model.to_string();
                json(&chat)
            }
            (Body::Chat(chat), Api::AnthropicMessages) => json(&chat_to_messages(chat, model)?),
            (Body::Messages(m), Api::AnthropicMessages) => {
                let mut m = m.clone();
                m.model = model.to_string();
                json(&m)
            }
            (Body::Messages(m), Api::OpenAiCompatible) => json(&messages_to_chat(m, model)?),
            (_, api) => Err(format!(
                "a typed request cannot be sent to a target of API `{}`; send raw bytes",
                api.name()
            )),
        }
    }
}

mod erased {
    /// Serialization to JSON bytes behind a trait object.
    pub trait Ser {
        fn to_vec(&self) -> Result<Vec<u8>, String>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_vec(&self) -> Result<Vec<u8>, String> {
            serde_json::to_vec(self).map_err(|e| format!("cannot serialize the request: {e}"))
        }
    }
}

/// Replaces the top-level `"model"` of a JSON object body when it differs.
pub(crate) fn rewrite<'a>(bytes: &'a [u8], model: &str, on: bool) -> Cow<'a, [u8]> {
    if !on || memchr_model(bytes).is_none() {
        return Cow::Borrowed(bytes);
    }
    // The usual case, a body that already names the target's model, is read without
    // building a tree: only the top-level `model` member is kept, borrowed. A body this
    // cannot read (not an object, a repeated `model`, a `model` that is not a string) takes
    // the general path below, which decides it exactly as before.
    #[derive(Deserialize)]
    struct Top<'b> {
        #[serde(borrow, default)]
        model: Option<Cow<'b, str>>,
    }
    if let Ok(Top { model: Some(named) }) = serde_json::from_slice::<Top<'_>>(bytes) {
        if named == model {
            return Cow::Borrowed(bytes);
        }
    }
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(bytes) else {
        return Cow::Borrowed(bytes);
    };
    match object.get("model") {
        Some(Value::String(m)) if m != model => {
            object.insert("model".into(), Value::String(model.into()));
            serde_json::to_vec(&object).map_or(Cow::Borrowed(bytes), Cow::Owned)
        }
        _ => Cow::Borrowed(bytes),
    }
}

fn memchr_model(bytes: &[u8]) -> Option<usize> {
    bytes.windows(7).position(|w| w == b"\"model\"")
}

fn refuse_extra(extra: &Map<String, Value>, to: &str) -> Result<(), String> {
    match extra.keys().next() {
        Some(field) => Err(format!(
            "field `{field}` has no {to} equivalent relent converts; remove it, or send raw bytes shaped for each target"
        )),
        None => Ok(()),
    }
}

fn chat_to_messages(chat: &ChatRequest, model: &str) -> Result<MessagesRequest, String> {
    refuse_extra(&chat.extra, "Anthropic Messages")?;
    let mut system: Vec<&str> = Vec::new();
    let mut messages = Vec::new();
    for m in &chat.messages {
        match m.role.as_str() {
            "system" | "developer" => system.push(&m.content),
            "user" | "assistant" => messages.push(m.clone()),
            other => {
                return Err(format!(
                    "a message with role `{other}` cannot be converted to Anthropic Messages (plain system, user and assistant text only)"
                ))
            }
        }
    }
    if let Some(t) = chat.temperature {
        if !(0.0..=1.0).contains(&t) {
            return Err(format!(
                "temperature {t} is outside Anthropic's range 0 to 1; use at most 1 for a chain with an Anthropic target"
            ));
        }
    }
    Ok(MessagesRequest {
        model: model.to_string(),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages,
        max_tokens: chat.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        temperature: chat.temperature,
        top_p: chat.top_p,
        stop_sequences: chat.stop.clone(),
        stream: chat.stream,
        extra: Map::new(),
    })
}

fn messages_to_chat(m: &MessagesRequest, model: &str) -> Result<ChatRequest, String> {
    refuse_extra(&m.extra, "OpenAI-compatible chat")?;
    let mut messages = Vec::with_capacity(m.messages.len() + 1);
    if let Some(system) = &m.system {
        messages.push(Message::new("system", system.clone()));
    }
    for message in &m.messages {
        match message.role.as_str() {
            "user" | "assistant" => messages.push(message.clone()),
            other => {
                return Err(format!(
                    "a message with role `{other}` cannot be converted to OpenAI-compatible chat (plain user and assistant text only)"
                ))
            }
        }
    }
    Ok(ChatRequest {
        model: model.to_string(),
        messages,
        max_tokens: Some(m.max_tokens),
        temperature: m.temperature,
        top_p: m.top_p,
        stop: m.stop_sequences.clone(),
        stream: m.stream,
        extra: Map::new(),
    })
}

/// The assistant's text in a complete (not streamed) answer of either shape.
pub(crate) fn answer_text(api: Api, body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    match api {
        Api::AnthropicMessages => {
            let blocks = value.get("content")?.as_array()?;
            Some(
                blocks
                    .iter()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect(),
            )
        }
        _ => value
            .get("choices")?
            .get(0)?
            .get("message")?
            .get("content")?
            .as_str()
            .map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_converts_to_messages_with_the_targets_model() {
        let mut chat = ChatRequest::new(vec![
            Message::new("system", "be brief"),
            Message::new("user", "hi"),
        ]);
        chat.model = "gpt-4o".into();
        let request = Request::chat(chat);
        let body = request
            .shape(Api::AnthropicMessages, "claude-x", true)
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["model"], "claude-x");
        assert_eq!(v["system"], "be brief");
        assert_eq!(v["messages"][0]["role"], "user");
        assert_eq!(v["max_tokens"], DEFAULT_MAX_TOKENS);
    }

    #[test]
    fn fields_without_an_equivalent_are_refused() {
        let mut chat = ChatRequest::new(vec![Message::new("user", "hi")]);
        chat.extra.insert("tools".into(), Value::Array(vec![]));
        let error = Request::chat(chat.clone())
            .shape(Api::AnthropicMessages, "c", true)
            .unwrap_err();
        assert!(error.contains("tools"), "{error}");
        assert!(Request::chat(chat)
            .shape(Api::OpenAiCompatible, "g", true)
            .is_ok());
    }

    #[test]
    fn raw_bodies_get_the_model_rewritten_only_when_asked() {
        let raw = br#"{"model":"a","messages":[]}"#;
        let request = Request::raw(raw.to_vec());
        let shaped = request.shape(Api::Other, "b", true).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&shaped).unwrap()["model"],
            "b"
        );
        let kept = request.shape(Api::Other, "b", false).unwrap();
        assert_eq!(&*kept, raw);
        let other = Request::raw(b"model".to_vec());
        let not_json = other.shape(Api::Other, "b", true).unwrap();
        assert_eq!(&*not_json, b"model");
    }

    #[test]
    fn the_model_rewrite_reads_the_last_of_repeated_members_and_escapes() {
        let model_of =
            |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap()["model"].clone();
        // Already the target's model: the very same bytes, not a copy.
        let same = br#"{"model":"b","messages":[{"content":"x"}]}"#;
        assert!(matches!(rewrite(same, "b", true), Cow::Borrowed(b) if b == same));
        // Written with an escape, it is still the same model.
        let escaped = br#"{"model":"\u0062","messages":[]}"#;
        assert!(matches!(rewrite(escaped, "b", true), Cow::Borrowed(_)));
        // A repeated member: JSON readers keep the last, and so does the rewrite.
        let repeated = br#"{"model":"b","model":"a"}"#;
        assert_eq!(model_of(&rewrite(repeated, "b", true)), "b");
        let repeated = br#"{"model":"a","model":"b"}"#;
        assert_eq!(model_of(&rewrite(repeated, "b", true)), "b");
        // A nested "model" is not the request's model.
        let nested = br#"{"metadata":{"model":"b"},"model":"a"}"#;
        assert_eq!(model_of(&rewrite(nested, "b", true)), "b");
        let only_nested = br#"{"metadata":{"model":"a"}}"#;
        assert!(matches!(rewrite(only_nested, "b", true), Cow::Borrowed(_)));
    }
}
