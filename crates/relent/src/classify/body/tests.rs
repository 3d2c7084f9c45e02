//! The visitors against a reference reading over `serde_json::Value`.

use super::*;
use serde_json::Value;

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
        if !obj.contains_key("error") {
            if let Some(inner @ Value::Object(_)) = obj.get("response").and_then(|r| r.get("error"))
            {
                read_error_object(inner, &mut fields);
                return Some(fields);
            }
        }
        match obj.get("error") {
            Some(inner @ Value::Object(_)) => read_error_object(inner, &mut fields),
            Some(Value::String(error)) => {
                match obj.get("message").and_then(message_text) {
                    Some(message) => {
                        fields.message = Some(message);
                        fields.details.push(error.clone());
                    }
                    None => fields.message = Some(error.clone()),
                }
                fields.code = obj.get("code").and_then(as_text);
            }
            Some(Value::Null) | None => {
                let explicit = obj.get("type").and_then(Value::as_str) == Some("error")
                    || base_resp_failed(obj.get("base_resp"))
                    || obj.get("object").and_then(Value::as_str) == Some("error")
                    || obj.get("error_msg").is_some_and(Value::is_string)
                    || obj.get("error_message").is_some_and(Value::is_string);
                let loose = obj.contains_key("__type")
                    || obj
                        .get("errors")
                        .and_then(Value::as_array)
                        .and_then(|items| items.first())
                        .is_some_and(Value::is_object)
                    || obj.get("message").and_then(error_text).is_some()
                    || obj.get("Message").is_some_and(Value::is_string)
                    || obj.contains_key("detail")
                    || obj.get("status").is_some_and(Value::is_object);
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
            .and_then(message_text)
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
        if fields.message.is_none() {
            fields.message = error.get("error_message").and_then(as_text);
        }
        if fields.code.is_none() {
            fields.code = error.get("error_code").and_then(as_text);
        }
        let first = error
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|items| items.first());
        let detail = error.get("detail");
        let status = error.get("status");
        let base_resp = error
            .get("base_resp")
            .filter(|b| base_resp_failed(Some(b)))
            .map(|b| {
                serde_json::json!({"message": b.get("status_msg"), "code": b.get("status_code")})
            });
        for other in [first, detail, status, base_resp.as_ref()]
            .into_iter()
            .flatten()
            .filter(|o| o.is_object())
        {
            if fields.message.is_none() {
                fields.message = other.get("message").and_then(as_text);
            }
            if fields.code.is_none() {
                fields.code = other.get("code").and_then(as_text);
            }
        }
    }

    /// Whether a `base_resp` object has a `status_code` other than 0.
    fn base_resp_failed(base: Option<&Value>) -> bool {
        match base
            .filter(|b| b.is_object())
            .and_then(|b| b.get("status_code"))
        {
            Some(Value::Number(n)) => n.as_f64().is_some_and(|c| c != 0.0),
            Some(Value::String(s)) => !s.is_empty() && s != "0",
            _ => false,
        }
    }

    fn as_text(value: &Value) -> Option<String> {
        match value {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// An error's `message`: as [`as_text`], and an object stands for its `error` member.
    fn message_text(value: &Value) -> Option<String> {
        match value {
            Value::Object(_) => error_text(value).filter(|s| !s.is_empty()),
            _ => as_text(value),
        }
    }

    /// An object's `error` member when it is text, or an object whose `error` is, and so on.
    fn error_text(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("error").and_then(error_text),
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
        r#"{"detail":{"code":"deactivated_workspace"}}"#,
        r#"{"statusCode":403,"error":"Forbidden","message":"Path not allowed"}"#,
        r#"{"error":"Bad Request","message":["model must be a string"]}"#,
        r#"{"error":"","message":7}"#,
        r#"{"error_type":"validation_error","error_message":"context too long"}"#,
        r#"{"error_msg":"first","error_message":"second"}"#,
        r#"{"type":"response.failed","response":{"id":"r","error":{"code":"server_error","message":"m"}}}"#,
        r#"{"type":"response.completed","response":{"id":"r","error":null}}"#,
        r#"{"response":{"error":{"code":"a"},"error":{"message":"b"}}}"#,
        r#"{"response":{"error":{"code":"a"}},"response":7}"#,
        r#"{"response":{"error":{"code":"a"}},"error":null}"#,
        r#"{"response":{"error":"text"},"message":"m"}"#,
        r#"{"response":[{"error":{"code":"a"}}]}"#,
        r#"{"status":{"code":"40082","message":"model fade out"},"result":null}"#,
        r#"{"status":{"code":7},"detail":{"message":"d"}}"#,
        r#"{"error":{"status":{"message":"inner"},"code":"c"}}"#,
        r#"{"status":"ok","status":{"code":"x"}}"#,
        r#"{"base_resp":{"status_code":1008,"status_msg":"insufficient balance"}}"#,
        r#"{"id":"x","base_resp":{"status_code":0,"status_msg":"success"}}"#,
        r#"{"base_resp":{"status_code":"1002","status_msg":7}}"#,
        r#"{"base_resp":{"status_code":-1.5}}"#,
        r#"{"base_resp":[1],"message":"m"}"#,
        r#"{"error":{"base_resp":{"status_code":1,"status_msg":"inner"}}}"#,
        r#"{"error_message":{"nested":1},"message":"m"}"#,
        r#"{"detail":{"message":"dm","code":7},"message":"top"}"#,
        r#"{"detail":{"message":{"x":1},"code":null}}"#,
        r#"{"error":{"detail":{"code":"c","message":"inner"}}}"#,
        r#"{"errors":[{"code":"e"}],"detail":{"code":"d","message":"dm"}}"#,
        r#"{"detail":{"code":"first"},"detail":"second"}"#,
        r#"{"detail":"first","detail":{"code":"second"}}"#,
    ] {
        agree(body);
    }
}

#[test]
fn a_detail_object_gives_its_message_and_code() {
    let text = r#"{"detail":{"code":"deactivated_workspace","message":"The workspace is off"}}"#;
    let fields = extract(text, false).expect("an error object");
    assert_eq!(fields.code.as_deref(), Some("deactivated_workspace"));
    assert_eq!(fields.message.as_deref(), Some("The workspace is off"));
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
        "error_message",
        "response",
        "base_resp",
        "status_code",
        "status_msg",
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

#[test]
fn numbers_read_as_json_writes_them() {
    for v in (0u64..1200).chain([9_999, 10_000, 65_535, u64::MAX]) {
        let n = serde_json::Number::from(v);
        assert_eq!(shapes::number_text(&n), v.to_string(), "{v}");
    }
    for text in ["-1", "-429", "4.5", "400.0", "1e3", "-0.25"] {
        let n: serde_json::Number = serde_json::from_str(text).unwrap();
        assert_eq!(shapes::number_text(&n), n.to_string(), "{text}");
    }
}
