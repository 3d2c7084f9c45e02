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

use super::hints;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt;

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
    /// Every field as one lowercase string for keyword rules.
    pub fn search_text(&self) -> String {
        let parts = [
            &self.message,
            &self.kind,
            &self.code,
            &self.status_text,
            &self.upstream_raw,
        ];
        let len = parts
            .iter()
            .copied()
            .flatten()
            .map(|p| p.len() + 1)
            .sum::<usize>()
            + self.details.iter().map(|d| d.len() + 1).sum::<usize>();
        let mut text = String::with_capacity(len);
        for part in parts.into_iter().flatten().chain(&self.details) {
            text.push_str(part);
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
pub(crate) fn extract(body: &str, in_band: bool) -> Option<ErrorFields<'_>> {
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let top: Top<'_> = serde_json::from_str(trimmed).ok()?;
        return top.into_fields(in_band);
    }
    // Server-sent events: an `event: error` or a `data:` line whose JSON carries an error.
    if trimmed.starts_with("event:") || trimmed.starts_with("data:") || trimmed.starts_with(':') {
        for line in body.lines() {
            if let Some(data) = line.strip_prefix("data:") {
                let data = data.trim();
                if data.starts_with('{') {
                    if let Ok(top) = serde_json::from_str::<Top<'_>>(data) {
                        if let Some(fields) = top.into_fields(true) {
                            return Some(fields);
                        }
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

// ----- what is kept of a body -----

/// A JSON value where only scalars matter; objects and arrays are skipped.
#[derive(Debug)]
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Num(Number),
    Other,
}

impl<'a> Scalar<'a> {
    /// A non-empty string, or a number as text.
    fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) if !s.is_empty() => Some(s),
            Scalar::Num(n) => Some(n.to_string().into()),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    fn is_str(&self) -> bool {
        matches!(self, Scalar::Str(_))
    }
}

/// The body's top level: an object, or an array whose first item is read.
enum Top<'a> {
    Object(Box<Object<'a>>),
    Array(Option<Box<Top<'a>>>),
    Other,
}

/// A top-level object: an `error` member, or the members of an error itself.
struct Object<'a> {
    error: Option<ErrorMember<'a>>,
    members: Members<'a>,
}

/// The members of an error object other than a nested `error` (no rule looks at one).
#[derive(Default)]
struct Members<'a> {
    message: Option<Scalar<'a>>,
    /// `Message` (AWS).
    upper_message: Option<Scalar<'a>>,
    detail: Option<Scalar<'a>>,
    /// `type`.
    kind: Option<Scalar<'a>>,
    object: Option<Scalar<'a>>,
    /// `__type` (AWS).
    aws_type: Option<Scalar<'a>>,
    status: Option<Scalar<'a>>,
    code: Option<Scalar<'a>>,
    /// `innererror.code` (Azure).
    inner_code: Option<Scalar<'a>>,
    details: Option<Details<'a>>,
    /// `metadata`, when it is an object (OpenRouter).
    metadata: Option<Metadata<'a>>,
    /// `error_msg` (Baidu Qianfan, which answers errors inside a 200).
    error_msg: Option<Scalar<'a>>,
    /// `error_code` (Baidu Qianfan).
    error_code: Option<Scalar<'a>>,
    /// The first item of `errors`, when it is a list of objects (Cloudflare).
    errors: Option<FirstError<'a>>,
}

/// The `message` and `code` of the first item of an `errors` list.
#[derive(Default)]
struct FirstError<'a> {
    message: Option<Scalar<'a>>,
    code: Option<Scalar<'a>>,
}

/// The `error` member.
enum ErrorMember<'a> {
    Object(Box<Members<'a>>),
    Text(Cow<'a, str>),
    Null,
    Other,
}

/// The `details` member: Google's list of typed details, or Anthropic's object.
enum Details<'a> {
    List(Vec<Detail<'a>>),
    ErrorCode(Option<Scalar<'a>>),
    Other,
}

/// One of Google's typed details (`RetryInfo`, `ErrorInfo`, `QuotaFailure`).
#[derive(Default)]
struct Detail<'a> {
    at_type: Option<Scalar<'a>>,
    retry_delay: Option<Scalar<'a>>,
    reason: Option<Scalar<'a>>,
    /// `violations[].quotaId`, when `violations` is a list.
    quota_ids: Option<Vec<Option<Scalar<'a>>>>,
}

#[derive(Default)]
struct Metadata<'a> {
    raw: Option<Cow<'a, str>>,
    /// The first `x-ratelimit-reset` of `headers`, when `headers` is an object and its
    /// value is a time.
    reset: Option<u64>,
}

/// How many of Google's details are read, and how many quota violations per detail.
const MAX_DETAILS: usize = 16;
const MAX_VIOLATIONS: usize = 8;

impl<'a> Top<'a> {
    fn into_fields(self, in_band: bool) -> Option<ErrorFields<'a>> {
        match self {
            Top::Array(first) => first.and_then(|top| top.into_fields(in_band)),
            Top::Object(object) => object.into_fields(in_band),
            Top::Other => None,
        }
    }
}

impl<'a> Object<'a> {
    fn into_fields(self: Box<Self>, in_band: bool) -> Option<ErrorFields<'a>> {
        let mut fields = ErrorFields::default();
        let Object {
            error,
            members: mut this,
        } = *self;
        match error {
            Some(ErrorMember::Object(inner)) => inner.read_into(&mut fields),
            Some(ErrorMember::Text(message)) => {
                // xAI: {"code": "...", "error": "Incorrect API key provided: ..."}
                fields.message = Some(message);
                fields.code = this.code.and_then(Scalar::text);
            }
            Some(ErrorMember::Null) | None => {
                let explicit = this.kind.as_ref().and_then(Scalar::as_str) == Some("error")
                    || this.object.as_ref().and_then(Scalar::as_str) == Some("error")
                    || this.error_msg.as_ref().is_some_and(Scalar::is_str);
                let loose = this.aws_type.is_some()
                    || this.errors.is_some()
                    || this.message.as_ref().is_some_and(Scalar::is_str)
                    || this.upper_message.as_ref().is_some_and(Scalar::is_str)
                    || this.detail.is_some();
                if !(explicit || (!in_band && loose)) {
                    return None;
                }
                let fallback = this.upper_message.take().or_else(|| this.detail.take());
                let aws_type = this.aws_type.take();
                this.read_into(&mut fields);
                if fields.message.is_none() {
                    fields.message = fallback.and_then(Scalar::text);
                }
                if let Some(Scalar::Str(kind)) = aws_type {
                    fields.kind = Some(match kind {
                        Cow::Borrowed(kind) => Cow::Borrowed(aws_error_type(kind)),
                        Cow::Owned(kind) => Cow::Owned(aws_error_type(&kind).to_string()),
                    });
                }
            }
            Some(ErrorMember::Other) => return None,
        }
        Some(fields)
    }
}

impl<'a> Members<'a> {
    /// Reads these members as the error object into fresh `fields`.
    fn read_into(self, fields: &mut ErrorFields<'a>) {
        fields.message = self.message.and_then(Scalar::text);
        fields.kind = self.kind.and_then(Scalar::text);
        fields.status_text = self.status.and_then(Scalar::text);
        match self.code {
            Some(Scalar::Num(n)) => {
                fields.numeric_code = n.as_u64().and_then(|c| u16::try_from(c).ok());
                fields.code = Some(n.to_string().into());
            }
            Some(other) => fields.code = other.text(),
            None => {}
        }
        if let Some(inner) = self.inner_code.and_then(Scalar::text) {
            fields.details.push(inner);
        }
        match self.details {
            Some(Details::List(details)) => {
                for detail in details {
                    detail.read_into(fields);
                }
            }
            // Anthropic: {"details": {"error_code": "enforced_spend_limit_reached"}}.
            Some(Details::ErrorCode(code)) => {
                if let Some(code) = code.and_then(Scalar::text) {
                    fields.details.push(code);
                }
            }
            Some(Details::Other) | None => {}
        }
        if let Some(metadata) = self.metadata {
            fields.upstream_raw = metadata.raw;
            fields.openrouter_reset_unix_ms = metadata.reset;
        }
        if fields.message.is_none() {
            fields.message = self.error_msg.and_then(Scalar::text);
        }
        if fields.code.is_none() {
            fields.code = self.error_code.and_then(Scalar::text);
        }
        if let Some(first) = self.errors {
            if fields.message.is_none() {
                fields.message = first.message.and_then(Scalar::text);
            }
            if fields.code.is_none() {
                fields.code = first.code.and_then(Scalar::text);
            }
        }
    }
}

impl<'a> Detail<'a> {
    fn read_into(self, fields: &mut ErrorFields<'a>) {
        let kind = self.at_type.as_ref().and_then(Scalar::as_str).unwrap_or("");
        if kind.ends_with("RetryInfo") {
            fields.retry_delay_ms = self
                .retry_delay
                .as_ref()
                .and_then(Scalar::as_str)
                .and_then(hints::proto_duration_ms);
        } else if kind.ends_with("ErrorInfo") {
            if let Some(reason) = self.reason.and_then(Scalar::text) {
                fields.details.push(reason);
            }
        } else if kind.ends_with("QuotaFailure") {
            let ids = self.quota_ids.into_iter().flatten().flatten();
            fields.details.extend(ids.filter_map(Scalar::text));
        }
    }
}

// ----- the visitors -----

/// A string, borrowed from the body when it holds no escapes.
struct Text<'a>(Cow<'a, str>);

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_string())))
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Skips every remaining item of a list.
fn skip_rest<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Skips every remaining member of an object.
fn skip_members<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Num(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Num(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Number::from_f64(v).map_or(Scalar::Other, Scalar::Num))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar<'de>, A::Error> {
        skip_rest(seq)?;
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'de>, A::Error> {
        skip_members(map)?;
        Ok(Scalar::Other)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Implements `Deserialize` for a type read with `deserialize_any`, given the visitor's
/// `visit_seq` and `visit_map` (or only `visit_map`, after `objects`): a scalar of any JSON
/// type gives `$other`.
macro_rules! any_json {
    // Only objects count: a list is skipped too.
    ($value:ty, $visitor:ident, $other:expr, $expecting:literal, objects { $($methods:tt)* }) => {
        any_json!($value, $visitor, $other, $expecting, {
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                skip_rest(seq)?;
                Ok($other)
            }

            $($methods)*
        });
    };
    ($value:ty, $visitor:ident, $other:expr, $expecting:literal, { $($methods:tt)* }) => {
        struct $visitor;

        impl<'de> Visitor<'de> for $visitor {
            type Value = $value;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($expecting)
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok($other)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok($other)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok($other)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok($other)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok($other)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok($other)
            }

            $($methods)*
        }

        impl<'de> Deserialize<'de> for $value {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any($visitor)
            }
        }
    };
}

any_json!(Top<'de>, TopVisitor, Top::Other, "a JSON object or list", {
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top<'de>, A::Error> {
        let first = seq.next_element::<Top<'de>>()?.map(Box::new);
        skip_rest(seq)?;
        Ok(Top::Array(first))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Top<'de>, A::Error> {
        Ok(Top::Object(Box::new(read_object(map)?)))
    }
});

impl<'de> Deserialize<'de> for ErrorMember<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ErrorMemberVisitor)
    }
}

struct ErrorMemberVisitor;

impl<'de> Visitor<'de> for ErrorMemberVisitor {
    type Value = ErrorMember<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an error object or message")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<ErrorMember<'de>, E> {
        Ok(ErrorMember::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ErrorMember<'de>, E> {
        Ok(ErrorMember::Text(Cow::Owned(v.to_string())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<ErrorMember<'de>, E> {
        Ok(ErrorMember::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<ErrorMember<'de>, E> {
        Ok(ErrorMember::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<ErrorMember<'de>, E> {
        Ok(ErrorMember::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<ErrorMember<'de>, E> {
        Ok(ErrorMember::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<ErrorMember<'de>, E> {
        Ok(ErrorMember::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ErrorMember<'de>, A::Error> {
        skip_rest(seq)?;
        Ok(ErrorMember::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ErrorMember<'de>, A::Error> {
        let mut members = Box::<Members<'de>>::default();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            // A nested error's own `error` member is skipped.
            if key == "error" || !members.read(&key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(ErrorMember::Object(members))
    }
}

any_json!(
    Details<'de>,
    DetailsVisitor,
    Details::Other,
    "a list or object of details",
    {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Details<'de>, A::Error> {
            let mut details = Vec::new();
            while details.len() < MAX_DETAILS {
                match seq.next_element::<Detail<'de>>()? {
                    Some(detail) => details.push(detail),
                    None => return Ok(Details::List(details)),
                }
            }
            skip_rest(seq)?;
            Ok(Details::List(details))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Details<'de>, A::Error> {
            Ok(Details::ErrorCode(scalar_member(map, "error_code")?))
        }
    }
);

any_json!(
    Detail<'de>,
    DetailVisitor,
    Detail::default(),
    "a typed detail",
    objects {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Detail<'de>, A::Error> {
            let mut detail = Detail::default();
            while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                match key.as_ref() {
                    "@type" => detail.at_type = Some(map.next_value()?),
                    "retryDelay" => detail.retry_delay = Some(map.next_value()?),
                    "reason" => detail.reason = Some(map.next_value()?),
                    "violations" => detail.quota_ids = map.next_value::<Violations<'de>>()?.0,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(detail)
        }
    }
);

/// `violations`: the `quotaId` of the first few, when it is a list.
struct Violations<'a>(Option<Vec<Option<Scalar<'a>>>>);

any_json!(
    Violations<'de>,
    ViolationsVisitor,
    Violations(None),
    "a list of violations",
    {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Violations<'de>, A::Error> {
            let mut ids = Vec::new();
            while ids.len() < MAX_VIOLATIONS {
                match seq.next_element::<QuotaId<'de>>()? {
                    Some(QuotaId(id)) => ids.push(id),
                    None => return Ok(Violations(Some(ids))),
                }
            }
            skip_rest(seq)?;
            Ok(Violations(Some(ids)))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Violations<'de>, A::Error> {
            skip_members(map)?;
            Ok(Violations(None))
        }
    }
);

/// One violation's `quotaId`.
struct QuotaId<'a>(Option<Scalar<'a>>);

any_json!(QuotaId<'de>, QuotaIdVisitor, QuotaId(None), "a quota violation", objects {
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<QuotaId<'de>, A::Error> {
        Ok(QuotaId(scalar_member(map, "quotaId")?))
    }
});

/// `errors`: its first item's `message` and `code`, when it is a list whose first item is an
/// object.
struct ErrorsMember<'a>(Option<FirstError<'a>>);

any_json!(
    ErrorsMember<'de>,
    ErrorsVisitor,
    ErrorsMember(None),
    "a list of errors",
    {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ErrorsMember<'de>, A::Error> {
            let first = seq
                .next_element::<FirstErrorItem<'de>>()?
                .and_then(|item| item.0);
            skip_rest(seq)?;
            Ok(ErrorsMember(first))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ErrorsMember<'de>, A::Error> {
            skip_members(map)?;
            Ok(ErrorsMember(None))
        }
    }
);

/// One item of `errors`: its `message` and `code` when it is an object.
struct FirstErrorItem<'a>(Option<FirstError<'a>>);

any_json!(FirstErrorItem<'de>, FirstErrorItemVisitor, FirstErrorItem(None), "an error", objects {
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FirstErrorItem<'de>, A::Error> {
        let mut first = FirstError::default();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "message" => first.message = Some(map.next_value()?),
                "code" => first.code = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(FirstErrorItem(Some(first)))
    }
});

/// `innererror`: its `code`, when it is an object.
struct InnerError<'a>(Option<Scalar<'a>>);

any_json!(InnerError<'de>, InnerErrorVisitor, InnerError(None), "an inner error", objects {
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<InnerError<'de>, A::Error> {
        Ok(InnerError(scalar_member(map, "code")?))
    }
});

/// The member `name` of an object, read as a scalar (the last one when it repeats).
fn scalar_member<'de, A: MapAccess<'de>>(
    mut map: A,
    name: &str,
) -> Result<Option<Scalar<'de>>, A::Error> {
    let mut value = None;
    while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
        if key == name {
            value = Some(map.next_value()?);
        } else {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(value)
}

/// `metadata`, when it is an object.
struct MetadataMember<'a>(Option<Metadata<'a>>);

any_json!(
    MetadataMember<'de>,
    MetadataVisitor,
    MetadataMember(None),
    "metadata",
    objects {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MetadataMember<'de>, A::Error> {
            let mut metadata = Metadata::default();
            while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                match key.as_ref() {
                    "raw" => metadata.raw = Some(map.next_value::<RawText<'de>>()?.0),
                    "headers" => metadata.reset = map.next_value::<ResetHeader>()?.0,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(MetadataMember(Some(metadata)))
        }
    }
);

/// `metadata.raw`: a string as it is, anything else as its JSON text.
struct RawText<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for RawText<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawTextVisitor)
    }
}

struct RawTextVisitor;

impl<'de> Visitor<'de> for RawTextVisitor {
    type Value = RawText<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<RawText<'de>, E> {
        Ok(RawText(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawText<'de>, E> {
        Ok(RawText(Cow::Owned(v.to_string())))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawText<'de>, E> {
        Ok(RawText(Cow::Owned(Value::from(v).to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawText<'de>, E> {
        Ok(RawText(Cow::Owned(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawText<'de>, E> {
        Ok(RawText(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawText<'de>, E> {
        Ok(RawText(Cow::Owned(Value::from(v).to_string())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawText<'de>, E> {
        Ok(RawText(Cow::Borrowed("null")))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawText<'de>, A::Error> {
        let value = Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(RawText(Cow::Owned(value.to_string())))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawText<'de>, A::Error> {
        let value = Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(RawText(Cow::Owned(value.to_string())))
    }
}

/// `metadata.headers`: its first `x-ratelimit-reset` as Unix milliseconds, when it is an
/// object and that value is a time.
struct ResetHeader(Option<u64>);

any_json!(
    ResetHeader,
    ResetHeaderVisitor,
    ResetHeader(None),
    "response headers",
    objects {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResetHeader, A::Error> {
            let mut reset = None;
            while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                if reset.is_none() && key.eq_ignore_ascii_case("x-ratelimit-reset") {
                    let value = map.next_value::<Scalar<'de>>()?;
                    reset = Some(match value {
                        Scalar::Num(n) => n.as_u64(),
                        Scalar::Str(s) => s.trim().parse().ok(),
                        Scalar::Other => None,
                    });
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(ResetHeader(reset.flatten()))
        }
    }
);

/// Reads a top-level object.
fn read_object<'de, A: MapAccess<'de>>(mut map: A) -> Result<Object<'de>, A::Error> {
    let mut object = Object {
        error: None,
        members: Members::default(),
    };
    while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
        if key == "error" {
            object.error = Some(map.next_value()?);
        } else if !object.members.read(&key, &mut map)? {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(object)
}

impl<'de> Members<'de> {
    /// Reads the value of member `key` when the rules look at it; `false` when they do not
    /// (the caller skips the value).
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "message" => self.message = Some(map.next_value()?),
            "Message" => self.upper_message = Some(map.next_value()?),
            "detail" => self.detail = Some(map.next_value()?),
            "type" => self.kind = Some(map.next_value()?),
            "object" => self.object = Some(map.next_value()?),
            "__type" => self.aws_type = Some(map.next_value()?),
            "status" => self.status = Some(map.next_value()?),
            "code" => self.code = Some(map.next_value()?),
            "innererror" => self.inner_code = map.next_value::<InnerError<'de>>()?.0,
            "details" => self.details = Some(map.next_value()?),
            "metadata" => self.metadata = map.next_value::<MetadataMember<'de>>()?.0,
            "error_msg" => self.error_msg = Some(map.next_value()?),
            "error_code" => self.error_code = Some(map.next_value()?),
            "errors" => self.errors = map.next_value::<ErrorsMember<'de>>()?.0,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reading of the previous implementation, over `serde_json::Value`, kept here as the
    /// reference the visitors must agree with.
    mod reference {
        use super::super::{aws_error_type, hints};
        use serde_json::Value;

        #[derive(Debug, Default, PartialEq)]
        pub struct Fields {
            pub message: Option<String>,
            pub kind: Option<String>,
            pub code: Option<String>,
            pub numeric_code: Option<u16>,
            pub status_text: Option<String>,
            pub details: Vec<String>,
            pub retry_delay_ms: Option<u64>,
            pub openrouter_reset_unix_ms: Option<u64>,
            pub upstream_raw: Option<String>,
        }

        pub fn extract(body: &str, in_band: bool) -> Option<Fields> {
            let trimmed = body.trim_start();
            if trimmed.starts_with('{') || trimmed.starts_with('[') {
                let value: Value = serde_json::from_str(trimmed).ok()?;
                return from_value(&value, in_band);
            }
            None
        }

        fn from_value(value: &Value, in_band: bool) -> Option<Fields> {
            let obj = match value {
                Value::Array(items) => return items.first().and_then(|v| from_value(v, in_band)),
                Value::Object(obj) => obj,
                _ => return None,
            };
            let mut fields = Fields::default();
            match obj.get("error") {
                Some(inner @ Value::Object(_)) => read_error_object(inner, &mut fields),
                Some(Value::String(message)) => {
                    fields.message = Some(message.clone());
                    fields.code = obj.get("code").and_then(as_text);
                }
                Some(Value::Null) | None => {
                    let explicit = obj.get("type").and_then(Value::as_str) == Some("error")
                        || obj.get("object").and_then(Value::as_str) == Some("error")
                        || obj.get("error_msg").is_some_and(Value::is_string);
                    let loose = obj.contains_key("__type")
                        || obj
                            .get("errors")
                            .and_then(Value::as_array)
                            .and_then(|items| items.first())
                            .is_some_and(Value::is_object)
                        || obj.get("message").is_some_and(Value::is_string)
                        || obj.get("Message").is_some_and(Value::is_string)
                        || obj.contains_key("detail");
                    if !(explicit || (!in_band && loose)) {
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

        fn read_error_object(error: &Value, fields: &mut Fields) {
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
                }
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
            if fields.message.is_none() {
                fields.message = error.get("error_msg").and_then(as_text);
            }
            if fields.code.is_none() {
                fields.code = error.get("error_code").and_then(as_text);
            }
            if let Some(first) = error
                .get("errors")
                .and_then(Value::as_array)
                .and_then(|items| items.first())
                .filter(|first| first.is_object())
            {
                if fields.message.is_none() {
                    fields.message = first.get("message").and_then(as_text);
                }
                if fields.code.is_none() {
                    fields.code = first.get("code").and_then(as_text);
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
    }

    fn owned(fields: ErrorFields<'_>) -> reference::Fields {
        let text = |s: Option<Cow<'_, str>>| s.map(Cow::into_owned);
        reference::Fields {
            message: text(fields.message),
            kind: text(fields.kind),
            code: text(fields.code),
            numeric_code: fields.numeric_code,
            status_text: text(fields.status_text),
            details: fields.details.into_iter().map(Cow::into_owned).collect(),
            retry_delay_ms: fields.retry_delay_ms,
            openrouter_reset_unix_ms: fields.openrouter_reset_unix_ms,
            upstream_raw: text(fields.upstream_raw),
        }
    }

    fn agree(body: &str) {
        for in_band in [false, true] {
            assert_eq!(
                extract(body, in_band).map(owned),
                reference::extract(body, in_band),
                "in_band {in_band}: {body}"
            );
        }
    }

    #[test]
    fn visitors_agree_with_the_value_reading_on_odd_shapes() {
        for body in [
            r#"{"error":{"message":"m","type":"t","code":429,"status":"S"}}"#,
            r#"{"error":{"message":"","type":7,"code":-3.5,"status":null}}"#,
            r#"{"error":{"code":70000,"message":{"nested":true}}}"#,
            r#"{"error":"plain text","code":"Client specified"}"#,
            r#"{"error":null,"message":"m","__type":"com.amazon#ThrottlingException"}"#,
            r#"{"error":null,"__type":null}"#,
            r#"{"__type":"x:y","Message":"upper"}"#,
            r#"{"Message":null,"detail":"d"}"#,
            r#"{"detail":{"x":1}}"#,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            r#"{"object":"error","message":"m","type":"invalid","code":"3051"}"#,
            r#"{"error":[1,2]}"#,
            r#"{"error":true}"#,
            r#"[{"error":{"code":429,"details":[{"@type":"a.RetryInfo","retryDelay":"3s"},{"@type":"a.RetryInfo","retryDelay":5}]}}, 2, {"x":1}]"#,
            r#"[[{"error":{"message":"deep"}}]]"#,
            r#"[]"#,
            r#"[1]"#,
            r#"{"error":{"details":[{"@type":"x.QuotaFailure","violations":[{"quotaId":"a"},{"quotaId":""},{"quotaId":3},5,{"quotaId":"b"}]},{"@type":"x.ErrorInfo","reason":"API_KEY_INVALID"},{"reason":"ignored"}]}}"#,
            r#"{"error":{"details":{"error_code":"enforced_spend_limit_reached"}}}"#,
            r#"{"error":{"details":"nope","innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#,
            r#"{"error":{"innererror":"flat"}}"#,
            r#"{"error":{"metadata":{"raw":{"error":{"message":"up"}},"headers":{"X-RateLimit-Reset":"1790000000000"}}}}"#,
            r#"{"error":{"metadata":{"raw":"upstream said no","headers":{"x-ratelimit-reset":1790000000000}}}}"#,
            r#"{"error":{"metadata":{"raw":[1,"a",null,2.5,true],"headers":{"x-ratelimit-reset":true}}}}"#,
            r#"{"error":{"metadata":{"raw":null,"headers":[]}}}"#,
            r#"{"error":{"metadata":"flat"}}"#,
            r#"{"error":{"message":"caf\u00e9 \"quoted\"","type":"t\n"}}"#,
            r#"{"err\u006fr":{"message":"escaped key"}}"#,
            r#"{"error":{"message":"first"},"error":{"message":"second"}}"#,
            r#"{"choices":[{"message":{"content":"error"}}]}"#,
            r#"{"error":{"message":"m"}} trailing"#,
            r#"{"error":{"message":"m""#,
            r#"{"error":{"code":18446744073709551615}}"#,
            r#"{"error":{"code":1e3}}"#,
            r#"{"error_code":17,"error_msg":"Open api daily request limit reached"}"#,
            r#"{"error_msg":null,"error_code":"x","message":"m"}"#,
            r#"{"error":{"error_msg":"nested","error_code":18,"code":"kept"}}"#,
            r#"{"success":false,"errors":[{"code":3040,"message":"No more data centers"}],"messages":[]}"#,
            r#"{"errors":[5,{"message":"second"}],"message":"m"}"#,
            r#"{"errors":{"message":"not a list"},"detail":"d"}"#,
            r#"{"errors":[],"message":"empty"}"#,
        ] {
            agree(body);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn visitors_agree_with_the_value_reading_on_generated_json(value in json_value()) {
            agree(&value.to_string());
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let names = prop::sample::select(vec![
            "error",
            "message",
            "Message",
            "detail",
            "type",
            "object",
            "__type",
            "status",
            "code",
            "innererror",
            "details",
            "metadata",
            "raw",
            "headers",
            "x-ratelimit-reset",
            "@type",
            "retryDelay",
            "reason",
            "violations",
            "quotaId",
            "error_code",
            "error_msg",
            "errors",
            "other",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            prop::sample::select(vec![
                "",
                "error",
                "x.RetryInfo",
                "y.ErrorInfo",
                "z.QuotaFailure",
                "3s",
                "1.5s",
                "1790000000000",
                "a:b#c",
                "caf\u{e9}",
                "quote\"d",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((names.clone(), inner), 0..6).prop_map(|members| {
                    Value::Object(
                        members
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect(),
                    )
                }),
            ]
        })
    }
}
