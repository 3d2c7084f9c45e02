//! What is kept of a body, and how it maps onto [`ErrorFields`].

use super::{aws_error_type, hints, ErrorFields};
use serde_json::Number;
use std::borrow::Cow;

/// A JSON value where only scalars matter; objects and arrays are skipped.
#[derive(Debug)]
pub(super) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Num(Number),
    Other,
}

impl<'a> Scalar<'a> {
    /// A non-empty string, or a number as text.
    pub(super) fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) if !s.is_empty() => Some(s),
            Scalar::Num(n) => Some(number_text(&n)),
            _ => None,
        }
    }

    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn is_str(&self) -> bool {
        matches!(self, Scalar::Str(_))
    }
}

/// The three-digit numbers 100 to 999 written out one after another: `100101102…999`.
const THREE_DIGITS: [u8; 2700] = {
    let mut table = [0u8; 2700];
    let mut n = 0;
    while n < 900 {
        let value = n + 100;
        table[3 * n] = b'0' + (value / 100) as u8;
        table[3 * n + 1] = b'0' + (value / 10 % 10) as u8;
        table[3 * n + 2] = b'0' + (value % 10) as u8;
        n += 1;
    }
    table
};

/// A number as JSON writes it. A three-digit whole number (an HTTP status in a `code`
/// member, the common case) is borrowed from [`THREE_DIGITS`] instead of formatted.
pub(super) fn number_text(n: &Number) -> Cow<'static, str> {
    let three_digits = n
        .as_u64()
        .and_then(|v| usize::try_from(v).ok())
        .filter(|v| (100..1000).contains(v))
        .and_then(|v| std::str::from_utf8(&THREE_DIGITS[3 * (v - 100)..3 * (v - 100) + 3]).ok());
    match three_digits {
        Some(text) => Cow::Borrowed(text),
        None => Cow::Owned(n.to_string()),
    }
}

/// A top-level object (or the first item of a top-level list, at any depth): an `error`
/// member, or the members of an error itself. It is filled in place by the visitors, so
/// that neither it nor the members of its `error` are moved or boxed.
#[derive(Default)]
pub(super) struct Object<'a> {
    /// What the `error` member was (the last one, when it repeats).
    pub(super) error: Option<ErrorMember<'a>>,
    /// The members of `error`, when `error` is [`ErrorMember::Object`].
    pub(super) error_members: Members<'a>,
    pub(super) members: Members<'a>,
    /// `response.error`, when `response` is an object that has an `error` (OpenAI's
    /// Responses API streams a failure as `{"type":"response.failed","response":{…,"error":
    /// {…}}}`). Boxed: most bodies have no `response`, and a `Members` is large to clear and
    /// drop.
    pub(super) response_error: Option<Box<ResponseError<'a>>>,
}

/// What `response.error` was, and its members when it is an object.
#[derive(Default)]
pub(super) struct ResponseError<'a> {
    pub(super) error: Option<ErrorMember<'a>>,
    pub(super) members: Members<'a>,
}

/// Error objects beside the error's own members, which few bodies have (so they are boxed
/// together, out of [`Members`]): each one's `message` and `code` fill what the error lacks.
#[derive(Default)]
pub(super) struct Others<'a> {
    /// A `detail` object (FastAPI servers raising an error with a structured detail;
    /// ChatGPT's backend: `{"detail": {"code": "deactivated_workspace"}}`).
    pub(super) detail: Option<FirstError<'a>>,
    /// A `status` object (Naver CLOVA Studio:
    /// `{"status":{"code":"40082","message":"model fade out"},"result":null}`).
    pub(super) status: Option<FirstError<'a>>,
    /// MiniMax's `base_resp`: `status_msg` as the message and `status_code` as the code
    /// (`{"base_resp":{"status_code":1008,"status_msg":"insufficient balance"}}`, also inside
    /// a 200; a `status_code` of 0 is a success).
    pub(super) base_resp: Option<FirstError<'a>>,
}

/// The members of an error object other than a nested `error` (no rule looks at one).
#[derive(Default)]
pub(super) struct Members<'a> {
    pub(super) message: Option<Scalar<'a>>,
    /// `Message` (AWS).
    pub(super) upper_message: Option<Scalar<'a>>,
    pub(super) detail: Option<Scalar<'a>>,
    /// `type`.
    pub(super) kind: Option<Scalar<'a>>,
    pub(super) object: Option<Scalar<'a>>,
    /// `__type` (AWS).
    pub(super) aws_type: Option<Scalar<'a>>,
    pub(super) status: Option<Scalar<'a>>,
    /// `detail`, `status` and `base_resp` objects (see [`Others`]).
    pub(super) others: Option<Box<Others<'a>>>,
    pub(super) code: Option<Scalar<'a>>,
    /// `innererror.code` (Azure).
    pub(super) inner_code: Option<Scalar<'a>>,
    pub(super) details: Option<Details<'a>>,
    /// `metadata`, when it is an object (OpenRouter).
    pub(super) metadata: Option<Metadata<'a>>,
    /// `error_msg` (Baidu Qianfan, which answers errors inside a 200).
    pub(super) error_msg: Option<Scalar<'a>>,
    /// `error_message`, read as `error_msg` is (a gateway's in-band stream error:
    /// `{"error_type":"validation_error","error_message":"…"}`).
    pub(super) error_message: Option<Scalar<'a>>,
    /// `error_code` (Baidu Qianfan).
    pub(super) error_code: Option<Scalar<'a>>,
    /// The first item of `errors`, when it is a list of objects (Cloudflare).
    pub(super) errors: Option<FirstError<'a>>,
}

/// The `message` and `code` of an object beside the error's own: the first item of an
/// `errors` list, or a `detail` object.
#[derive(Default)]
pub(super) struct FirstError<'a> {
    pub(super) message: Option<Scalar<'a>>,
    pub(super) code: Option<Scalar<'a>>,
}

/// The `error` member. The members of an object are kept in [`Object::error_members`].
pub(super) enum ErrorMember<'a> {
    Object,
    Text(Cow<'a, str>),
    Null,
    Other,
}

/// The `details` member: Google's list of typed details, or Anthropic's object.
pub(super) enum Details<'a> {
    List(Vec<Detail<'a>>),
    ErrorCode(Option<Scalar<'a>>),
    Other,
}

/// One of Google's typed details (`RetryInfo`, `ErrorInfo`, `QuotaFailure`).
#[derive(Default)]
pub(super) struct Detail<'a> {
    pub(super) at_type: Option<Scalar<'a>>,
    pub(super) retry_delay: Option<Scalar<'a>>,
    pub(super) reason: Option<Scalar<'a>>,
    /// `violations[].quotaId`, when `violations` is a list.
    pub(super) quota_ids: Option<Vec<Option<Scalar<'a>>>>,
}

#[derive(Default)]
pub(super) struct Metadata<'a> {
    pub(super) raw: Option<Cow<'a, str>>,
    /// The first `x-ratelimit-reset` of `headers`, when `headers` is an object and its
    /// value is a time.
    pub(super) reset: Option<u64>,
}

/// How many of Google's details are read, and how many quota violations per detail.
pub(super) const MAX_DETAILS: usize = 16;
pub(super) const MAX_VIOLATIONS: usize = 8;

impl<'a> Object<'a> {
    /// The error fields of this object, taken out of it.
    pub(super) fn take_fields(&mut self, in_band: bool) -> Option<ErrorFields<'a>> {
        let mut fields = ErrorFields::default();
        // Without an `error` of its own, an object whose `response` failed carries that
        // response's error.
        if self.error.is_none() {
            if let Some(mut response) = self.response_error.take() {
                if let Some(ErrorMember::Object) = response.error {
                    response.members.read_into(&mut fields);
                    return Some(fields);
                }
            }
        }
        let this = &mut self.members;
        match self.error.take() {
            Some(ErrorMember::Object) => self.error_members.read_into(&mut fields),
            Some(ErrorMember::Text(error)) => {
                // xAI: {"code": "...", "error": "Incorrect API key provided: ..."}. NestJS and
                // Express gateways: {"statusCode": 403, "error": "Forbidden", "message": "Path
                // not allowed"}: there the `error` names the status and the `message` says
                // what went wrong, so the message leads and the name is searched after it.
                match this.message.take().and_then(Scalar::text) {
                    Some(message) => {
                        fields.message = Some(message);
                        fields.details.push(error);
                    }
                    None => fields.message = Some(error),
                }
                fields.code = this.code.take().and_then(Scalar::text);
            }
            Some(ErrorMember::Null) | None => {
                let explicit = this.kind.as_ref().and_then(Scalar::as_str) == Some("error")
                    || this
                        .others
                        .as_ref()
                        .and_then(|o| o.base_resp.as_ref())
                        .is_some_and(FirstError::failed)
                    || this.object.as_ref().and_then(Scalar::as_str) == Some("error")
                    || this.error_msg.as_ref().is_some_and(Scalar::is_str)
                    || this.error_message.as_ref().is_some_and(Scalar::is_str);
                let loose = this.aws_type.is_some()
                    || this.errors.is_some()
                    || this.message.as_ref().is_some_and(Scalar::is_str)
                    || this.upper_message.as_ref().is_some_and(Scalar::is_str)
                    || this.detail.is_some()
                    || this.others.as_ref().is_some_and(|o| o.status.is_some());
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
    pub(super) fn read_into(&mut self, fields: &mut ErrorFields<'a>) {
        fields.message = self.message.take().and_then(Scalar::text);
        fields.kind = self.kind.take().and_then(Scalar::text);
        fields.status_text = self.status.take().and_then(Scalar::text);
        match self.code.take() {
            Some(Scalar::Num(n)) => {
                fields.numeric_code = n.as_u64().and_then(|c| u16::try_from(c).ok());
                fields.code = Some(number_text(&n));
            }
            Some(other) => fields.code = other.text(),
            None => {}
        }
        if let Some(inner) = self.inner_code.take().and_then(Scalar::text) {
            fields.details.push(inner);
        }
        match self.details.take() {
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
        if let Some(metadata) = self.metadata.take() {
            fields.upstream_raw = metadata.raw;
            fields.openrouter_reset_unix_ms = metadata.reset;
        }
        if fields.message.is_none() {
            fields.message = self.error_msg.take().and_then(Scalar::text);
        }
        if fields.message.is_none() {
            fields.message = self.error_message.take().and_then(Scalar::text);
        }
        if fields.code.is_none() {
            fields.code = self.error_code.take().and_then(Scalar::text);
        }
        if let Some(first) = self.errors.take() {
            first.fill(fields);
        }
        // Rare: looked at only when one of them was there.
        if let Some(others) = self.others.take() {
            let others = *others;
            let base_resp = others.base_resp.filter(FirstError::failed);
            for other in [others.detail, others.status, base_resp]
                .into_iter()
                .flatten()
            {
                other.fill(fields);
            }
        }
    }
}

impl<'a> FirstError<'a> {
    /// Fills the message and the code that `fields` still lacks from this object's.
    fn fill(self, fields: &mut ErrorFields<'a>) {
        if fields.message.is_none() {
            fields.message = self.message.and_then(Scalar::text);
        }
        if fields.code.is_none() {
            fields.code = self.code.and_then(Scalar::text);
        }
    }

    /// Whether a `base_resp` says the call failed: a `status_code` other than 0.
    pub(super) fn failed(&self) -> bool {
        match &self.code {
            Some(Scalar::Num(n)) => n.as_f64().is_some_and(|c| c != 0.0),
            Some(Scalar::Str(s)) => !s.is_empty() && s != "0",
            _ => false,
        }
    }
}

impl<'a> Detail<'a> {
    pub(super) fn read_into(self, fields: &mut ErrorFields<'a>) {
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
