//! What the pipeline does differently for an embeddings request (`POST /v1/embeddings`): it
//! reads the routing facts of OpenAI's embeddings body, and it lets the request filters judge
//! the input text.
//!
//! The canonical embeddings request is OpenAI's embeddings body (`model`, `input`,
//! `dimensions`, `user`; `encoding_format` is the dialect's business and never reaches an
//! adapter). Everything else — resolution, the router, failover, limits, the ledger — is the
//! chat path, with the adapter's optional `embedder` export in place of `build-request`.
//!
//! Filters speak chat (`on-request` reads `messages`), so they see the input as a chat body
//! with one user message per input, and a rewrite is mapped back input by input. Token-array
//! inputs cannot be read: with filters on the route they are refused rather than forwarded
//! unfiltered (filters fail closed).

use serde_json::{Map, Value, json};

use crate::error::GatewayError;

use super::Snapshot;
use super::canonical::{ChatRequestInfo, Operation, required_model};
use super::context::RequestContext;
use super::filters::{self, ActiveFilter};

/// The most inputs one request may hold (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// The input of an embeddings request, as far as the gateway reads it.
enum Input<'a> {
    /// One string or a list of strings.
    Texts { texts: Vec<&'a str>, list: bool },
    /// Token ids (one array, or a list of arrays): counted, never read.
    Tokens { tokens: usize, inputs: usize },
}

/// Validate an embeddings body (the dialect took `encoding_format` out) and read what
/// routing needs. Errors name the field, as OpenAI's do.
pub fn inspect_embeddings_request(
    object: &Map<String, Value>,
) -> Result<ChatRequestInfo, GatewayError> {
    let model = required_model(object)?;
    let (inputs, prompt_tokens) = match read_input(object)? {
        Input::Texts { texts, .. } => (
            texts.len(),
            texts.iter().map(|t| t.len().div_ceil(4)).sum::<usize>(),
        ),
        Input::Tokens { tokens, inputs } => (inputs, tokens),
    };
    match object.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {}
        Some(_) => {
            return Err(GatewayError::invalid(
                "dimensions",
                "`dimensions` must be a positive integer",
            ));
        }
    }
    let user = match object.get("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(user)) => Some(user.clone()),
        Some(_) => return Err(GatewayError::invalid("user", "`user` must be a string")),
    };
    Ok(ChatRequestInfo {
        model,
        operation: Operation::Embeddings,
        prompt_tokens: u32::try_from(prompt_tokens).unwrap_or(u32::MAX),
        messages: inputs,
        user,
        ..ChatRequestInfo::default()
    })
}

fn read_input(object: &Map<String, Value>) -> Result<Input<'_>, GatewayError> {
    let invalid = |message: &str| GatewayError::invalid("input", message);
    let shape = "`input` must be a string, an array of strings, an array of token ids or an \
                 array of token-id arrays";
    match object.get("input") {
        None | Some(Value::Null) => Err(GatewayError::missing("input")),
        Some(Value::String(text)) if text.is_empty() => {
            Err(invalid("`input` must not be an empty string"))
        }
        Some(Value::String(text)) => Ok(Input::Texts {
            texts: vec![text],
            list: false,
        }),
        Some(Value::Array(items)) if items.is_empty() => {
            Err(invalid("`input` must not be an empty array"))
        }
        Some(Value::Array(items)) if items.len() > MAX_INPUTS => Err(invalid(&format!(
            "`input` holds {} items; at most {MAX_INPUTS} are allowed",
            items.len()
        ))),
        Some(Value::Array(items)) => match &items[0] {
            Value::String(_) => {
                let mut texts = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some("") => {
                            return Err(GatewayError::invalid(
                                format!("input[{i}]"),
                                format!("`input[{i}]` must not be an empty string"),
                            ));
                        }
                        Some(text) => texts.push(text),
                        None => return Err(invalid(shape)),
                    }
                }
                Ok(Input::Texts { texts, list: true })
            }
            Value::Number(_) if items.iter().all(is_token) => Ok(Input::Tokens {
                tokens: items.len(),
                inputs: 1,
            }),
            Value::Array(_) => {
                let mut tokens = 0;
                for item in items {
                    match item.as_array() {
                        Some(ids) if !ids.is_empty() && ids.iter().all(is_token) => {
                            tokens += ids.len()
                        }
                        _ => return Err(invalid(shape)),
                    }
                }
                Ok(Input::Tokens {
                    tokens,
                    inputs: items.len(),
                })
            }
            _ => Err(invalid(shape)),
        },
        Some(_) => Err(invalid(shape)),
    }
}

fn is_token(value: &Value) -> bool {
    value.as_u64().is_some_and(|id| id <= u64::from(u32::MAX))
}

/// Run the route's request filters over the input text: they see a chat body with one user
/// message per input; a rewrite is written back into `input`, a block refuses the request.
pub(super) async fn filter_input(
    snapshot: &Snapshot,
    names: &[&str],
    ctx: &mut RequestContext,
    body: &mut String,
) -> Result<Vec<ActiveFilter>, GatewayError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut object = match serde_json::from_str(body) {
        Ok(Value::Object(object)) => object,
        _ => {
            return Err(GatewayError::invalid_json(
                "the request body is not an object",
            ));
        }
    };
    let (texts, list) = match read_input(&object)? {
        Input::Texts { texts, list } => (texts, list),
        Input::Tokens { .. } => {
            return Err(GatewayError::UnsupportedRequest {
                message: format!(
                    "model '{}' has request filters, which cannot read token-id input; send \
                     the input as text",
                    ctx.info.model
                ),
            });
        }
    };
    let messages: Vec<Value> = texts
        .iter()
        .map(|text| json!({"role": "user", "content": text}))
        .collect();
    let view = json!({"model": ctx.info.model, "messages": messages}).to_string();
    let mut filtered = view.clone();
    let info = ctx.info.clone();
    let active = filters::on_request(snapshot, names, ctx, &mut filtered).await;
    // A rewrite re-reads the view as a chat request; this request stays an embeddings one.
    let rewritten_info = std::mem::replace(&mut ctx.info, info);
    let active = active?;
    if filtered == view {
        return Ok(active);
    }
    let rewritten = texts_of(&filtered, texts.len()).ok_or_else(|| {
        GatewayError::plugin(format!(
            "a filter rewrote the input of an embeddings request into something other than {} \
             user messages with text content",
            texts.len()
        ))
    })?;
    ctx.info.prompt_tokens = rewritten_info.prompt_tokens.max(1);
    let input = if list {
        Value::Array(rewritten.into_iter().map(Value::String).collect())
    } else {
        rewritten
            .into_iter()
            .next()
            .map_or(Value::Null, Value::String)
    };
    object.insert("input".into(), input);
    *body = Value::Object(object).to_string();
    Ok(active)
}

/// The text of each message of a rewritten view, when it still has `count` text messages.
fn texts_of(view: &str, count: usize) -> Option<Vec<String>> {
    let value: Value = serde_json::from_str(view).ok()?;
    let messages = value.get("messages")?.as_array()?;
    if messages.len() != count {
        return None;
    }
    messages
        .iter()
        .map(|m| m.get("content")?.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(body: &str) -> Result<ChatRequestInfo, GatewayError> {
        match serde_json::from_str(body) {
            Ok(Value::Object(object)) => inspect_embeddings_request(&object),
            _ => panic!("test bodies are objects"),
        }
    }

    #[test]
    fn reads_inputs_and_estimates_tokens() {
        let info = inspect(r#"{"model":"e","input":["abcdefgh","abcd"],"user":"u"}"#).expect("ok");
        assert_eq!(info.operation, Operation::Embeddings);
        assert_eq!((info.messages, info.prompt_tokens), (2, 3));
        assert_eq!(info.user.as_deref(), Some("u"));
        let tokens = inspect(r#"{"model":"e","input":[[1,2,3],[4]]}"#).expect("tokens");
        assert_eq!((tokens.messages, tokens.prompt_tokens), (2, 4));
        let one = inspect(r#"{"model":"e","input":[5,6]}"#).expect("one token array");
        assert_eq!((one.messages, one.prompt_tokens), (1, 2));
    }

    #[test]
    fn refuses_what_openai_refuses_naming_the_field() {
        let cases = [
            (r#"{"input":"x"}"#, "model"),
            (r#"{"model":"e"}"#, "input"),
            (r#"{"model":"e","input":""}"#, "input"),
            (r#"{"model":"e","input":[]}"#, "input"),
            (r#"{"model":"e","input":["a",""]}"#, "input[1]"),
            (r#"{"model":"e","input":["a",1]}"#, "input"),
            (r#"{"model":"e","input":[[1],[]]}"#, "input"),
            (r#"{"model":"e","input":{"text":"a"}}"#, "input"),
            (r#"{"model":"e","input":"a","dimensions":0}"#, "dimensions"),
            (r#"{"model":"e","input":"a","user":7}"#, "user"),
        ];
        for (body, param) in cases {
            let error = inspect(body).expect_err(body);
            assert_eq!(error.status(), hyper::StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(error.param(), Some(param), "{body}: {error}");
        }
        let many = format!(
            r#"{{"model":"e","input":[{}]}}"#,
            vec!["\"a\""; MAX_INPUTS + 1].join(",")
        );
        assert!(
            inspect(&many)
                .expect_err("too many")
                .to_string()
                .contains("2048")
        );
    }

    #[test]
    fn a_rewritten_view_maps_back_only_when_it_keeps_its_messages() {
        let view = r#"{"model":"m","messages":[{"role":"user","content":"[EMAIL_1]"},{"role":"user","content":"b"}]}"#;
        assert_eq!(
            texts_of(view, 2),
            Some(vec!["[EMAIL_1]".to_string(), "b".to_string()])
        );
        assert_eq!(texts_of(view, 1), None);
        let parts = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}"#;
        assert_eq!(texts_of(parts, 1), None);
    }
}
