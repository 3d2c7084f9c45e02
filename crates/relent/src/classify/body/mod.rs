//! Pulls the error fields out of a provider's body, whatever its shape.
//!
//! Shapes handled: OpenAI/DeepSeek/Groq/Azure `{"error":{"message","type","code"}}`, Anthropic
//! `{"type":"error","error":{"type","message"}}`, Gemini `{"error":{"code","status","details"}}`
//! (also wrapped in an array), Bedrock `{"message"}` / `{"__type"}` with `x-amzn-errortype`,
//! Mistral `{"object":"error",…}`, xAI `{"code","error":"…"}`, OpenRouter `metadata`, Baidu
//! Qianfan `{"error_code","error_msg"}`, Cloudflare's `{"success":false,"errors":[{"code",
//! "message"}]}`, and errors carried inside a 200 response as JSON or as
//! SSE `data:` events.
//!
//! The body is read in one pass by serde visitors that keep only the members named above and
//! skip everything else; strings are borrowed from the body unless they hold escapes. The
//! whole body must still be valid JSON (skipped parts are checked too), as before.
//!
//! The module is split by concern: `shapes` holds what is kept of a body and how it maps onto
//! [`ErrorFields`]; `visitors` holds the serde visitors that read a body into those shapes;
//! `tests` checks the visitors against a reference reading over `serde_json::Value`.

mod shapes;
mod visitors;

#[cfg(test)]
mod tests;

use super::hints;
use shapes::Object;
use std::borrow::Cow;

/// The fields of an error body that the rules look at. All strings are as sent (not
/// redacted), borrowed from the body where they can be.
#[derive(Debug, Default)]
pub(crate) struct ErrorFields<'a> {
    pub message: Option<Cow<'a, str>>,
    pub kind: Option<Cow<'a, str>>,
    pub code: Option<Cow<'a, str>>,
    pub numeric_code: Option<u16>,
    pub status_text: Option<Cow<'a, str>>,
    /// `ErrorInfo.reason`, `QuotaFailure` quota ids, Azure `innererror.code`.
    pub details: Vec<Cow<'a, str>>,
    pub retry_delay_ms: Option<u64>,
    pub openrouter_reset_unix_ms: Option<u64>,
    /// OpenRouter's `metadata.raw` (what the upstream provider said).
    pub upstream_raw: Option<Cow<'a, str>>,
}

impl ErrorFields<'_> {
    /// Every field, each followed by a space, in the order the keyword rules read them:
    /// message, type, code, status, OpenRouter's `metadata.raw`, then the details.
    pub fn for_each_search_piece(&self, f: &mut impl FnMut(&str)) {
        let parts = [
            &self.message,
            &self.kind,
            &self.code,
            &self.status_text,
            &self.upstream_raw,
        ];
        for part in parts.into_iter().flatten().chain(&self.details) {
            f(part);
            f(" ");
        }
    }
}

/// How many bare JSON objects (lines of an event stream that start with `{` and are no
/// `data:` line) [`extract`] tries to read as the stream's closing error.
const MAX_BARE_OBJECTS: usize = 4;

/// Finds and reads the error object in `body`. Returns `None` when the body holds no
/// recognisable error (for example a normal completion).
///
/// With `in_band` (a success status), only explicit error markers count: an `error` member,
/// `"type": "error"` or `"object": "error"`, so that a normal completion is never mistaken
/// for a failure.
pub(crate) fn extract(body: &str, in_band: bool) -> Option<ErrorFields<'_>> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut object = Object::default();
        return match visitors::read_body(trimmed, &mut object) {
            Ok(true) => object.take_fields(in_band),
            Ok(false) | Err(_) => None,
        };
    }
    // Server-sent events: an `event: error` or a `data:` line whose JSON carries an error;
    // llama.cpp's server also writes an `error:` line (not a standard event field).
    if ["event:", "data:", "error:", ":"]
        .iter()
        .any(|field| trimmed.starts_with(field))
    {
        let mut at = 0;
        // Bare objects tried so far: each is read up to the end of the body, so a stream of
        // many such lines is not read over and over.
        let mut bare = 0;
        for line in body.split_inclusive('\n') {
            let start = at;
            at += line.len();
            let line = line.trim_end();
            // `loose`: the line is known to hold an error, so its object is read as an error
            // body is (a `message` alone is enough), not only for explicit markers.
            let (data, loose) = match (line.strip_prefix("data:"), line.strip_prefix("error:")) {
                (Some(data), _) => (data.trim(), false),
                (None, Some(error)) => (error.trim(), true),
                // A bare JSON object after the events ends the stream with an error that is
                // no event (Gemini's stream cut by "The model is overloaded", printed over
                // several lines; SiliconFlow's `{"code":60000,"message":"Request processing
                // has failed …"}`): it runs to the end of the body. No completion chunk comes
                // so, so it is read as an error body is, a `message` alone being enough.
                (None, None) if line.starts_with('{') && bare < MAX_BARE_OBJECTS => {
                    bare += 1;
                    (body[start..].trim(), true)
                }
                (None, None) => continue,
            };
            if data.starts_with('{') {
                let mut object = Object::default();
                if let Ok(true) = visitors::read_body(data, &mut object) {
                    if let Some(fields) = object.take_fields(!loose) {
                        return Some(fields);
                    }
                }
            }
        }
    }
    None
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

/// The string value of the last `"name": "value"` member in `text`, found without parsing:
/// for the end of a body cut by the scan bound, which is not valid JSON. A value holding an
/// escape, or cut off, gives `None`.
pub(crate) fn tail_member<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let mut end = text.len();
    while let Some(at) = text.get(..end)?.rfind(name) {
        end = at;
        let quoted = at > 0 && text.as_bytes()[at - 1] == b'"';
        let rest = text.get(at + name.len()..)?;
        let Some(rest) = rest.strip_prefix('"').filter(|_| quoted) else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix(':') else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix('"') else {
            continue;
        };
        let close = value.find(['"', '\\'])?;
        return (value.as_bytes()[close] == b'"' && close > 0).then(|| &value[..close]);
    }
    None
}
