//! Language-neutral plugin cases: one call into a plugin described in JSON, its answer turned
//! back into JSON, and the check that an expected answer is part of the actual one. Shared by
//! `freeway plugin test` (golden cases from a folder) and `freeway plugin check` (built-in
//! sample inputs), so both drive plugins through the gateway's own bindings and leases.
//!
//! A case file holds one case or a list of them:
//! `{"name": "...", "call": "build-request", "input": {...}, "expect": {...}}`.
//! `expect` matches when every key it names is in the answer with a matching value (objects
//! recursively; arrays element by element, same length), so a case states only what it cares
//! about. Calls and their JSON are listed in `plugins/README.md` ("Testing with golden cases").

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use crate::plugin_call;
use crate::plugins::bindings::adapter::Auth;
use crate::plugins::bindings::error_kind_name;
use crate::plugins::bindings::guard;
use crate::plugins::bindings::types::{Error, Usage};

use super::inputs::{
    UpstreamAnswer, candidate, filter_info, optional_text, router_request, settings, string_list,
    target, text, upstream_answer,
};
use crate::plugins::{Lease, PluginFault, PluginWorld};

/// One call with its inputs and, for golden cases, the answer it must give.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub call: Call,
    pub input: Map<String, Value>,
    pub expect: Option<Value>,
}

/// The plugin functions a case can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    BuildRequest,
    ParseResponse,
    ReadRateLimits,
    Stream,
    Route,
    OnRequest,
    OnResponse,
    StreamFilter,
}

impl Call {
    const ALL: [(&'static str, Call, PluginWorld); 8] = [
        ("build-request", Call::BuildRequest, PluginWorld::Provider),
        ("parse-response", Call::ParseResponse, PluginWorld::Provider),
        (
            "read-rate-limits",
            Call::ReadRateLimits,
            PluginWorld::Provider,
        ),
        ("stream", Call::Stream, PluginWorld::Provider),
        ("route", Call::Route, PluginWorld::Router),
        ("on-request", Call::OnRequest, PluginWorld::Filter),
        ("on-response", Call::OnResponse, PluginWorld::Filter),
        ("stream-filter", Call::StreamFilter, PluginWorld::Filter),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, call, _)| *call == self)
            .map_or("?", |(name, _, _)| name)
    }

    pub fn world(self) -> PluginWorld {
        Self::ALL
            .iter()
            .find(|(_, call, _)| *call == self)
            .map_or(PluginWorld::Provider, |(_, _, world)| *world)
    }

    fn parse(name: &str) -> anyhow::Result<Call> {
        Self::ALL
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, call, _)| *call)
            .with_context(|| {
                format!(
                    "unknown call '{name}' (one of: {})",
                    Self::ALL.map(|(n, _, _)| n).join(", ")
                )
            })
    }
}

impl Case {
    /// The cases in one file's JSON: an object, or a list of objects.
    pub fn parse_file(text: &str, file: &str) -> anyhow::Result<Vec<Case>> {
        let value: Value =
            serde_json::from_str(text).with_context(|| format!("{file}: not JSON"))?;
        let items = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                Case::from_json(item).with_context(|| format!("{file}: case {}", i + 1))
            })
            .collect()
    }

    fn from_json(value: Value) -> anyhow::Result<Case> {
        let Value::Object(mut fields) = value else {
            bail!("a case is a JSON object");
        };
        let call = match fields.remove("call") {
            Some(Value::String(name)) => Call::parse(&name)?,
            _ => bail!("\"call\" (a string) is required"),
        };
        let name = match fields.remove("name") {
            Some(Value::String(name)) => name,
            None => call.name().to_string(),
            Some(_) => bail!("\"name\" must be a string"),
        };
        let input = match fields.remove("input") {
            Some(Value::Object(input)) => input,
            None => Map::new(),
            Some(_) => bail!("\"input\" must be an object"),
        };
        let expect = fields.remove("expect");
        if let Some(key) = fields.keys().next() {
            bail!("unknown key \"{key}\" (a case has name, call, input, expect)");
        }
        Ok(Case {
            name,
            call,
            input,
            expect,
        })
    }

    /// Run the case on `lease`: the answer as JSON and how long the plugin took.
    pub async fn run(&self, lease: &mut Lease) -> Result<(Value, Duration), CaseFault> {
        let started = Instant::now();
        let answer = self.answer(lease).await?;
        Ok((answer, started.elapsed()))
    }

    async fn answer(&self, lease: &mut Lease) -> Result<Value, CaseFault> {
        let input = &self.input;
        Ok(match self.call {
            Call::BuildRequest => {
                let target = target(input)?;
                let request = text(input, "request")?;
                let built = plugin_call!(*lease, "build-request", |store, b| b
                    .adapter()?
                    .call_build_request(store, &target, &request)
                    .await)?;
                match built {
                    Ok(r) => json!({"ok": {
                        "method": r.method,
                        "url": r.url,
                        "headers": pairs(&r.headers),
                        "body": body_json(&r.body),
                        "auth": match r.auth {
                            Auth::None => json!("none"),
                            Auth::Bearer => json!("bearer"),
                            Auth::Header(name) => json!({"header": name}),
                            Auth::Query(name) => json!({"query": name}),
                        },
                    }}),
                    Err(e) => error_json(&e),
                }
            }
            Call::ParseResponse => {
                let target = target(input)?;
                let UpstreamAnswer {
                    status,
                    headers,
                    body,
                } = upstream_answer(input)?;
                let parsed = plugin_call!(*lease, "parse-response", |store, b| b
                    .adapter()?
                    .call_parse_response(store, &target, status, &headers, &body)
                    .await)?;
                match parsed {
                    Ok(c) => json!({"ok": {
                        "body": body_json(c.body.as_bytes()),
                        "usage": usage_json(c.usage),
                    }}),
                    Err(e) => error_json(&e),
                }
            }
            Call::ReadRateLimits => {
                let UpstreamAnswer {
                    status,
                    headers,
                    body,
                } = upstream_answer(input)?;
                let l = plugin_call!(*lease, "read-rate-limits", |store, b| b
                    .adapter()?
                    .call_read_rate_limits(store, status, &headers, &body)
                    .await)?;
                let fields = [
                    ("retry_after_ms", l.retry_after_ms),
                    ("limit_requests", l.limit_requests),
                    ("remaining_requests", l.remaining_requests),
                    ("reset_requests_ms", l.reset_requests_ms),
                    ("limit_tokens", l.limit_tokens),
                    ("remaining_tokens", l.remaining_tokens),
                    ("reset_tokens_ms", l.reset_tokens_ms),
                ];
                Value::Object(
                    fields
                        .into_iter()
                        .filter_map(|(k, v)| v.map(|v| (k.to_string(), json!(v))))
                        .collect(),
                )
            }
            Call::Stream => self.stream(lease).await?,
            Call::Route => {
                let request = router_request(input.get("request"))?;
                let candidates = match input.get("candidates") {
                    Some(Value::Array(items)) => items
                        .iter()
                        .enumerate()
                        .map(|(i, c)| candidate(i as u32, c))
                        .collect::<anyhow::Result<Vec<_>>>()?,
                    _ => Err(anyhow::anyhow!("input.candidates must be a list"))?,
                };
                let settings = settings(input)?;
                let order = plugin_call!(*lease, "route", |store, b| b
                    .policy()?
                    .call_route(store, &request, &candidates, &settings)
                    .await)?;
                match order {
                    Ok(order) => json!({"order": order}),
                    Err(e) => error_json(&e),
                }
            }
            Call::OnRequest => {
                let info = filter_info(input.get("info"))?;
                let body = text(input, "body")?;
                let settings = settings(input)?;
                let outcome = plugin_call!(*lease, "on-request", |store, b| b
                    .guard()?
                    .call_on_request(store, &info, &body, &settings)
                    .await)?;
                match outcome {
                    Ok(o) => json!({
                        "verdict": match o.verdict {
                            guard::RequestVerdict::Allow => json!("allow"),
                            guard::RequestVerdict::Rewrite(b) => json!({"rewrite": body_json(b.as_bytes())}),
                            guard::RequestVerdict::Block(why) => json!({"block": why}),
                        },
                        "tags": o.tags,
                        "state": o.state,
                    }),
                    Err(e) => error_json(&e),
                }
            }
            Call::OnResponse => {
                let info = filter_info(input.get("info"))?;
                let body = text(input, "body")?;
                let state = optional_text(input, "state")?;
                let settings = settings(input)?;
                let verdict = plugin_call!(*lease, "on-response", |store, b| b
                    .guard()?
                    .call_on_response(store, &info, state.as_deref(), &body, &settings)
                    .await)?;
                match verdict {
                    Ok(guard::ResponseVerdict::Allow) => json!({"verdict": "allow"}),
                    Ok(guard::ResponseVerdict::Rewrite(b)) => {
                        json!({"verdict": {"rewrite": body_json(b.as_bytes())}})
                    }
                    Ok(guard::ResponseVerdict::Block(why)) => json!({"verdict": {"block": why}}),
                    Err(e) => error_json(&e),
                }
            }
            Call::StreamFilter => self.stream_filter(lease).await?,
        })
    }

    /// Push each of `input.chunks` (raw body pieces) into a decoder, then finish it.
    async fn stream(&self, lease: &mut Lease) -> Result<Value, CaseFault> {
        let target = target(&self.input)?;
        let pieces = string_list(&self.input, "chunks")?;
        let decoder = plugin_call!(*lease, "stream-decoder", |store, b| b
            .adapter()?
            .stream_decoder()
            .call_constructor(store, &target)
            .await)?;
        let mut chunks = Vec::new();
        let mut usage = Value::Null;
        let mut failed = None;
        for piece in pieces.iter().map(|p| p.as_bytes().to_vec()) {
            let pushed = plugin_call!(*lease, "stream-decoder.push", |store, b| b
                .adapter()?
                .stream_decoder()
                .call_push(store, decoder, &piece)
                .await)?;
            match pushed {
                Ok(out) => collect_chunks(out, &mut chunks, &mut usage),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_none() {
            let finished = plugin_call!(*lease, "stream-decoder.finish", |store, b| b
                .adapter()?
                .stream_decoder()
                .call_finish(store, decoder)
                .await)?;
            match finished {
                Ok(out) => collect_chunks(out, &mut chunks, &mut usage),
                Err(e) => failed = Some(e),
            }
        }
        plugin_call!(*lease, "stream-decoder.drop", |store, _b| decoder
            .resource_drop_async(store)
            .await)?;
        let mut answer = json!({"chunks": chunks, "usage": usage});
        if let Some(e) = failed {
            answer["error"] = error_json(&e)["error"].take();
        }
        Ok(answer)
    }

    /// Feed each of `input.chunks` (chat.completion.chunk JSON) to a stream filter, then
    /// finish it: the chunks the client would get.
    async fn stream_filter(&self, lease: &mut Lease) -> Result<Value, CaseFault> {
        let info = filter_info(self.input.get("info"))?;
        let state = optional_text(&self.input, "state")?;
        let settings = settings(&self.input)?;
        let chunks = string_list(&self.input, "chunks")?;
        let filter = plugin_call!(*lease, "stream-filter", |store, b| b
            .guard()?
            .stream_filter()
            .call_constructor(store, &info, state.as_deref(), &settings)
            .await)?;
        let mut out = Vec::new();
        let mut failed = None;
        for chunk in &chunks {
            let verdict = plugin_call!(*lease, "stream-filter.on-chunk", |store, b| b
                .guard()?
                .stream_filter()
                .call_on_chunk(store, filter, chunk)
                .await)?;
            match verdict {
                Ok(guard::ChunkVerdict::Pass) => out.push(body_json(chunk.as_bytes())),
                Ok(guard::ChunkVerdict::Replace(list)) => {
                    out.extend(list.iter().map(|c| body_json(c.as_bytes())))
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_none() {
            let finished = plugin_call!(*lease, "stream-filter.finish", |store, b| b
                .guard()?
                .stream_filter()
                .call_finish(store, filter)
                .await)?;
            match finished {
                Ok(list) => out.extend(list.iter().map(|c| body_json(c.as_bytes()))),
                Err(e) => failed = Some(e),
            }
        }
        plugin_call!(*lease, "stream-filter.drop", |store, _b| filter
            .resource_drop_async(store)
            .await)?;
        let mut answer = json!({"chunks": out});
        if let Some(e) = failed {
            answer["error"] = error_json(&e)["error"].take();
        }
        Ok(answer)
    }
}

/// Why a case could not be run: its input is wrong, or the plugin faulted (trap, timeout,
/// memory), which no expectation can accept.
#[derive(Debug)]
pub enum CaseFault {
    Input(anyhow::Error),
    Plugin(PluginFault),
}

impl From<anyhow::Error> for CaseFault {
    fn from(error: anyhow::Error) -> Self {
        CaseFault::Input(error)
    }
}

impl From<PluginFault> for CaseFault {
    fn from(fault: PluginFault) -> Self {
        CaseFault::Plugin(fault)
    }
}

impl std::fmt::Display for CaseFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaseFault::Input(error) => write!(f, "bad case input: {error:#}"),
            CaseFault::Plugin(fault) => write!(f, "{fault}"),
        }
    }
}

/// Where `actual` departs from `expected` (a JSON path and both values), if it does.
pub fn mismatch(expected: &Value, actual: &Value) -> Option<String> {
    fn walk(path: &str, expected: &Value, actual: &Value) -> Option<String> {
        match (expected, actual) {
            (Value::Object(want), Value::Object(got)) => want.iter().find_map(|(key, want)| {
                let path = format!("{path}.{key}");
                match got.get(key) {
                    Some(got) => walk(&path, want, got),
                    None if want.is_null() => None,
                    None => Some(format!("{path}: expected {want}, but it is missing")),
                }
            }),
            (Value::Array(want), Value::Array(got)) if want.len() == got.len() => want
                .iter()
                .zip(got)
                .enumerate()
                .find_map(|(i, (want, got))| walk(&format!("{path}[{i}]"), want, got)),
            (Value::Number(want), Value::Number(got)) if want.as_f64() == got.as_f64() => None,
            (want, got) if want == got => None,
            (want, got) => Some(format!("{path}: expected {want}, got {got}")),
        }
    }
    walk("$", expected, actual)
}

fn error_json(e: &Error) -> Value {
    json!({"error": {
        "kind": error_kind_name(e.kind),
        "retryable": e.retryable,
        "message": e.message,
        "status": e.status,
        "retry_after_ms": e.retry_after_ms,
        "code": e.code,
        "param": e.param,
    }})
}

fn usage_json(usage: Option<Usage>) -> Value {
    usage.map_or(
        Value::Null,
        |u| json!({"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens}),
    )
}

fn collect_chunks(
    out: Vec<crate::plugins::bindings::adapter::Chunk>,
    chunks: &mut Vec<Value>,
    usage: &mut Value,
) {
    for chunk in out {
        if chunk.usage.is_some() {
            *usage = usage_json(chunk.usage);
        }
        chunks.push(body_json(chunk.data.as_bytes()));
    }
}

/// A body as JSON when it is JSON, else as text (so a case can compare either).
fn body_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn pairs(headers: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        map.insert(name.to_ascii_lowercase(), Value::String(value.clone()));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_match_subsets_only() {
        let actual = json!({"ok": {"url": "u", "headers": {"a": "1", "b": "2"}, "n": [1, 2]}});
        assert_eq!(
            mismatch(&json!({"ok": {"headers": {"a": "1"}}}), &actual),
            None
        );
        assert_eq!(mismatch(&json!({"ok": {"n": [1, 2]}}), &actual), None);
        assert_eq!(
            mismatch(&json!({"ok": {"n": [1]}}), &actual).as_deref(),
            Some("$.ok.n: expected [1], got [1,2]")
        );
        assert_eq!(
            mismatch(&json!({"error": {"kind": "auth"}}), &actual).as_deref(),
            Some("$.error: expected {\"kind\":\"auth\"}, but it is missing")
        );
        assert!(mismatch(&json!({"ok": {"url": "v"}}), &actual).is_some());
    }

    #[test]
    fn case_files_refuse_unknown_keys_and_calls() {
        let err = Case::parse_file(r#"{"call":"route","inptu":{}}"#, "x.json").unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown key \"inptu\""),
            "{err:#}"
        );
        let err = Case::parse_file(r#"[{"call":"routes"}]"#, "x.json").unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown call 'routes'"),
            "{err:#}"
        );
        let cases = Case::parse_file(r#"[{"call":"route"},{"call":"on-request"}]"#, "x").unwrap();
        assert_eq!(cases[1].call.world(), PluginWorld::Filter);
    }
}
