//! Pulls the error fields out of a provider's body, whatever its shape.
//!
//! Shapes handled: OpenAI/DeepSeek/Groq/Azure `{"error":{"message","type","code"}}`, Anthropic
//! `{"type":"error","error":{"type","message"}}`, Gemini `{"error":{"code","status","details"}}`
//! (also wrapped in an array), Bedrock `{"message"}` / `{"__type"}` with `x-amzn-errortype`,
//! Mistral `{"object":"error",…}`, xAI `{"code","error":"…"}`, OpenRouter `metadata`, and
//! errors carried inside a 200 response as JSON or as SSE `data:` events.

use super::hints;
use serde_json::Value;

/// The fields of an error body that the rules look at. All strings are as sent (not redacted).
#[derive(Debug, Default)]
pub(crate) struct ErrorFields {
    pub message: Option<String>,
    pub kind: Option<String>,
    pub code: Option<String>,
    pub numeric_code: Option<u16>,
    pub status_text: Option<String>,
    /// `ErrorInfo.reason`, `QuotaFailure` quota ids, Azure `innererror.code`.
    pub details: Vec<String>,
    pub retry_delay_ms: Option<u64>,
    pub openrouter_reset_unix_ms: Option<u64>,
    /// OpenRouter's `metadata.raw` (what the upstream provider said).
    pub upstream_raw: Option<String>,
}

impl ErrorFields {
    /// Every field as one lowercase string for keyword rules.
    pub fn search_text(&self) -> String {
        let mut text = String::new();
        for part in [
            &self.message,
            &self.kind,
            &self.code,
            &self.status_text,
            &self.upstream_raw,
        ]
        .into_iter()
        .flatten()
        {
            text.push_str(part);
            text.push(' ');
        }
        for d in &self.details {
            text.push_str(d);
            text.push(' ');
        }
        text.make_ascii_lowercase();
        text
    }
}

/// Finds and reads the error object in `body`. Returns `None` when the body holds no
/// recognisable error (for example a normal completion).
///
/// With `in_band` (a success status), only explicit error markers count: an `error` member,
/// `"type": "error"` or `"object": "error"`, so that a normal completion is never mistaken
/// for a failure.
pub(crate) fn extract(body: &str, in_band: bool) -> Option<ErrorFields> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let value: Value = serde_json::from_str(trimmed).ok()?;
        return from_value(&value, in_band);
    }
    // Server-sent events: an `event: error` or a `data:` line whose JSON carries an error.
    if trimmed.starts_with("event:") || trimmed.starts_with("data:") || trimmed.starts_with(':') {
        for line in body.lines() {
            if let Some(data) = line.strip_prefix("data:") {
                let data = data.trim();
                if data.starts_with('{') {
                    if let Ok(value) = serde_json::from_str::<Value>(data) {
                        if let Some(fields) = from_value(&value, true) {
                            return Some(fields);
                        }
                    }
                }
            }
        }
    }
    None
}

fn from_value(value: &Value, in_band: bool) -> Option<ErrorFields> {
    let obj = match value {
        Value::Array(items) => return items.first().and_then(|v| from_value(v, in_band)),
        Value::Object(obj) => obj,
        _ => return None,
    };
    let mut fields = ErrorFields::default();
    match obj.get("error") {
        Some(inner @ Value::Object(_)) => read_error_object(inner, &mut fields),
        Some(Value::String(message)) => {
            // xAI: {"code": "...", "error": "Incorrect API key provided: ..."}
            fields.message = Some(message.clone());
            fields.code = obj.get("code").and_then(as_text);
        }
        Some(Value::Null) | None => {
            let explicit = obj.get("type").and_then(Value::as_str) == Some("error")
                || obj.get("object").and_then(Value::as_str) == Some("error");
            let loose = obj.contains_key("__type")
                || obj.get("message").is_some_and(Value::is_string)
                || obj.get("Message").is_some_and(Value::is_string)
                || obj.contains_key("detail");
            let is_error = explicit || (!in_band && loose);
            if !is_error {
                return None;
            }
            read_error_object(value, &mut fields);
            if fields.message.is_none() {
                fields.message = obj
                    .get("Message")
                    .or_else(|| obj.get("detail"))
                    .and_then(as_text);
            }
            if let Some(kind) = obj.get("__type").and_then(Value::as_str) {
                fields.kind = Some(aws_error_type(kind).to_string());
            }
        }
        Some(_) => return None,
    }
    Some(fields)
}

fn read_error_object(error: &Value, fields: &mut ErrorFields) {
    fields.message = error
        .get("message")
        .and_then(as_text)
        .or_else(|| fields.message.take());
    fields.kind = error.get("type").and_then(as_text);
    fields.status_text = error.get("status").and_then(as_text);
    match error.get("code") {
        Some(Value::Number(n)) => {
            fields.numeric_code = n.as_u64().and_then(|c| u16::try_from(c).ok());
            fields.code = Some(n.to_string());
        }
        Some(other) => fields.code = as_text(other),
        None => {}
    }
    if let Some(inner) = error
        .get("innererror")
        .and_then(|e| e.get("code"))
        .and_then(as_text)
    {
        fields.details.push(inner);
    }
    match error.get("details") {
        Some(Value::Array(details)) => {
            for detail in details.iter().take(16) {
                read_detail(detail, fields);
            }
        }
        // Anthropic: {"details": {"error_code": "enforced_spend_limit_reached"}}.
        Some(details @ Value::Object(_)) => {
            if let Some(code) = details.get("error_code").and_then(as_text) {
                fields.details.push(code);
            }
        }
        _ => {}
    }
    if let Some(metadata) = error.get("metadata") {
        fields.upstream_raw = metadata.get("raw").map(|raw| match raw {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        if let Some(headers) = metadata.get("headers").and_then(Value::as_object) {
            let reset = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-ratelimit-reset"))
                .map(|(_, v)| v);
            fields.openrouter_reset_unix_ms = reset.and_then(|v| match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            });
        }
    }
}

fn read_detail(detail: &Value, fields: &mut ErrorFields) {
    let kind = detail.get("@type").and_then(Value::as_str).unwrap_or("");
    if kind.ends_with("RetryInfo") {
        fields.retry_delay_ms = detail
            .get("retryDelay")
            .and_then(Value::as_str)
            .and_then(hints::proto_duration_ms);
    } else if kind.ends_with("ErrorInfo") {
        if let Some(reason) = detail.get("reason").and_then(as_text) {
            fields.details.push(reason);
        }
    } else if kind.ends_with("QuotaFailure") {
        if let Some(Value::Array(violations)) = detail.get("violations") {
            for v in violations.iter().take(8) {
                if let Some(id) = v.get("quotaId").and_then(as_text) {
                    fields.details.push(id);
                }
            }
        }
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `ThrottlingException:http://internal.amazon.com/...` and `com.amazon#ThrottlingException`
/// both name `ThrottlingException`.
pub(crate) fn aws_error_type(raw: &str) -> &str {
    let before_colon = raw.split(':').next().unwrap_or(raw);
    before_colon
        .rsplit('#')
        .next()
        .unwrap_or(before_colon)
        .trim()
}
