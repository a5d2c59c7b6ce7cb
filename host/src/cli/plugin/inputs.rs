//! Reading a case's `input` into the contract's records. Every field a plugin author would not
//! care about has a default: a target aims at `http://upstream.test/v1` with model
//! `test-model`, a candidate is healthy and idle with price 0, settings are `{}`.

use anyhow::{Context, bail};
use serde_json::{Map, Value};

use crate::plugins::bindings::adapter::Target;
use crate::plugins::bindings::{guard, policy};

/// A JSON input given as a string is used as is; any other JSON value is serialised.
pub fn text(input: &Map<String, Value>, key: &str) -> anyhow::Result<String> {
    match input.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => bail!("input.{key} is required"),
    }
}

pub fn optional_text(input: &Map<String, Value>, key: &str) -> anyhow::Result<Option<String>> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => text(input, key).map(Some),
    }
}

pub fn settings(input: &Map<String, Value>) -> anyhow::Result<String> {
    match input.get("settings") {
        None => Ok("{}".into()),
        Some(Value::Object(_)) | Some(Value::String(_)) => text(input, "settings"),
        Some(_) => bail!("input.settings must be an object"),
    }
}

pub fn string_list(input: &Map<String, Value>, key: &str) -> anyhow::Result<Vec<String>> {
    match input.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Ok(other.to_string()),
            })
            .collect(),
        _ => bail!("input.{key} must be a list"),
    }
}

pub fn target(input: &Map<String, Value>) -> anyhow::Result<Target> {
    let empty = Map::new();
    let t = match input.get("target") {
        Some(Value::Object(t)) => t,
        None => &empty,
        Some(_) => bail!("input.target must be an object"),
    };
    let field = |key: &str, default: &str| -> String {
        t.get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    Ok(Target {
        provider: field("provider", "test"),
        base_url: field("base_url", "http://upstream.test/v1"),
        model: field("model", "test-model"),
        stream: t.get("stream").and_then(Value::as_bool).unwrap_or(false),
        settings: match t.get("settings") {
            None | Some(Value::Null) => "{}".into(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        },
    })
}

/// An upstream answer as a case gives it.
pub struct UpstreamAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// `status` (default 200), `headers` (an object) and `body` (JSON or text) of an upstream answer.
pub fn upstream_answer(input: &Map<String, Value>) -> anyhow::Result<UpstreamAnswer> {
    let status = match input.get("status") {
        None => 200,
        Some(v) => v
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .context("input.status must be an HTTP status")?,
    };
    let headers = match input.get("headers") {
        None => Vec::new(),
        Some(Value::Object(h)) => h
            .iter()
            .map(|(k, v)| {
                let value = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                (k.to_ascii_lowercase(), value)
            })
            .collect(),
        Some(_) => bail!("input.headers must be an object of name: value"),
    };
    let body = match input.get("body") {
        None => Vec::new(),
        Some(_) => text(input, "body")?.into_bytes(),
    };
    Ok(UpstreamAnswer {
        status,
        headers,
        body,
    })
}

fn object<'a>(value: Option<&'a Value>, what: &str) -> anyhow::Result<&'a Map<String, Value>> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match value {
        None => Ok(EMPTY.get_or_init(Map::new)),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => bail!("{what} must be an object"),
    }
}

fn strings(map: &Map<String, Value>, key: &str) -> Vec<String> {
    map.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn string_pairs(map: &Map<String, Value>, key: &str) -> Vec<(String, String)> {
    map.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn router_request(value: Option<&Value>) -> anyhow::Result<policy::RequestInfo> {
    let r = object(value, "input.request")?;
    let num = |key: &str| r.get(key).and_then(Value::as_u64).map(|n| n as u32);
    let flag = |key: &str| r.get(key).and_then(Value::as_bool).unwrap_or(false);
    Ok(policy::RequestInfo {
        model: r
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("test-model")
            .to_string(),
        prompt_tokens: num("prompt_tokens").unwrap_or(100),
        max_tokens: num("max_tokens"),
        stream: flag("stream"),
        has_tools: flag("has_tools"),
        has_images: flag("has_images"),
        tags: strings(r, "tags"),
        metadata: string_pairs(r, "metadata"),
        session: r.get("session").and_then(Value::as_str).map(str::to_string),
    })
}

/// A candidate from its JSON: `id` defaults to its position; every live-state field has the
/// value of a healthy, idle, unmeasured target.
pub fn candidate(position: u32, value: &Value) -> anyhow::Result<policy::Candidate> {
    let c = object(Some(value), "each of input.candidates")?;
    let u64_of = |key: &str| c.get(key).and_then(Value::as_u64);
    let f64_of = |key: &str| c.get(key).and_then(Value::as_f64);
    Ok(policy::Candidate {
        id: u64_of("id").map_or(position, |id| id as u32),
        provider: c
            .get("provider")
            .and_then(Value::as_str)
            .unwrap_or("provider")
            .to_string(),
        model: c
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("model")
            .to_string(),
        healthy: c.get("healthy").and_then(Value::as_bool).unwrap_or(true),
        cooldown_ms: u64_of("cooldown_ms").unwrap_or(0),
        remaining_requests: u64_of("remaining_requests"),
        remaining_tokens: u64_of("remaining_tokens"),
        quota_used: f64_of("quota_used").map(|f| f as f32),
        in_flight: u64_of("in_flight").unwrap_or(0) as u32,
        latency_ms: f64_of("latency_ms").map(|f| f as f32),
        ttft_ms: f64_of("ttft_ms").map(|f| f as f32),
        error_rate: f64_of("error_rate").unwrap_or(0.0) as f32,
        input_price: f64_of("input_price").unwrap_or(0.0),
        output_price: f64_of("output_price").unwrap_or(0.0),
        context_window: u64_of("context_window").map(|n| n as u32),
        weight: u64_of("weight").unwrap_or(1) as u32,
        tags: strings(c, "tags"),
    })
}

pub fn filter_info(value: Option<&Value>) -> anyhow::Result<guard::RequestInfo> {
    let i = object(value, "input.info")?;
    Ok(guard::RequestInfo {
        model: i
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("test-model")
            .to_string(),
        tags: strings(i, "tags"),
        metadata: string_pairs(i, "metadata"),
    })
}
