//! {{name}}: a Freeway filter that blocks requests whose text contains a keyword.
//!
//! The check is case-insensitive and reads the whole request body (messages, tools, ...).
//! Answers and streams pass unchanged.

wit_bindgen::generate!({ path: "wit", world: "filter" });

use exports::freeway::plugin::guard::{
    ChunkVerdict, Guest as Guard, GuestStreamFilter, RequestInfo, RequestOutcome, RequestVerdict,
    ResponseVerdict,
};
use freeway::plugin::types::{Error, ErrorKind, PluginKind};

/// Requests containing this word are refused with a 400 naming it.
const BLOCKED: &str = "forbidden";

struct Plugin;

impl Guest for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "{{name}}".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Filter,
            description: format!("blocks requests containing \"{BLOCKED}\""),
        }
    }

    fn check_settings(settings: String) -> Result<(), String> {
        no_settings(&settings)
    }
}

impl Guard for Plugin {
    type StreamFilter = PassThrough;

    fn on_request(
        _info: RequestInfo,
        body: String,
        settings: String,
    ) -> Result<RequestOutcome, Error> {
        no_settings(&settings).map_err(internal)?;
        Ok(RequestOutcome {
            verdict: verdict(&body),
            tags: vec![],
            state: None,
        })
    }

    fn on_response(
        _info: RequestInfo,
        _state: Option<String>,
        _body: String,
        _settings: String,
    ) -> Result<ResponseVerdict, Error> {
        Ok(ResponseVerdict::Allow)
    }
}

/// Streams pass unchanged.
pub struct PassThrough;

impl GuestStreamFilter for PassThrough {
    fn new(_info: RequestInfo, _state: Option<String>, _settings: String) -> Self {
        PassThrough
    }

    fn on_chunk(&self, _chunk: String) -> Result<ChunkVerdict, Error> {
        Ok(ChunkVerdict::Pass)
    }

    fn finish(&self) -> Result<Vec<String>, Error> {
        Ok(vec![])
    }
}

fn verdict(body: &str) -> RequestVerdict {
    if body.to_lowercase().contains(BLOCKED) {
        RequestVerdict::Block(format!("the request contains the blocked word \"{BLOCKED}\""))
    } else {
        RequestVerdict::Allow
    }
}

/// This filter takes no settings: refuse anything but an empty object.
fn no_settings(settings: &str) -> Result<(), String> {
    match serde_json::from_str::<serde_json::Value>(settings) {
        Ok(serde_json::Value::Object(map)) if map.is_empty() => Ok(()),
        _ if settings.trim().is_empty() => Ok(()),
        _ => Err(format!("{{name}} takes no settings, got {settings}")),
    }
}

fn internal(message: String) -> Error {
    Error {
        kind: ErrorKind::Internal,
        retryable: false,
        message,
        status: None,
        retry_after_ms: None,
        code: None,
        param: None,
    }
}

export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_the_keyword_in_any_case() {
        assert!(matches!(verdict(r#"{"messages":[{"content":"a FORBIDDEN plan"}]}"#), RequestVerdict::Block(_)));
        assert!(matches!(verdict(r#"{"messages":[{"content":"hello"}]}"#), RequestVerdict::Allow));
    }
}
