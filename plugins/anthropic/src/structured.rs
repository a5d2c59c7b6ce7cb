//! What OpenAI asks for in one field and Messages expresses another way: structured output
//! (`response_format`) and reasoning effort (`reasoning_effort`).
//!
//! A JSON answer is asked of Claude through a tool it must call, `freeway_json_response`,
//! whose input schema is the requested schema (`json_object`: any object). The answer side
//! (`response`, `stream`) turns that tool's input back into the message's text, so the client
//! gets the JSON as `content` with `finish_reason: "stop"` — never a tool call it did not ask
//! for. The tool is forced unless the client has tools of its own or thinking is on (Messages
//! refuses a forced tool with thinking); then it is offered beside them.
//!
//! `reasoning_effort` becomes a `thinking` budget (low 1024, medium 4096, high 16384 tokens;
//! `minimal`/`none` leave thinking off) unless the client set `thinking` itself; `max_tokens`
//! is raised above the budget when it is not, and `temperature` / `top_k` (which Messages
//! refuses beside thinking) are left out.

use serde_json::{Map, Value, json};

use freeway_plugin_sdk::openai::request::{ChatRequest, bad_request, unsupported};
use freeway_plugin_sdk::types::Error;

/// The tool that carries a structured answer.
pub(crate) const JSON_TOOL: &str = "freeway_json_response";

/// The thinking budget for a `reasoning_effort`.
fn budget(effort: &str) -> Option<u64> {
    match effort {
        "low" => Some(1024),
        "medium" => Some(4096),
        "high" => Some(16384),
        _ => None,
    }
}

/// Adds thinking for `reasoning_effort` and the JSON tool for `response_format` to `body`.
pub(crate) fn apply(request: &ChatRequest, body: &mut Map<String, Value>) -> Result<(), Error> {
    if !body.contains_key("thinking")
        && let Some(budget) = request
            .get("reasoning_effort")
            .and_then(Value::as_str)
            .and_then(budget)
    {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
        // Messages refuses sampling settings with thinking on (temperature other than 1,
        // top_k); the client asked for reasoning, which takes precedence.
        body.remove("temperature");
        body.remove("top_k");
    }
    if let Some(budget) = body
        .get("thinking")
        .filter(|t| t["type"] == "enabled")
        .and_then(|t| t["budget_tokens"].as_u64())
    {
        let max_tokens = body.get("max_tokens").and_then(Value::as_u64).unwrap_or(0);
        if max_tokens <= budget {
            body.insert("max_tokens".into(), Value::from(budget + max_tokens));
        }
    }
    let Some(schema) = requested_schema(request)? else {
        return Ok(());
    };
    let tool = json!({
        "name": JSON_TOOL,
        "description": "Give your whole answer as this tool's input, in the requested JSON shape.",
        "input_schema": schema,
    });
    let thinking = body.get("thinking").is_some_and(|t| t["type"] == "enabled");
    match body.get_mut("tools").and_then(Value::as_array_mut) {
        Some(tools) => tools.push(tool),
        None => {
            body.insert("tools".into(), json!([tool]));
            let choice = if thinking {
                json!({"type": "auto"})
            } else {
                json!({"type": "tool", "name": JSON_TOOL})
            };
            body.insert("tool_choice".into(), choice);
        }
    }
    Ok(())
}

/// The schema the JSON answer must follow, when `response_format` asks for JSON.
fn requested_schema(request: &ChatRequest) -> Result<Option<Value>, Error> {
    let Some(format) = request.get("response_format").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "object"}))),
        Some("json_schema") => {
            let schema = format
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .filter(|s| s.is_object())
                .ok_or_else(|| {
                    bad_request(
                        "`response_format.json_schema.schema` must be a JSON schema object",
                        Some("response_format".into()),
                    )
                })?;
            if schema.get("type").and_then(Value::as_str) != Some("object") {
                return Err(unsupported(
                    "Anthropic can only be held to a JSON schema whose root is an object",
                    Some("response_format".into()),
                ));
            }
            Ok(Some(schema.clone()))
        }
        _ => Err(bad_request(
            "`response_format.type` must be text, json_object or json_schema",
            Some("response_format".into()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(request: Value, body: Value) -> Value {
        let request = ChatRequest::parse(&request.to_string()).expect("valid");
        let Value::Object(mut body) = body else {
            unreachable!()
        };
        apply(&request, &mut body).expect("applied");
        Value::Object(body)
    }

    #[test]
    fn json_schema_becomes_a_forced_tool() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let body = applied(
            json!({"messages": [], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}),
            json!({"max_tokens": 100}),
        );
        assert_eq!(body["tools"][0]["name"], JSON_TOOL);
        assert_eq!(body["tools"][0]["input_schema"], schema);
        assert_eq!(
            body["tool_choice"],
            json!({"type": "tool", "name": JSON_TOOL})
        );
    }

    #[test]
    fn reasoning_effort_becomes_a_budget_below_max_tokens() {
        let body = applied(
            json!({"messages": [], "reasoning_effort": "medium"}),
            json!({"max_tokens": 1000}),
        );
        assert_eq!(
            body["thinking"],
            json!({"type": "enabled", "budget_tokens": 4096})
        );
        assert_eq!(body["max_tokens"], 5096);
        let body = applied(
            json!({"messages": [], "reasoning_effort": "low"}),
            json!({"max_tokens": 1000, "temperature": 0.2}),
        );
        assert!(body.get("temperature").is_none());
        let body = applied(
            json!({"messages": [], "reasoning_effort": "minimal"}),
            json!({"max_tokens": 1000}),
        );
        assert!(body.get("thinking").is_none());
    }
}
