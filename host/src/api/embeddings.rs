//! `POST /v1/embeddings`: OpenAI's embeddings dialect. The canonical embeddings request is
//! this dialect's body without `encoding_format`: adapters always return vectors as JSON
//! floats, and this file encodes them as `base64` (little-endian float32, what OpenAI sends)
//! for clients that ask — the official SDKs ask by default — whatever the upstream supports.
//! Embeddings never stream; errors have OpenAI's shape.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hyper::Response;
use serde_json::Value;

use crate::error::GatewayError;
use crate::http::ResponseBody;
use crate::pipeline::embeddings::inspect_embeddings_request;

use super::openai::error_response;
use super::{Canonical, Dialect};

/// The embeddings dialect; one value serves one request and remembers its encoding.
#[derive(Default)]
pub struct Embeddings {
    base64: bool,
}

impl Dialect for Embeddings {
    const STREAM_CONTENT_TYPE: &'static str = "application/json";

    fn decode(&mut self, body: Bytes) -> Result<Canonical, GatewayError> {
        let mut object = match serde_json::from_slice(&body) {
            Ok(Value::Object(object)) => object,
            Ok(_) => {
                return Err(GatewayError::invalid_json(
                    "the request body must be a JSON object",
                ));
            }
            Err(e) => {
                return Err(GatewayError::invalid_json(format!(
                    "the request body is not valid JSON: {e}"
                )));
            }
        };
        self.base64 = match object.remove("encoding_format") {
            None | Some(Value::Null) => false,
            Some(Value::String(format)) if format == "float" => false,
            Some(Value::String(format)) if format == "base64" => true,
            Some(other) => {
                return Err(GatewayError::invalid(
                    "encoding_format",
                    format!("`encoding_format` must be \"float\" or \"base64\", got {other}"),
                ));
            }
        };
        if object
            .get("stream")
            .is_some_and(|s| s != &Value::Bool(false))
        {
            return Err(GatewayError::invalid(
                "stream",
                "embeddings are not streamed; leave `stream` out",
            ));
        }
        object.remove("stream");
        let info = inspect_embeddings_request(&object)?;
        Ok(Canonical {
            body: Bytes::from(Value::Object(object).to_string()),
            info,
        })
    }

    fn encode_answer(&self, body: String) -> Bytes {
        if !self.base64 {
            return Bytes::from(body);
        }
        match as_base64(&body) {
            Some(encoded) => Bytes::from(encoded),
            None => Bytes::from(body),
        }
    }

    fn encode_chunk(&mut self, _chunk: String) -> Bytes {
        Bytes::new()
    }

    fn encode_end(&mut self) -> Option<Bytes> {
        None
    }

    fn encode_stream_error(&mut self, _error: &GatewayError) -> Bytes {
        Bytes::new()
    }

    fn encode_error(&self, error: &GatewayError, request_id: &str) -> Response<ResponseBody> {
        error_response(error, request_id)
    }
}

/// The answer with every `data[].embedding` float array as base64 of its little-endian
/// float32 values; `None` when the answer is not the shape adapters promise.
fn as_base64(body: &str) -> Option<String> {
    let mut answer: Value = serde_json::from_str(body).ok()?;
    for item in answer.get_mut("data")?.as_array_mut()? {
        let embedding = item.get_mut("embedding")?;
        let Value::Array(values) = embedding else {
            continue;
        };
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for value in values.iter() {
            bytes.extend_from_slice(&(value.as_f64()? as f32).to_le_bytes());
        }
        *embedding = Value::String(STANDARD.encode(bytes));
    }
    Some(answer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_format_is_the_dialects_and_base64_is_float32_le() {
        let mut dialect = Embeddings::default();
        let canonical = dialect
            .decode(Bytes::from_static(
                br#"{"model":"e","input":"hi","encoding_format":"base64"}"#,
            ))
            .expect("valid");
        assert!(!String::from_utf8_lossy(&canonical.body).contains("encoding_format"));
        let answer = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1.0,-2.5]}],"usage":{"prompt_tokens":1,"total_tokens":1}}"#;
        let encoded: Value =
            serde_json::from_slice(&dialect.encode_answer(answer.into())).expect("json");
        let bytes = STANDARD
            .decode(encoded["data"][0]["embedding"].as_str().expect("string"))
            .expect("base64");
        assert_eq!(
            bytes,
            [1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat()
        );
        assert_eq!(encoded["usage"]["prompt_tokens"], 1);

        let mut float = Embeddings::default();
        float
            .decode(Bytes::from_static(br#"{"model":"e","input":"hi"}"#))
            .expect("valid");
        assert_eq!(float.encode_answer(answer.into()), Bytes::from(answer));
    }

    #[test]
    fn refuses_unknown_encodings_and_streams() {
        for (body, param) in [
            (
                r#"{"model":"e","input":"hi","encoding_format":"int8"}"#,
                "encoding_format",
            ),
            (r#"{"model":"e","input":"hi","stream":true}"#, "stream"),
        ] {
            match Embeddings::default().decode(Bytes::from(body)) {
                Err(error) => assert_eq!(error.param(), Some(param)),
                Ok(_) => panic!("{body} was accepted"),
            }
        }
    }
}
