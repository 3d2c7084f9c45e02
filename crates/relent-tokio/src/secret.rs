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

    /// The secret for `id`.
    pub fn get(&self, id: KeyId) -> Option<&Secret> {
        self.secrets.get(&id)
    }
}
