//! Config values and secrets, as granted by the plugin's manifest.
//!
//! A missing value is an operator's mistake, not the vendor's, so every accessor that needs a
//! value reports `misconfigured` naming the key; the workflow then stops retrying and shows it.

use crate::bindings::reclaim::plugin::config as host;
use crate::error::misconfigured;
use crate::PluginError;

/// A config value, or `None` when it is absent, empty or not granted.
pub fn get(key: &str) -> Option<String> {
    host::get(key).filter(|v| !v.trim().is_empty())
}

/// A config value, or `default` when it is absent.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}

/// A config value the plugin cannot work without.
pub fn require(key: &str) -> Result<String, PluginError> {
    get(key).ok_or_else(|| misconfigured(format!("config key `{key}` is missing or empty")))
}

/// A secret; the error names the secret, never its value.
pub fn secret(name: &str) -> Result<String, PluginError> {
    match host::secret(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        Ok(_) => Err(misconfigured(format!("secret `{name}` is empty"))),
        Err(why) => Err(misconfigured(format!(
            "secret `{name}` is not available: {why}"
        ))),
    }
}

/// A base URL from config, without a trailing slash so paths can be appended.
pub fn base_url(key: &str, default: Option<&str>) -> Result<String, PluginError> {
    let raw = match (get(key), default) {
        (Some(v), _) => v,
        (None, Some(d)) => d.to_owned(),
        (None, None) => return require(key),
    };
    crate::url::Url::parse(&raw)
        .map_err(|why| misconfigured(format!("config key `{key}`: {why}")))?;
    Ok(raw.trim_end_matches('/').to_owned())
}

/// A positive number from config, or `default` when absent.
pub fn u32_or(key: &str, default: u32) -> Result<u32, PluginError> {
    match get(key) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            misconfigured(format!(
                "config key `{key}` must be a whole number, got `{v}`"
            ))
        }),
    }
}

/// Which of a user's identifiers a connector reports as the row's `user_id` (config key
/// `user-id`: `id`, `upn` or `mail`; default `id`). It must be the id Reclaim's directory and
/// rules know the user by, or exclusions and dedupe would not recognise them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserIdField {
    Id,
    Upn,
    Mail,
}

impl UserIdField {
    pub fn from_config() -> Result<UserIdField, PluginError> {
        match get_or("user-id", "id").as_str() {
            "id" => Ok(UserIdField::Id),
            "upn" => Ok(UserIdField::Upn),
            "mail" => Ok(UserIdField::Mail),
            other => Err(misconfigured(format!(
                "config key `user-id` must be id, upn or mail, got `{other}`"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            UserIdField::Id => "id",
            UserIdField::Upn => "upn",
            UserIdField::Mail => "mail",
        }
    }

    /// The chosen one of a user's identifiers; `None` when the vendor has none (or a blank).
    pub fn pick(self, id: Option<&str>, upn: Option<&str>, mail: Option<&str>) -> Option<String> {
        match self {
            UserIdField::Id => id,
            UserIdField::Upn => upn,
            UserIdField::Mail => mail,
        }
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
    }
}
