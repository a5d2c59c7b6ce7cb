//! The adapter's per-provider settings (`[providers.<name>.settings]` in the gateway config),
//! which cover the ways OpenAI-compatible APIs differ from OpenAI at the HTTP level:
//!
//! ```toml
//! path = "/chat/completions"              # appended to base_url (default shown)
//! embeddings_path = "/embeddings"         # for POST /v1/embeddings (default shown)
//! auth = "bearer"                         # "bearer" | "none" | { header = "api-key" } | { query = "key" }
//! headers = { "HTTP-Referer" = "https://example.com", "X-Title" = "Freeway" }
//! ```
//!
//! Unknown keys are errors, as everywhere in the gateway's config: a typo must not silently drop
//! a header a provider requires.

use serde_json::{Map, Value};

use freeway_plugin_sdk::http::invalid_adapter_settings;
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::Auth;
use freeway_plugin_sdk::types::Error;

pub(crate) const DEFAULT_PATH: &str = "/chat/completions";
pub(crate) const DEFAULT_EMBEDDINGS_PATH: &str = "/embeddings";

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub path: String,
    pub embeddings_path: String,
    /// Static headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub auth: Auth,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            path: DEFAULT_PATH.to_owned(),
            embeddings_path: DEFAULT_EMBEDDINGS_PATH.to_owned(),
            headers: Vec::new(),
            auth: Auth::Bearer,
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
        let invalid =
            |problem: String| invalid_adapter_settings("openai-compatible", provider, problem);
        let object: Map<String, Value> = match serde_json::from_str(json) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(invalid("settings must be a JSON object".into())),
            Err(parse_error) => return Err(invalid(format!("not valid JSON: {parse_error}"))),
        };
        let mut settings = Self::default();
        for (key, value) in object {
            match key.as_str() {
                "path" => settings.path = parse_path("path", value).map_err(invalid)?,
                "embeddings_path" => {
                    settings.embeddings_path =
                        parse_path("embeddings_path", value).map_err(invalid)?
                }
                "auth" => settings.auth = parse_auth(value).map_err(invalid)?,
                "headers" => settings.headers = parse_headers(value).map_err(invalid)?,
                other => {
                    return Err(invalid(format!(
                        "unknown setting `{other}` (expected `path`, `embeddings_path`, `auth` or `headers`)"
                    )));
                }
            }
        }
        Ok(settings)
    }
}

fn parse_path(key: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(path) if path.starts_with('/') => Ok(path),
        Value::String(path) => Err(format!("`{key}` must start with \"/\", got {path:?}")),
        _ => Err(format!("`{key}` must be a string")),
    }
}

fn parse_auth(value: Value) -> Result<Auth, String> {
    const EXPECTED: &str =
        "`auth` must be \"bearer\", \"none\", {\"header\": \"<name>\"} or {\"query\": \"<name>\"}";
    match value {
        Value::String(mode) => match mode.as_str() {
            "bearer" => Ok(Auth::Bearer),
            "none" => Ok(Auth::None),
            _ => Err(format!("{EXPECTED}, got {mode:?}")),
        },
        Value::Object(object) if object.len() == 1 => {
            let Some((kind, Value::String(name))) = object.into_iter().next() else {
                return Err(EXPECTED.into());
            };
            match kind.as_str() {
                "header" if is_header_name(&name) => Ok(Auth::Header(name.to_ascii_lowercase())),
                "header" => Err(format!(
                    "`auth.header` is not a valid header name: {name:?}"
                )),
                "query" if !name.is_empty() => Ok(Auth::Query(name)),
                _ => Err(EXPECTED.into()),
            }
        }
        _ => Err(EXPECTED.into()),
    }
}

fn parse_headers(value: Value) -> Result<Vec<(String, String)>, String> {
    let Value::Object(object) = value else {
        return Err("`headers` must be an object of header names to string values".into());
    };
    object
        .into_iter()
        .map(|(name, value)| {
            if !is_header_name(&name) {
                return Err(format!("`headers` has an invalid header name: {name:?}"));
            }
            match value {
                // CR or LF would let a value start a new header line.
                Value::String(text) if !text.contains(['\r', '\n', '\0']) => {
                    Ok((name.to_ascii_lowercase(), text))
                }
                Value::String(_) => Err(format!(
                    "`headers.{name}` contains a line break or NUL character"
                )),
                _ => Err(format!("`headers.{name}` must be a string")),
            }
        })
        .collect()
}

/// An RFC 9110 token: what a header name may consist of.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::types::ErrorKind;

    fn parse(json: &str) -> Result<Settings, Error> {
        Settings::parse("test", json)
    }

    #[test]
    fn empty_settings_mean_openai_defaults() {
        for json in ["", "{}", " { } "] {
            let settings = parse(json).expect("valid");
            assert!(settings.headers.is_empty());
            assert_eq!(settings.path, "/chat/completions");
            assert!(matches!(settings.auth, Auth::Bearer));
        }
    }

    #[test]
    fn every_auth_form() {
        let auth = |json: &str| parse(json).expect("valid").auth;
        assert!(matches!(auth(r#"{"auth":"bearer"}"#), Auth::Bearer));
        assert!(matches!(auth(r#"{"auth":"none"}"#), Auth::None));
        assert!(
            matches!(auth(r#"{"auth":{"header":"Api-Key"}}"#), Auth::Header(name) if name == "api-key")
        );
        assert!(matches!(auth(r#"{"auth":{"query":"key"}}"#), Auth::Query(name) if name == "key"));
    }

    #[test]
    fn path_and_headers() {
        let settings = parse(
            r#"{"path":"/openai/deployments/x/chat/completions","headers":{"HTTP-Referer":"https://freeway.dev","X-Title":"Freeway"}}"#,
        )
        .expect("valid");
        assert_eq!(settings.path, "/openai/deployments/x/chat/completions");
        assert_eq!(
            settings.headers,
            vec![
                ("http-referer".to_owned(), "https://freeway.dev".to_owned()),
                ("x-title".to_owned(), "Freeway".to_owned()),
            ]
        );
    }

    #[test]
    fn mistakes_are_named() {
        let message = |json: &str| parse(json).expect_err("invalid").message;
        assert!(message(r#"{"heders":{}}"#).contains("unknown setting `heders`"));
        assert!(message(r#"{"auth":"Bearer"}"#).contains("`auth` must be"));
        assert!(message(r#"{"auth":{"header":"bad name"}}"#).contains("not a valid header name"));
        assert!(message(r#"{"auth":{"cookie":"k"}}"#).contains("`auth` must be"));
        assert!(message(r#"{"path":"chat"}"#).contains("must start with"));
        assert!(message(r#"{"headers":{"x-a":"1\r\nx-b: 2"}}"#).contains("line break"));
        assert!(message(r#"{"headers":{"x-a":1}}"#).contains("must be a string"));
        assert!(message("[]").contains("must be a JSON object"));
        assert!(message("{").contains("not valid JSON"));
        let error = parse("{").expect_err("invalid");
        assert_eq!(error.kind, ErrorKind::Internal);
        assert!(error.message.contains("provider `test`"));
    }
}
