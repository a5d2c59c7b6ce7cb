//! The `embedder` export: `POST /v1/embeddings` to an OpenAI-compatible upstream.
//!
//! The canonical request already is OpenAI's embeddings body, so building it only sets the
//! upstream model id and asks for floats (the host encodes `base64` for clients that want it,
//! whatever the upstream supports: several compatible servers ignore `encoding_format`). An
//! answer is checked for the shape the host relies on — a `data` array of float vectors — and
//! passed on as the same text; errors are read like chat errors.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use freeway_plugin_sdk::embedder::exports::freeway::plugin::embedder::{
    EmbeddingAuth, EmbeddingHttpRequest, EmbeddingTarget, Embeddings,
};
use freeway_plugin_sdk::http::{error, invalid_response};
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::Auth;
use freeway_plugin_sdk::types::{Error, ErrorKind};
use freeway_plugin_sdk::upstream;

use crate::json::starts_as_object;
use crate::response::{classify, error_from_body_value, read_error_body, read_usage};
use crate::settings::Settings;

pub(crate) fn build_request(
    target: &EmbeddingTarget,
    request: &str,
) -> Result<EmbeddingHttpRequest, Error> {
    let settings = Settings::parse(&target.provider, &target.settings)?;
    let mut object: Map<String, Value> = match serde_json::from_str(request) {
        Ok(Value::Object(object)) => object,
        _ => {
            return Err(error(
                ErrorKind::BadRequest,
                false,
                "the embeddings request body is not a JSON object",
            ));
        }
    };
    object.insert("model".into(), Value::String(target.model.clone()));
    object.insert("encoding_format".into(), Value::String("float".into()));
    let body = serde_json::to_vec(&object).map_err(|e| {
        error(
            ErrorKind::Internal,
            false,
            format!("cannot write the request: {e}"),
        )
    })?;
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("accept".to_owned(), "application/json".to_owned()),
    ];
    for (name, value) in settings.headers {
        match headers.iter_mut().find(|(existing, _)| *existing == name) {
            Some(existing) => existing.1 = value,
            None => headers.push((name, value)),
        }
    }
    Ok(EmbeddingHttpRequest {
        method: "POST".to_owned(),
        url: format!(
            "{}{}",
            target.base_url.trim_end_matches('/'),
            settings.embeddings_path
        ),
        headers,
        body,
        auth: match settings.auth {
            Auth::None => EmbeddingAuth::None,
            Auth::Bearer => EmbeddingAuth::Bearer,
            Auth::Header(name) => EmbeddingAuth::Header(name),
            Auth::Query(name) => EmbeddingAuth::Query(name),
        },
    })
}

/// The parts of an embeddings answer the adapter checks; the vectors stay unparsed text
/// except for their first character.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    data: Option<Vec<Item<'a>>>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow)]
    embedding: &'a RawValue,
}

pub(crate) fn parse_response(
    status: u16,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Embeddings, Error> {
    if !(200..300).contains(&status) {
        let failure = classify(Some(status), read_error_body(&body));
        return Err(upstream::with_retry_after(failure, headers));
    }
    let body = String::from_utf8(body)
        .map_err(|_| invalid_response("the upstream answer is not valid UTF-8"))?;
    if !starts_as_object(&body) {
        return Err(invalid_response("the upstream answer is not a JSON object"));
    }
    let envelope: Envelope = serde_json::from_str(&body).map_err(|parse_error| {
        invalid_response(format!(
            "the upstream embeddings answer is not what OpenAI's API sends ({parse_error})"
        ))
    })?;
    let Some(data) = envelope.data else {
        if envelope.error.is_some() {
            return Err(error_from_body_value(&body));
        }
        return Err(invalid_response("the upstream answer has no \"data\""));
    };
    if let Some(at) = data
        .iter()
        .position(|item| !item.embedding.get().starts_with('['))
    {
        return Err(invalid_response(format!(
            "the upstream answer's data[{at}].embedding is not an array of floats"
        )));
    }
    let usage = envelope.usage.and_then(read_usage);
    Ok(Embeddings { body, usage })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> EmbeddingTarget {
        EmbeddingTarget {
            provider: "openai".into(),
            base_url: "https://api.openai.com/v1/".into(),
            model: "text-embedding-3-small".into(),
            settings: "{}".into(),
        }
    }

    #[test]
    fn request_names_the_upstream_model_and_asks_for_floats() {
        let built = build_request(
            &target(),
            r#"{"model":"embed","input":["a","b"],"dimensions":256,"encoding_format":"base64"}"#,
        )
        .expect("built");
        assert_eq!(built.url, "https://api.openai.com/v1/embeddings");
        let body: Value = serde_json::from_slice(&built.body).expect("json");
        assert_eq!(body["model"], "text-embedding-3-small");
        assert_eq!(body["encoding_format"], "float");
        assert_eq!(body["dimensions"], 256);
        assert_eq!(body["input"], serde_json::json!(["a", "b"]));
        assert!(matches!(built.auth, EmbeddingAuth::Bearer));
    }

    #[test]
    fn answers_pass_through_with_their_usage() {
        let body = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1.0]}],"model":"m","usage":{"prompt_tokens":3,"total_tokens":3}}"#;
        let parsed = parse_response(200, &[], body.as_bytes().to_vec()).expect("parsed");
        assert_eq!(parsed.body, body);
        assert_eq!(parsed.usage.map(|u| u.prompt_tokens), Some(3));
    }

    #[test]
    fn base64_or_missing_vectors_are_invalid_answers() {
        let base64 = r#"{"data":[{"embedding":"AAAAPw=="}]}"#;
        let error = parse_response(200, &[], base64.as_bytes().to_vec()).expect_err("base64");
        assert_eq!(error.kind, ErrorKind::InvalidResponse);
        let error = parse_response(200, &[], b"{}".to_vec()).expect_err("empty");
        assert_eq!(error.kind, ErrorKind::InvalidResponse);
    }

    #[test]
    fn upstream_errors_are_typed() {
        let body = r#"{"error":{"message":"This model does not support specifying dimensions.","type":"invalid_request_error","param":null,"code":null}}"#;
        let error = parse_response(400, &[], body.as_bytes().to_vec()).expect_err("400");
        assert_eq!(error.kind, ErrorKind::BadRequest);
        assert!(error.message.contains("dimensions"), "{}", error.message);
        let error = parse_response(429, &[("retry-after".into(), "2".into())], b"{}".to_vec())
            .expect_err("429");
        assert_eq!(error.kind, ErrorKind::RateLimited);
        assert_eq!(error.retry_after_ms, Some(2000));
    }
}
