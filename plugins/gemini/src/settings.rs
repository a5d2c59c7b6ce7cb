//! The adapter's per-provider settings (`[providers.<name>.settings]` in the gateway config):
//!
//! ```toml
//! # Sent as `safetySettings` on every request, e.g. to relax the default thresholds:
//! safety_settings = [{ category = "HARM_CATEGORY_HARASSMENT", threshold = "BLOCK_ONLY_HIGH" }]
//! ```
//!
//! Unknown keys are errors, as everywhere in the gateway's config: a typo must not silently
//! change what is sent upstream.

use serde_json::{Map, Value};

use freeway_plugin_sdk::http::invalid_adapter_settings;
use freeway_plugin_sdk::types::Error;

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Settings {
    /// Gemini's `safetySettings` array, passed through.
    pub safety_settings: Option<Value>,
}

impl Settings {
    /// Parses the settings JSON of `provider` (named in error messages; empty when the host
    /// checks settings at load, where it names the config key itself).
    pub fn parse(provider: &str, json: &str) -> Result<Self, Error> {
        let json = json.trim();
        if json.is_empty() || json == "{}" {
            return Ok(Self::default());
        }
        let invalid = |problem: String| invalid_adapter_settings("gemini", provider, problem);
        let object: Map<String, Value> = match serde_json::from_str(json) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(invalid("settings must be a JSON object".into())),
            Err(parse_error) => return Err(invalid(format!("not valid JSON: {parse_error}"))),
        };
        let mut settings = Self::default();
        for (key, value) in object {
            match key.as_str() {
                "safety_settings" => {
                    let valid = value
                        .as_array()
                        .is_some_and(|items| items.iter().all(Value::is_object));
                    if !valid {
                        return Err(invalid(
                            "`safety_settings` must be an array of {category, threshold} objects"
                                .into(),
                        ));
                    }
                    settings.safety_settings = Some(value);
                }
                other => {
                    return Err(invalid(format!(
                        "unknown setting `{other}` (expected `safety_settings`)"
                    )));
                }
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::types::ErrorKind;
    use serde_json::json;

    #[test]
    fn empty_and_full_settings() {
        for text in ["", "{}", " { } "] {
            assert_eq!(
                Settings::parse("g", text).expect("valid"),
                Settings::default()
            );
        }
        let settings = Settings::parse(
            "g",
            r#"{"safety_settings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_ONLY_HIGH"}]}"#,
        )
        .expect("valid");
        assert_eq!(
            settings.safety_settings,
            Some(json!([{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_ONLY_HIGH"}]))
        );
    }

    #[test]
    fn mistakes_are_named() {
        let message = |text: &str| Settings::parse("g", text).expect_err("invalid").message;
        assert!(message(r#"{"safety":[]}"#).contains("unknown setting `safety`"));
        assert!(message(r#"{"safety_settings":{}}"#).contains("must be an array"));
        assert!(message("[]").contains("must be a JSON object"));
        let failure = Settings::parse("g", "{").expect_err("invalid");
        assert_eq!(failure.kind, ErrorKind::Internal);
        assert!(failure.retryable);
        assert!(failure.message.contains("provider `g`"));
    }
}
