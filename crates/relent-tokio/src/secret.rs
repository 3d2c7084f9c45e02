//! Secrets live here, in the driver, and nowhere in the core.

use relent::KeyId;
use std::collections::HashMap;
use std::fmt;

/// An API key. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself, for the moment a request is built.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Maps key ids to secrets.
#[derive(Clone, Default)]
pub struct KeyStore {
    secrets: HashMap<KeyId, Secret>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.secrets.keys().collect();
        ids.sort();
        f.debug_struct("KeyStore")
            .field("keys", &ids)
            .field("secrets", &"[redacted]")
            .finish()
    }
}

/// A secret the store was asked for but does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVar(pub String);

impl fmt::Display for MissingVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "environment variable {} is not set (it should hold an API key)",
            self.0
        )
    }
}

impl std::error::Error for MissingVar {}

impl KeyStore {
    /// An empty store.
    pub fn new() -> Self {
        KeyStore::default()
    }

    /// Adds a secret for `id`.
    pub fn insert(&mut self, id: KeyId, secret: Secret) -> &mut Self {
        self.secrets.insert(id, secret);
        self
    }

    /// A store filled from environment variables: `(key id, variable name)` pairs.
    pub fn from_env(vars: &[(KeyId, &str)]) -> Result<Self, MissingVar> {
        let mut store = KeyStore::new();
        for (id, var) in vars {
            let value = std::env::var(var).map_err(|_| MissingVar(var.to_string()))?;
            store.insert(*id, Secret::new(value));
        }
        Ok(store)
    }

    /// A store read from a file of `id = secret` lines (blank lines and `#` comments
    /// ignored), for example `1 = sk-proj-…`. The error never quotes a secret.
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
        let mut store = KeyStore::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = line
                .split_once('=')
                .and_then(|(id, secret)| Some((id.trim().parse::<u32>().ok()?, secret.trim())));
            match parsed {
                Some((id, secret)) if !secret.is_empty() => {
                    store.insert(KeyId(id), Secret::new(secret));
                }
                _ => {
                    return Err(format!(
                        "{} line {}: expected `<key id> = <secret>`",
                        path.display(),
                        n + 1
                    ))
                }
            }
        }
        Ok(store)
    }

    /// The secret for `id`.
    pub fn get(&self, id: KeyId) -> Option<&Secret> {
        self.secrets.get(&id)
    }
}

/// Whether a header with this name carries a credential: `authorization`,
/// `proxy-authorization`, `cookie`, `set-cookie`, and any name that mentions a key, token,
/// secret, password, signature or credential (`x-api-key`, `api-key`, `x-goog-api-key`,
/// `x-auth-token`), in any case. An idempotency key is not a credential.
pub fn is_sensitive_header(name: &str) -> bool {
    // One pass over the name, ASCII case folded in place, without a lowercased copy: this
    // runs for every header of every attempt. At each byte, only the words that begin with
    // it are compared. The exact names `authorization` and `proxy-authorization` contain
    // `auth`, so only the cookie names need their own test.
    let name = name.trim().as_bytes();
    let at = |i: usize, word: &[u8]| {
        name.get(i..i + word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    };
    let mut credential =
        name.eq_ignore_ascii_case(b"cookie") || name.eq_ignore_ascii_case(b"set-cookie");
    for (i, byte) in name.iter().enumerate() {
        let found = match byte.to_ascii_lowercase() {
            b'i' if at(i, b"idempotency") => return false,
            b'k' => at(i, b"key"),
            b't' => at(i, b"token"),
            b's' => at(i, b"secret") || at(i, b"signature"),
            b'p' => at(i, b"password"),
            b'c' => at(i, b"credential"),
            b'a' => at(i, b"auth"),
            _ => false,
        };
        credential |= found;
    }
    credential
}

/// A URL fit to print: the password of its user part, the values of parameters whose names
/// mention a key, token, secret, password, signature or credential (`?key=AIza…`,
/// `&access_token=…`, in the query or the fragment), and any secret relent's redactor finds
/// elsewhere in it are replaced by `[redacted]`.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    // The user part: `scheme://user:password@host`.
    let (head, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    out.push_str(head);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = &rest[..at];
            match user.split_once(':') {
                Some((name, _)) => {
                    out.push_str(name);
                    out.push_str(":[redacted]");
                }
                None => out.push_str("[redacted]"),
            }
            &rest[at..]
        }
        None => rest,
    };
    // Parameters: after `?`, `&`, `;` or `#`, `name=value`.
    let mut in_params = false;
    let mut pending = rest;
    while !pending.is_empty() {
        let cut = pending.find(['?', '&', ';', '#']).unwrap_or(pending.len());
        let (piece, next) = pending.split_at(cut);
        match piece.split_once('=') {
            Some((name, _)) if in_params && is_sensitive_header(name) => {
                out.push_str(name);
                out.push_str("=[redacted]");
            }
            _ => out.push_str(piece),
        }
        if let Some(sep) = next.chars().next() {
            out.push(sep);
            in_params = true;
            pending = &next[sep.len_utf8()..];
        } else {
            pending = next;
        }
    }
    relent::classify::redact::redact(&out)
}

/// The headers of one attempt. Each is marked sensitive or not, by its name
/// ([`is_sensitive_header`]) or explicitly; `Debug` and `Display` show a sensitive header's
/// value as `[redacted]` and every other value through relent's redactor, so a request can
/// be logged (`#[tracing::instrument]` on [`crate::Transport::send`], `{:?}`) without
/// showing a key. [`Headers::iter`] gives the real values, for sending.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String, bool)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers::default()
    }

    /// Adds a header, sensitive when its name says so.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let sensitive = is_sensitive_header(&name);
        self.entries.push((name, value.into(), sensitive));
    }

    /// Adds a header that is sensitive whatever its name.
    pub fn push_sensitive(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push((name.into(), value.into(), true));
    }

    /// Every header as `(name, value)`, values in clear, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(n, v, _)| (n.as_str(), v.as_str()))
    }

    /// Every header as `(name, value, sensitive)`, values in clear: what a transport needs
    /// to mark credentials for its own logging (reqwest's `HeaderValue::set_sensitive`).
    pub fn iter_marked(&self) -> impl Iterator<Item = (&str, &str, bool)> {
        self.entries
            .iter()
            .map(|(n, v, s)| (n.as_str(), v.as_str(), *s))
    }

    /// The first value of a header, matched case-insensitively, in clear.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value to print for one header.
    fn shown(value: &str, sensitive: bool) -> String {
        if sensitive {
            "[redacted]".to_string()
        } else {
            relent::classify::redact::redact(value)
        }
    }
}

impl From<Vec<(String, String)>> for Headers {
    fn from(pairs: Vec<(String, String)>) -> Self {
        let mut headers = Headers::new();
        for (name, value) in pairs {
            headers.push(name, value);
        }
        headers
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.push(name, value);
        }
        headers
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|(n, v, s)| (n.as_str(), Headers::shown(v, *s))),
            )
            .finish()
    }
}

impl fmt::Display for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (name, value, sensitive)) in self.entries.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{name}: {}", Headers::shown(value, *sensitive))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule as first written (a case-insensitive substring search per word), kept
    /// to check the one-pass scan against.
    fn sensitive_by_search(name: &str) -> bool {
        let name = name.trim().to_ascii_lowercase();
        if name.contains("idempotency") {
            return false;
        }
        [
            "authorization",
            "proxy-authorization",
            "cookie",
            "set-cookie",
        ]
        .contains(&name.as_str())
            || [
                "key",
                "token",
                "secret",
                "password",
                "signature",
                "credential",
                "auth",
            ]
            .iter()
            .any(|word| name.contains(word))
    }

    #[test]
    fn the_one_pass_scan_agrees_with_the_word_search() {
        // Names built from fragments of the words, their neighbours and separators, in
        // mixed case: every combination of up to three fragments.
        let fragments = [
            "",
            "x-",
            "-",
            " ",
            "key",
            "KEY",
            "ke",
            "y",
            "tok",
            "en",
            "Token",
            "secret",
            "SIGNATURE",
            "sign",
            "password",
            "pass",
            "credential",
            "cred",
            "auth",
            "AUTH",
            "au",
            "th",
            "idempotency",
            "Idempotency",
            "idem",
            "potency",
            "cookie",
            "set-cookie",
            "Cookie",
            "authorization",
            "proxy-",
            "api",
            "goog",
            "ä",
            "é-key",
        ];
        let mut checked = 0;
        for a in fragments {
            for b in fragments {
                for c in fragments {
                    let name = format!("{a}{b}{c}");
                    assert_eq!(
                        is_sensitive_header(&name),
                        sensitive_by_search(&name),
                        "{name:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, fragments.len().pow(3));
    }

    #[test]
    fn sensitive_header_names_in_any_case() {
        for name in [
            "Authorization",
            " PROXY-AUTHORIZATION ",
            "cookie",
            "Set-Cookie",
            "x-api-key",
            "API-KEY",
            "x-goog-api-key",
            "X-Auth-Token",
            "x-amz-security-token",
            "x-client-secret",
            "x-password",
            "x-amz-signature",
            "x-credential",
            "x-custom-auth",
            "ÄÖ-key",
        ] {
            assert!(is_sensitive_header(name), "{name} must be sensitive");
        }
        for name in [
            "content-type",
            "idempotency-key",
            "X-Idempotency-Token",
            "x-relent-attempt",
            "anthropic-version",
            "cookies-policy-x",
            "accept",
            "",
            "k",
            "ÄÖ",
        ] {
            assert!(!is_sensitive_header(name), "{name} must not be sensitive");
        }
    }

    #[test]
    fn key_files_parse_and_errors_never_quote_secrets() {
        let dir = std::env::temp_dir().join(format!("relent-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, "# prod keys\n1 = sk-aaaa1111\n\n2=sk-bbbb2222\n").unwrap();
        let store = KeyStore::from_file(&good).unwrap();
        assert_eq!(store.get(KeyId(2)).map(Secret::expose), Some("sk-bbbb2222"));
        let bad = dir.join("bad");
        std::fs::write(&bad, "1 sk-cccc3333\n").unwrap();
        let error = KeyStore::from_file(&bad).unwrap_err();
        assert!(
            error.contains("line 1") && !error.contains("sk-cccc"),
            "{error}"
        );
        assert!(!format!("{store:?}").contains("sk-"));
    }
}
