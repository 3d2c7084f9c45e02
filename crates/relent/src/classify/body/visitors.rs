//! The serde visitors that read a body into the shapes of `shapes`: only the members the
//! rules look at are kept, strings are borrowed from the body unless they hold escapes, and
//! everything else is skipped (but still checked to be valid JSON).

use super::shapes::{
    Detail, Details, ErrorMember, FirstError, Members, Metadata, Object, Others, ResponseError,
    Scalar, MAX_DETAILS, MAX_VIOLATIONS,
};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt;

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

/// Reads any JSON value as a [`Scalar`]; with `error_member`, an object stands for its
/// `error` member when that is text (see [`MessageText`]).
struct ScalarVisitor {
    error_member: bool,
}

/// The plain [`ScalarVisitor`].
const SCALAR: ScalarVisitor = ScalarVisitor {
    error_member: false,
};

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

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        if !self.error_member {
            skip_members(map)?;
            return Ok(Scalar::Other);
        }
        let mut error = None;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            if key == "error" {
                error = Some(map.next_value::<MessageText<'de>>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(match error {
            Some(Scalar::Str(text)) => Scalar::Str(text),
            _ => Scalar::Other,
        })
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SCALAR)
    }
}

/// An error's `message`, where an object stands for its `error` member when that is text:
/// LiteLLM's guardrails answer `{"error": {"message": {"error": "Violated content safety
/// policy", "lakera_ai_response": …}}}`.
pub(super) struct MessageText<'a>(pub(super) Scalar<'a>);

impl<'de> Deserialize<'de> for MessageText<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(ScalarVisitor { error_member: true })
            .map(MessageText)
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

/// Reads a whole body into `object`: the top-level object, or the first item of a top-level
/// list (at any depth). Returns whether an object was read; the body must be valid JSON
/// throughout, as `serde_json::from_str` requires.
pub(super) fn read_body<'de>(text: &'de str, object: &mut Object<'de>) -> serde_json::Result<bool> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let read = TopSeed(object).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(read)
}

/// The body's top level, read into the object it borrows; its value is whether an object was
/// found (a scalar, an empty list or a list whose first item holds no object give `false`).
struct TopSeed<'o, 'de>(&'o mut Object<'de>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_, 'de> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or list")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let first = seq.next_element_seed(TopSeed(self.0))?;
        skip_rest(seq)?;
        Ok(first.unwrap_or(false))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        read_object(map, self.0)?;
        Ok(true)
    }
}

/// The `response` member: its `error` (the last one), its members read into the `Members` it
/// borrows when it is an object; `None` when `response` is no object or has no `error`.
struct ResponseSeed<'o, 'de>(&'o mut Members<'de>);

impl<'de> DeserializeSeed<'de> for ResponseSeed<'_, 'de> {
    type Value = Option<ErrorMember<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResponseSeed<'_, 'de> {
    type Value = Option<ErrorMember<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a response object")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_rest(seq)?;
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let members = self.0;
        let mut error = None;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            if key == "error" {
                if error.is_some() {
                    *members = Members::default();
                }
                error = Some(map.next_value_seed(ErrorSeed(&mut *members))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(error)
    }
}

/// The `error` member, its members read into the `Members` it borrows when it is an object.
struct ErrorSeed<'o, 'de>(&'o mut Members<'de>);

impl<'de> DeserializeSeed<'de> for ErrorSeed<'_, 'de> {
    type Value = ErrorMember<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ErrorSeed<'_, 'de> {
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
        let members = self.0;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            // A nested error's own `error` member is skipped.
            if key == "error" || !members.read(&key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(ErrorMember::Object)
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

/// The members `message` and `code` of an object, under the names it gives them (the last
/// of each when one repeats).
fn message_and_code<'de, A: MapAccess<'de>>(
    mut map: A,
    message: &str,
    code: &str,
) -> Result<FirstError<'de>, A::Error> {
    let mut read = FirstError::default();
    while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
        if key == message {
            read.message = Some(map.next_value()?);
        } else if key == code {
            read.code = Some(map.next_value()?);
        } else {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(read)
}

/// One item of `errors`: its `message` and `code` when it is an object.
struct FirstErrorItem<'a>(Option<FirstError<'a>>);

any_json!(FirstErrorItem<'de>, FirstErrorItemVisitor, FirstErrorItem(None), "an error", objects {
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FirstErrorItem<'de>, A::Error> {
        Ok(FirstErrorItem(Some(message_and_code(map, "message", "code")?)))
    }
});

/// `detail` (or `status`): a scalar as it is, or an object as [`Scalar::Other`] with its
/// `message` and `code`.
struct DetailMember<'a>(Scalar<'a>, Option<FirstError<'a>>);

impl<'de> Deserialize<'de> for DetailMember<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DetailMemberVisitor)
    }
}

struct DetailMemberVisitor;

impl<'de> Visitor<'de> for DetailMemberVisitor {
    type Value = DetailMember<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(DetailMember(SCALAR.visit_borrowed_str(v)?, None))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(DetailMember(SCALAR.visit_str(v)?, None))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(DetailMember(SCALAR.visit_u64(v)?, None))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(DetailMember(SCALAR.visit_i64(v)?, None))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(DetailMember(SCALAR.visit_f64(v)?, None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(DetailMember(Scalar::Other, None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(DetailMember(Scalar::Other, None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_rest(seq)?;
        Ok(DetailMember(Scalar::Other, None))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let FirstErrorItem(object) = FirstErrorItemVisitor.visit_map(map)?;
        Ok(DetailMember(Scalar::Other, object))
    }
}

/// MiniMax's `base_resp`: its `status_code` and `status_msg`, when it is an object.
struct BaseResp<'a>(Option<FirstError<'a>>);

any_json!(BaseResp<'de>, BaseRespVisitor, BaseResp(None), "a base_resp", objects {
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BaseResp<'de>, A::Error> {
        Ok(BaseResp(Some(message_and_code(map, "status_msg", "status_code")?)))
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

/// Reads a top-level object into `object`.
fn read_object<'de, A: MapAccess<'de>>(
    mut map: A,
    object: &mut Object<'de>,
) -> Result<(), A::Error> {
    while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
        if key == "error" {
            // The last `error` wins, as it did when each was read into a value of its own.
            if object.error.take().is_some() {
                object.error_members = Members::default();
            }
            object.error = Some(map.next_value_seed(ErrorSeed(&mut object.error_members))?);
        } else if key == "response" {
            // The last `response` wins, as it does for `error`.
            let mut response = Box::<ResponseError>::default();
            response.error = map.next_value_seed(ResponseSeed(&mut response.members))?;
            object.response_error = response.error.is_some().then_some(response);
        } else if !object.members.read(&key, &mut map)? {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(())
}

impl<'de> Members<'de> {
    /// Sets one of the rarely present objects of [`Others`] (the last one of a name wins),
    /// allocating `Others` only when there is a value to keep.
    fn set_other(
        &mut self,
        value: Option<FirstError<'de>>,
        field: for<'o> fn(&'o mut Others<'de>) -> &'o mut Option<FirstError<'de>>,
    ) {
        match value {
            Some(value) => *field(self.others.get_or_insert_with(Box::default)) = Some(value),
            None => {
                if let Some(others) = self.others.as_mut() {
                    *field(others) = None;
                }
            }
        }
    }

    /// Reads the value of member `key` when the rules look at it; `false` when they do not
    /// (the caller skips the value).
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "message" => self.message = Some(map.next_value::<MessageText<'de>>()?.0),
            "Message" => self.upper_message = Some(map.next_value()?),
            "detail" => {
                // An object counts as present (an error's `detail`) but is no text itself.
                let DetailMember(text, object) = map.next_value()?;
                self.detail = Some(text);
                self.set_other(object, |o| &mut o.detail);
            }
            "type" => self.kind = Some(map.next_value()?),
            "object" => self.object = Some(map.next_value()?),
            "__type" => self.aws_type = Some(map.next_value()?),
            "status" => {
                let DetailMember(text, object) = map.next_value()?;
                self.status = Some(text);
                self.set_other(object, |o| &mut o.status);
            }
            "code" => self.code = Some(map.next_value()?),
            "innererror" => self.inner_code = map.next_value::<InnerError<'de>>()?.0,
            "details" => self.details = Some(map.next_value()?),
            "metadata" => self.metadata = map.next_value::<MetadataMember<'de>>()?.0,
            "error_msg" => self.error_msg = Some(map.next_value()?),
            "error_message" => self.error_message = Some(map.next_value()?),
            "base_resp" => {
                let base = map.next_value::<BaseResp<'de>>()?.0;
                self.set_other(base, |o| &mut o.base_resp);
            }
            "error_code" => self.error_code = Some(map.next_value()?),
            "errors" => self.errors = map.next_value::<ErrorsMember<'de>>()?.0,
            _ => return Ok(false),
        }
        Ok(true)
    }
}
