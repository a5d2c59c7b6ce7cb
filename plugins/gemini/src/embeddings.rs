//! The `embedder` export: OpenAI's embeddings request to Gemini and back.
//!
//! One string is `POST {base}/models/{model}:embedContent` (`{"content":{"parts":[{"text"}]}}`),
//! a list is one `:batchEmbedContents` call (`{"requests":[{"model","content"}, ...]}`, each
//! request naming the model of the URL, as Gemini requires). `dimensions` becomes
//! `outputDimensionality`. What Gemini cannot take is refused as unsupported before any call,
//! so another target may serve it: token-id input (Gemini reads text only) and lists over
//! Gemini's 100 requests per batch. Answers (`embedding.values` / `embeddings[].values`)
//! become OpenAI's `list` of `embedding`s; Gemini does not always count tokens, so usage is
//! its `usageMetadata.promptTokenCount` when present and left to the host otherwise.

use serde_json::{Map, Value, json};

use freeway_plugin_sdk::embedder::exports::freeway::plugin::embedder::{
    EmbeddingAuth, EmbeddingHttpRequest, EmbeddingTarget, Embeddings,
};
use freeway_plugin_sdk::http::{error, invalid_response};
use freeway_plugin_sdk::openai::request::{bad_request, unsupported};
use freeway_plugin_sdk::types::{Error, ErrorKind, Usage};
use freeway_plugin_sdk::upstream;

use crate::errors::{classify, read_error_body};
use crate::request::model_path;

/// Gemini's limit on requests in one `batchEmbedContents` call.
pub(crate) const MAX_BATCH: usize = 100;

pub(crate) fn build_request(
    target: &EmbeddingTarget,
    request: &str,
) -> Result<EmbeddingHttpRequest, Error> {
    let model = model_path(&target.model)?;
    let Ok(Value::Object(request)) = serde_json::from_str::<Value>(request) else {
        return Err(bad_request(
            "the embeddings request body is not a JSON object",
            None,
        ));
    };
    let (texts, list) = texts(&request)?;
    let dimensions = request.get("dimensions").and_then(Value::as_u64);
    let embed = |text: &str| {
        let mut one = Map::new();
        one.insert("model".into(), Value::String(model.clone()));
        one.insert("content".into(), json!({"parts": [{"text": text}]}));
        if let Some(dimensions) = dimensions {
            one.insert("outputDimensionality".into(), dimensions.into());
        }
        Value::Object(one)
    };
    let base = target.base_url.trim_end_matches('/');
    let (url, body) = if list {
        let requests: Vec<Value> = texts.iter().map(|text| embed(text)).collect();
        (
            format!("{base}/{model}:batchEmbedContents"),
            json!({ "requests": requests }),
        )
    } else {
        (format!("{base}/{model}:embedContent"), embed(texts[0]))
    };
    let body = serde_json::to_vec(&body).map_err(|e| {
        error(
            ErrorKind::Internal,
            false,
            format!("could not write the Gemini request: {e}"),
        )
    })?;
    Ok(EmbeddingHttpRequest {
        method: "POST".to_owned(),
        url,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("accept".to_owned(), "application/json".to_owned()),
        ],
        body,
        auth: EmbeddingAuth::Header("x-goog-api-key".to_owned()),
    })
}

/// The input texts, and whether they came as a list.
fn texts(request: &Map<String, Value>) -> Result<(Vec<&str>, bool), Error> {
    let tokens = || {
        unsupported(
            "Gemini embeds text only; token-id input cannot be sent to it",
            Some("input".into()),
        )
    };
    match request.get("input") {
        Some(Value::String(text)) => Ok((vec![text.as_str()], false)),
        Some(Value::Array(items)) if items.len() > MAX_BATCH => Err(unsupported(
            format!(
                "Gemini embeds at most {MAX_BATCH} inputs per request; this one has {}",
                items.len()
            ),
            Some("input".into()),
        )),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.as_str()),
                Value::Number(_) | Value::Array(_) => Err(tokens()),
                _ => Err(bad_request(
                    "`input` must be a string or an array of strings",
                    Some("input".into()),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| (texts, true)),
        _ => Err(bad_request(
            "`input` must be a string or an array of strings",
            Some("input".into()),
        )),
    }
}

pub(crate) fn parse_response(
    target: &EmbeddingTarget,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Embeddings, Error> {
    if !(200..300).contains(&status) {
        let failure = classify(Some(status), read_error_body(body));
        return Err(upstream::with_retry_after(failure, headers));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid_response(format!("Gemini's answer is not valid JSON ({e})")))?;
    let vectors: Vec<&Value> = match (value.get("embedding"), value.get("embeddings")) {
        (Some(one), None) => vec![values(one, "embedding")?],
        (None, Some(Value::Array(many))) => many
            .iter()
            .enumerate()
            .map(|(i, one)| values(one, &format!("embeddings[{i}]")))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid_response(
                "Gemini's answer has neither \"embedding\" nor an \"embeddings\" array",
            ));
        }
    };
    let prompt_tokens = value
        .pointer("/usageMetadata/promptTokenCount")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok());
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| json!({"object": "embedding", "index": index, "embedding": vector}))
        .collect();
    let mut answer = json!({"object": "list", "data": data, "model": target.model});
    if let Some(tokens) = prompt_tokens {
        answer["usage"] = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    }
    Ok(Embeddings {
        body: answer.to_string(),
        usage: prompt_tokens.map(|prompt_tokens| Usage {
            prompt_tokens,
            completion_tokens: 0,
        }),
    })
}

/// The `values` array of one `ContentEmbedding`.
fn values<'a>(embedding: &'a Value, at: &str) -> Result<&'a Value, Error> {
    match embedding.get("values") {
        Some(values @ Value::Array(_)) => Ok(values),
        _ => Err(invalid_response(format!(
            "Gemini's answer has no \"values\" array in {at}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> EmbeddingTarget {
        EmbeddingTarget {
            provider: "gemini".into(),
            base_url: "https://generativelanguage.googleapis.com/v1beta".into(),
            model: "gemini-embedding-001".into(),
            settings: "{}".into(),
        }
    }

    fn body(request: &EmbeddingHttpRequest) -> Value {
        serde_json::from_slice(&request.body).expect("json")
    }

    #[test]
    fn one_string_is_embed_content_with_its_dimensions() {
        let built = build_request(
            &target(),
            r#"{"model":"e","input":"hello","dimensions":768}"#,
        )
        .expect("built");
        assert_eq!(
            built.url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:embedContent"
        );
        assert_eq!(
            body(&built),
            json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 768})
        );
        assert!(matches!(&built.auth, EmbeddingAuth::Header(name) if name == "x-goog-api-key"));
    }

    #[test]
    fn a_list_is_one_batch_naming_the_model_in_each_request() {
        let built = build_request(&target(), r#"{"model":"e","input":["a","b"]}"#).expect("built");
        assert!(
            built
                .url
                .ends_with("models/gemini-embedding-001:batchEmbedContents")
        );
        let requests = body(&built)["requests"].clone();
        assert_eq!(requests.as_array().map(Vec::len), Some(2));
        assert_eq!(requests[1]["model"], "models/gemini-embedding-001");
        assert_eq!(requests[1]["content"]["parts"][0]["text"], "b");
    }

    #[test]
    fn tokens_and_oversized_batches_are_unsupported_here() {
        for input in [
            "[[1,2],[3]]",
            "[1,2,3]",
            &format!("[{}]", vec!["\"a\""; 101].join(",")),
        ] {
            let request = format!(r#"{{"model":"e","input":{input}}}"#);
            let failure = build_request(&target(), &request).expect_err("refused");
            assert_eq!(failure.kind, ErrorKind::Unsupported, "{input}");
            assert!(failure.retryable);
        }
    }

    #[test]
    fn answers_become_openai_lists() {
        let batch = br#"{"embeddings":[{"values":[0.1,0.2]},{"values":[0.3,0.4]}]}"#;
        let parsed = parse_response(&target(), 200, &[], batch).expect("parsed");
        let answer: Value = serde_json::from_str(&parsed.body).expect("json");
        assert_eq!(answer["object"], "list");
        assert_eq!(answer["data"][1]["index"], 1);
        assert_eq!(answer["data"][1]["embedding"], json!([0.3, 0.4]));
        assert_eq!(answer["model"], "gemini-embedding-001");
        assert!(parsed.usage.is_none());

        let one = br#"{"embedding":{"values":[1.5]},"usageMetadata":{"promptTokenCount":4}}"#;
        let parsed = parse_response(&target(), 200, &[], one).expect("parsed");
        assert_eq!(parsed.usage.map(|u| u.prompt_tokens), Some(4));
        let answer: Value = serde_json::from_str(&parsed.body).expect("json");
        assert_eq!(answer["usage"]["total_tokens"], 4);

        let failure = parse_response(&target(), 200, &[], b"{}").expect_err("no vectors");
        assert_eq!(failure.kind, ErrorKind::InvalidResponse);
    }

    #[test]
    fn google_errors_are_typed() {
        let body = br#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}"#;
        let failure = parse_response(&target(), 429, &[], body).expect_err("429");
        assert!(matches!(
            failure.kind,
            ErrorKind::RateLimited | ErrorKind::QuotaExhausted
        ));
    }
}
