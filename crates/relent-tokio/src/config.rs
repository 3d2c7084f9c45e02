//! A client from a TOML or JSON file: targets, endpoints, auth styles, keys by environment
//! variable or file, policy overrides. See `docs/CONFIG.md` and
//! `crates/relent-tokio/examples/relent.toml`.

use crate::builder::ClientBuilder;
use crate::client::Client;
use crate::error::CallError;
use crate::secret::{KeyStore, Secret};
use crate::target::{Api, Auth, Endpoint, ANTHROPIC_VERSION};
use crate::transport::{ReqwestTransport, Transport};
use relent::{KeySpec, Policy, Provider, Target};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A client's configuration, as read from TOML or JSON. Unknown fields are errors.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Allow `secret = "…"` in key entries. Off: secrets belong in the environment or in
    /// files, not in a configuration that gets committed and shared.
    #[serde(default)]
    pub allow_inline_secrets: bool,
    /// Policy overrides; fields left out keep their defaults (`docs/POLICY.md`).
    #[serde(default)]
    pub policy: Policy,
    /// The body idle timeout in milliseconds (default 60 000).
    #[serde(default)]
    pub body_idle_timeout_ms: Option<u64>,
    /// Headers sent to every target.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A fixed seed (tests and replays only; default: OS entropy).
    #[serde(default)]
    pub seed: Option<u64>,
    /// The fallback chain, preferred target first.
    pub targets: Vec<TargetConfig>,
}

/// One target of a [`Config`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TargetConfig {
    /// The provider (`openai`, `anthropic`, `azure`, `gemini`, `groq`, …): decides how
    /// errors are read, and the default API and auth.
    pub provider: Provider,
    /// The model name sent to this target.
    pub model: String,
    /// The model's context window, for a larger-context fallback after an overflow.
    #[serde(default)]
    pub context_tokens: Option<u32>,
    /// The full URL (`{model}` is replaced by the model).
    pub url: String,
    /// The request shape: `openai_compatible`, `anthropic_messages` or `other` (default:
    /// from the provider).
    #[serde(default)]
    pub api: Option<Api>,
    /// The auth style (default: from the provider).
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Headers sent to this target only.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Rewrite the top-level `"model"` of raw JSON bodies (default true).
    #[serde(default = "yes")]
    pub rewrite_model: bool,
    /// The keys, in priority order.
    pub keys: Vec<KeyConfig>,
}

fn yes() -> bool {
    true
}

/// An auth style in a [`Config`] (`auth = { type = "bearer" }`).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AuthConfig {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `x-api-key` and `anthropic-version` (default `2023-06-01`).
    AnthropicKey {
        /// The `anthropic-version`.
        #[serde(default)]
        version: Option<String>,
    },
    /// Azure's `api-key`.
    AzureApiKey,
    /// Gemini's `x-goog-api-key`.
    GoogApiKey,
    /// A query parameter (default `key`).
    QueryKey {
        /// Its name.
        #[serde(default)]
        param: Option<String>,
    },
    /// `<name>: <prefix><key>`.
    Header {
        /// The header's name.
        name: String,
        /// Text before the key.
        #[serde(default)]
        prefix: String,
    },
    /// No credential.
    None,
}

/// One key of a [`TargetConfig`]: a label and where its secret is. Its `Debug` never shows
/// an inline secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyConfig {
    /// The key's id (default: the next free one).
    #[serde(default)]
    pub id: Option<u32>,
    /// A printable name (never the secret).
    pub label: String,
    /// The environment variable holding the secret.
    #[serde(default)]
    pub env: Option<String>,
    /// A file holding the secret (one trailing line break is removed; a relative path is
    /// relative to the configuration file).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The secret itself: refused unless `allow_inline_secrets = true`.
    #[serde(default)]
    pub secret: Option<String>,
}

impl std::fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyConfig")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("env", &self.env)
            .field("file", &self.file)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Config {
    /// Parses TOML.
    pub fn from_toml_str(text: &str) -> Result<Self, CallError> {
        toml::from_str(text)
            .map_err(|e| CallError::config(format!("invalid TOML configuration: {e}")))
    }

    /// Parses JSON.
    pub fn from_json_str(text: &str) -> Result<Self, CallError> {
        serde_json::from_str(text)
            .map_err(|e| CallError::config(format!("invalid JSON configuration: {e}")))
    }

    /// Reads a file: JSON when its name ends in `.json`, TOML otherwise.
    pub fn from_file(path: impl AsRef<Path>) -> Result<(Self, PathBuf), CallError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            CallError::config(format!("cannot read configuration {}: {e}", path.display()))
        })?;
        let config = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Config::from_json_str(&text)
        } else {
            Config::from_toml_str(&text)
        }
        .map_err(|e| match e {
            CallError::Config(m) => CallError::Config(format!("{}: {m}", path.display())),
            other => other,
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((config, dir))
    }

    /// A builder with this configuration, reading secrets now (relative key files are
    /// looked up under `base_dir`). Every mistake is a [`CallError::Config`] naming the
    /// target and key label, never a secret.
    pub fn builder<T: Transport>(
        &self,
        transport: T,
        base_dir: &Path,
    ) -> Result<ClientBuilder<T>, CallError> {
        let mut builder = Client::builder(transport).policy(self.policy.clone());
        if let Some(ms) = self.body_idle_timeout_ms {
            builder = builder.body_idle_timeout(Duration::from_millis(ms));
        }
        if let Some(seed) = self.seed {
            builder = builder.seed(seed);
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        let mut used: Vec<u32> = self
            .targets
            .iter()
            .flat_map(|t| t.keys.iter().filter_map(|k| k.id))
            .collect();
        let mut next = 1;
        let mut keys = KeyStore::new();
        for target in &self.targets {
            let mut specs = Vec::new();
            for key in &target.keys {
                let id = match key.id {
                    Some(id) => id,
                    None => {
                        while used.contains(&next) {
                            next += 1;
                        }
                        used.push(next);
                        next
                    }
                };
                let secret = self.secret(target, key, base_dir)?;
                keys.insert(relent::KeyId(id), secret);
                specs.push(KeySpec::new(id, key.label.as_str()));
            }
            let mut t = Target::new(target.provider, target.model.clone(), specs);
            t.context_tokens = target.context_tokens;
            let api = target.api.unwrap_or(match target.provider {
                Provider::Anthropic => Api::AnthropicMessages,
                Provider::Gemini | Provider::Vertex | Provider::Bedrock => Api::Other,
                _ => Api::OpenAiCompatible,
            });
            let auth = match &target.auth {
                Some(auth) => auth.to_auth(),
                None => match target.provider {
                    Provider::Anthropic => Auth::AnthropicKey {
                        version: ANTHROPIC_VERSION.into(),
                    },
                    Provider::Azure => Auth::AzureApiKey,
                    Provider::Gemini => Auth::GoogApiKey,
                    _ => api.default_auth(),
                },
            };
            let mut endpoint = Endpoint::new(target.url.clone(), api)
                .with_auth(auth)
                .with_model_rewrite(target.rewrite_model);
            for (name, value) in &target.headers {
                endpoint = endpoint.with_header(name.clone(), value.clone());
            }
            builder = builder.target(t, endpoint);
        }
        Ok(builder.keys(keys))
    }

    fn secret(
        &self,
        target: &TargetConfig,
        key: &KeyConfig,
        base_dir: &Path,
    ) -> Result<Secret, CallError> {
        let who = format!("target {} key \"{}\"", target.model, key.label);
        match (&key.env, &key.file, &key.secret) {
            (Some(var), None, None) => std::env::var(var).map(Secret::new).map_err(|_| {
                CallError::config(format!(
                    "{who}: environment variable {var} is not set (or not valid UTF-8)"
                ))
            }),
            (None, Some(file), None) => {
                let path = if file.is_relative() {
                    base_dir.join(file)
                } else {
                    file.clone()
                };
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    CallError::config(format!("{who}: cannot read key file {}: {e}", path.display()))
                })?;
                // Editors end files with a line break; one is not part of the secret.
                let text = text
                    .strip_suffix("\r\n")
                    .or_else(|| text.strip_suffix('\n'))
                    .unwrap_or(&text);
                Ok(Secret::new(text))
            }
            (None, None, Some(secret)) if self.allow_inline_secrets => Ok(Secret::new(secret.clone())),
            (None, None, Some(_)) => Err(CallError::config(format!(
                "{who}: an inline secret is not allowed; use `env` or `file`, or set allow_inline_secrets = true"
            ))),
            _ => Err(CallError::config(format!(
                "{who}: give exactly one of `env`, `file` or `secret`"
            ))),
        }
    }
}

impl AuthConfig {
    fn to_auth(&self) -> Auth {
        match self {
            AuthConfig::Bearer => Auth::Bearer,
            AuthConfig::AnthropicKey { version } => Auth::AnthropicKey {
                version: version.clone().unwrap_or_else(|| ANTHROPIC_VERSION.into()),
            },
            AuthConfig::AzureApiKey => Auth::AzureApiKey,
            AuthConfig::GoogApiKey => Auth::GoogApiKey,
            AuthConfig::QueryKey { param } => Auth::QueryKey {
                param: param.clone().unwrap_or_else(|| "key".into()),
            },
            AuthConfig::Header { name, prefix } => Auth::Header {
                name: name.clone(),
                prefix: prefix.clone(),
            },
            AuthConfig::None => Auth::None,
        }
    }
}

impl Client<ReqwestTransport> {
    /// A client over reqwest from a TOML (or `.json`) configuration file. Secrets are read
    /// now; every mistake is a [`CallError::Config`].
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Self, CallError> {
        let (config, dir) = Config::from_file(path)?;
        config.builder(ReqwestTransport::new(), &dir)?.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_secrets_are_refused_unless_allowed() {
        let text = r#"
            [[targets]]
            provider = "openai"
            model = "gpt-4o"
            url = "https://api.openai.com/v1/chat/completions"
            keys = [{ label = "prod", secret = "sk-inline-123456" }]
        "#;
        let config = Config::from_toml_str(text).unwrap();
        let error = config
            .builder(ReqwestTransport::new(), Path::new("."))
            .unwrap_err();
        assert!(error.is_config());
        assert!(!error.to_string().contains("sk-inline"), "{error}");
        let allowed = format!("allow_inline_secrets = true\n{text}");
        let config = Config::from_toml_str(&allowed).unwrap();
        assert!(config
            .builder(ReqwestTransport::new(), Path::new("."))
            .unwrap()
            .build()
            .is_ok());
        assert!(!format!("{config:?}").contains("sk-inline"));
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../examples/relent.toml");
        let config = Config::from_toml_str(text).unwrap();
        assert_eq!(config.targets.len(), 3);
    }
}
