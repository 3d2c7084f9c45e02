//! Putting an attempt's headers on an `http` request: what the tower layer and the two
//! reqwest-based seams share.

use relent_tokio::{is_credential_header, Headers};

/// Takes the client's own credential headers out of `headers` and puts `added` (relent's
/// headers and the attempt's credential, sensitive ones marked so) in. The error quotes no
/// header value.
pub(crate) fn replace_credentials(
    headers: &mut http::HeaderMap,
    added: &Headers,
) -> Result<(), String> {
    let credentials: Vec<_> = headers
        .keys()
        .filter(|name| is_credential_header(name.as_str()))
        .cloned()
        .collect();
    for name in credentials {
        headers.remove(name);
    }
    for (name, value, sensitive) in added.iter_marked() {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{}` is not a valid header name", name.escape_debug()))?;
        let mut value = http::HeaderValue::from_str(value).map_err(|_| {
            format!(
                "the value of header `{name}` cannot be sent (a line break or control character?)"
            )
        })?;
        value.set_sensitive(sensitive);
        headers.insert(name, value);
    }
    Ok(())
}
