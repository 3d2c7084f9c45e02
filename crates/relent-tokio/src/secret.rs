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

#[cfg(test)]
mod tests {
    use super::*;

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
