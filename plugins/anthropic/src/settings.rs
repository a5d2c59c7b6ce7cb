//! The adapter's per-provider settings (`[providers.<name>.settings]` in the gateway config):
//!
//! ```toml
//! version = "2023-06-01"          # the anthropic-version header (default shown)
//! default_max_tokens = 4096       # max_tokens when the client sets none (Anthropic requires one)
//! beta = "prompt-caching-2024-07-31"   # optional anthropic-beta header
//! ```
//!
//! Unknown keys are errors, as everywhere in the gateway's config: a typo must not silently
//! change what is sent upstream.

use serde_json::{Map, Value};

use freeway_plugin_sdk::http::invalid_adapter_settings;
use freeway_plugin_sdk::types::Error;

pub(crate) const DEFAULT_VERSION: &str = "2023-06-01";
pub(crate) const DEFAULT_MAX_TOKENS: u64 = 4096;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    pub version: String,
    pub default_max_tokens: u64,
    pub beta: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            version: DEFAULT_VERSION.to_owned(),
            default_max_tokens: DEFAULT_MAX_TOKENS,
            beta: None,
        }
    }
}

impl Settings {
    /// Parses the settings JSON of `provider` (named in error messages; empty when the host
    /// checks settings at load, where it names the config key itself).
    pub fn parse(provider: &str, json: &str) -> Result<Self, Error> {
        let json = json.trim();
        if json.is_empty() || json == "{}" {
            return Ok(Self::default());
        }
        let invalid = |problem: String| invalid_adapter_settings("anthropic", provider, problem);
        let object: Map<String, Value> = match serde_json::from_str(json) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(invalid("settings must be a JSON object".into())),
            Err(parse_error) => return Err(invalid(format!("not valid JSON: {parse_error}"))),
        };
        let mut settings = Self::default();
        for (key, value) in object {
            match key.as_str() {
                "version" => settings.version = header_value("version", value).map_err(invalid)?,
                "beta" => settings.beta = Some(header_value("beta", value).map_err(invalid)?),
                "default_max_tokens" => {
                    settings.default_max_tokens = match value.as_u64() {
                        Some(tokens) if tokens > 0 => tokens,
                        _ => {
                            return Err(invalid(
                                "`default_max_tokens` must be a positive integer".into(),
                            ));
                        }
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "unknown setting `{other}` (expected `version`, `default_max_tokens` or `beta`)"
                    )));
                }
            }
        }
        Ok(settings)
    }
}

/// A string that goes into a header value: non-empty, without line breaks.
fn header_value(key: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(text) if !text.trim().is_empty() && !text.contains(['\r', '\n', '\0']) => {
            Ok(text)
        }
        Value::String(_) => Err(format!("`{key}` must be non-empty and without line breaks")),
        _ => Err(format!("`{key}` must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::types::ErrorKind;

    fn parse(json: &str) -> Result<Settings, Error> {
        Settings::parse("claude", json)
    }

    #[test]
    fn empty_settings_mean_defaults() {
        for json in ["", "{}", " { } "] {
            assert_eq!(parse(json).expect("valid"), Settings::default());
        }
        assert_eq!(Settings::default().version, "2023-06-01");
        assert_eq!(Settings::default().default_max_tokens, 4096);
    }

    #[test]
    fn every_setting() {
        let settings = parse(
            r#"{"version":"2024-01-01","default_max_tokens":1024,"beta":"prompt-caching-2024-07-31"}"#,
        )
        .expect("valid");
        assert_eq!(settings.version, "2024-01-01");
        assert_eq!(settings.default_max_tokens, 1024);
        assert_eq!(settings.beta.as_deref(), Some("prompt-caching-2024-07-31"));
    }

    #[test]
    fn mistakes_are_named() {
        let message = |json: &str| parse(json).expect_err("invalid").message;
        assert!(message(r#"{"verison":"x"}"#).contains("unknown setting `verison`"));
        assert!(message(r#"{"default_max_tokens":0}"#).contains("positive integer"));
        assert!(message(r#"{"default_max_tokens":"9"}"#).contains("positive integer"));
        assert!(message(r#"{"version":"a\r\nx: y"}"#).contains("line breaks"));
        assert!(message(r#"{"beta":1}"#).contains("must be a string"));
        assert!(message("[]").contains("must be a JSON object"));
        let error = parse("{").expect_err("invalid");
        assert_eq!(error.kind, ErrorKind::Internal);
        assert!(error.retryable);
        assert!(error.message.contains("provider `claude`"));
    }
}
