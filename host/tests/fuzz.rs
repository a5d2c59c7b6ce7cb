//! Property-based fuzzing on stable Rust (proptest) of everything that reads untrusted bytes:
//! the request validator (`pipeline::canonical`), config loading with `${VAR}` interpolation,
//! and — through the real `.wasm` plugins, run in-process under the gateway's own runtime —
//! each adapter's response parser and stream decoder and the pii filter's detectors.
//!
//! Inputs are seeds taken from the end-to-end tests' wire formats (`seeds`), mutated (byte
//! flips, cuts, splices), plus arbitrary bytes and JSON. The property everywhere: no panic, no
//! trap, no hang (every plugin call runs under its epoch deadline, so a hang is a fault and
//! fails the test), and errors are typed.
//!
//! `cargo test --release -p freeway --test fuzz` runs a short pass (CI). For a long run:
//! `FREEWAY_FUZZ_SECONDS=600 cargo test --release -p freeway --test fuzz -- --nocapture
//! --test-threads 1` gives each target 10 minutes. A failure prints the shrunk input; keep it
//! as a regression case in `regressions` below.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use freeway::config::{Config, InstanceMode, PluginLimits};
use freeway::pipeline::canonical::inspect_chat_request;
use freeway::plugin_call;
use freeway::plugins::bindings::adapter::Target;
use freeway::plugins::bindings::guard::RequestInfo;
use freeway::plugins::{PluginSet, Runtime};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};

/// Run `test` on `strategy` for the configured time (`FREEWAY_FUZZ_SECONDS`), or for a short
/// pass of `quick_cases` when unset.
fn fuzz<S: Strategy>(
    name: &str,
    quick_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let seconds: Option<u64> = std::env::var("FREEWAY_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let started = Instant::now();
    let mut rounds = 0u64;
    loop {
        let mut runner = TestRunner::new(RunnerConfig {
            cases: quick_cases,
            failure_persistence: None,
            ..RunnerConfig::default()
        });
        if let Err(failure) = runner.run(&strategy, &test) {
            panic!("{name}: {failure}");
        }
        rounds += 1;
        match seconds {
            Some(limit) if started.elapsed() < Duration::from_secs(limit) => continue,
            _ => break,
        }
    }
    if seconds.is_some() {
        eprintln!(
            "{name}: {} cases in {:.0} s, no failure",
            rounds * u64::from(quick_cases),
            started.elapsed().as_secs_f64()
        );
    }
}

/// Seeds, byte-mutated: a flipped byte, a cut, a spliced-in piece of another seed.
fn mutated(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let seed = proptest::sample::select(seeds).prop_map(|s| s.as_bytes().to_vec());
    prop_oneof![
        seed.clone(),
        (seed.clone(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut s, at, b)| {
            if !s.is_empty() {
                let i = at.index(s.len());
                s[i] = b;
            }
            s
        }),
        (seed.clone(), any::<prop::sample::Index>()).prop_map(|(s, at)| {
            let cut = at.index(s.len() + 1);
            s[..cut].to_vec()
        }),
        (seed.clone(), seed, any::<prop::sample::Index>()).prop_map(|(mut a, b, at)| {
            let i = at.index(a.len() + 1);
            a.splice(i..i, b);
            a
        }),
        proptest::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::String),
        prop::sample::select(&["model", "messages", "user", "assistant", "stream", "tools"][..])
            .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(
                        &[
                            "model",
                            "messages",
                            "role",
                            "content",
                            "stream",
                            "stream_options",
                            "include_usage",
                            "max_tokens",
                            "max_completion_tokens",
                            "tools",
                            "type",
                            "image_url",
                            "metadata",
                            "user",
                            "text",
                        ][..]
                    )
                    .prop_map(str::to_string),
                    ".{0,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

mod seeds {
    /// Request bodies as the e2e tests send them.
    pub const REQUESTS: &[&str] = &[
        r#"{"model":"smart","messages":[{"role":"user","content":"Say hello"}]}"#,
        r#"{"model":"fast","messages":[{"role":"system","content":"Be brief"},{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":64}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"metadata":{"sensitive":"true"},"user":"u1"}"#,
        r#"{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"42"}],"max_completion_tokens":9}"#,
    ];

    /// Upstream answers, in each adapter's wire format (as the mocks write them).
    pub const ANSWERS: &[&str] = &[
        r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-a","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0}}}"#,
        r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"hi"},{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":2}}"#,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"hi"},{"functionCall":{"name":"f","args":{}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1,"totalTokenCount":4},"modelVersion":"gemini-2.5-flash"}"#,
        r#"{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}"#,
    ];

    /// Upstream streams, in each adapter's wire format.
    pub const STREAMS: &[&str] = &[
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\n: keep-alive\n\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n",
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"hi\"}]}}]}\r\n\r\ndata: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\" there\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2}}\r\n\r\n",
    ];

    /// Prompt texts for the pii detectors: every entity type, in several scripts.
    pub const TEXTS: &[&str] = &[
        "mail me at jane.doe@example.com or call +1 415 555 0100",
        "card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, SSN 078-05-1120",
        "サーバー192.168.1.10にjane@example.comから接続、電話０３－１２３４－５６７８",
        "token ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa and postgres://u:secret@db/x",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
    ];
}

#[test]
fn request_validator_never_panics_and_accepts_only_what_routing_needs() {
    let bytes = prop_oneof![
        mutated(seeds::REQUESTS),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ];
    fuzz("request validator", 2000, bytes, |body| {
        if let Ok(info) = inspect_chat_request(&body) {
            prop_assert!(!info.model.is_empty());
            prop_assert!(info.messages >= 1);
        }
        Ok(())
    });
}

#[test]
fn config_loading_with_env_interpolation_never_panics() {
    const TEMPLATE: &str = r#"
[server]
listen = "${LISTEN:-127.0.0.1:8080}"
max_body_bytes = 65536
request_timeout_ms = 30000
[plugins]
dir = "${PLUGINS}"
[providers.p]
adapter = "openai-compatible"
base_url = "${BASE:-http://127.0.0.1:9/v1}"
api_key_env = "KEY"
models = ["m"]
[models.fast]
targets = ["p/m"]
"#;
    let text = prop_oneof![
        Just(TEMPLATE.to_string()),
        (
            any::<prop::sample::Index>(),
            "[\\PC\n$\\{\\}:\\-\"=\\[\\]]{0,40}"
        )
            .prop_map(|(at, piece)| {
                let mut t = TEMPLATE.to_string();
                let mut i = at.index(t.len() + 1);
                while !t.is_char_boundary(i) {
                    i -= 1;
                }
                t.insert_str(i, &piece);
                t
            }),
        "\\PC{0,200}",
    ];
    let env_value = prop_oneof![
        Just(String::new()),
        "[a-z0-9:/.\\-]{0,30}",
        "\\PC{0,30}",
        Just("${PLUGINS}".to_string()),
        Just("\"\n[evil]\nx = 1".to_string()),
    ];
    let base = Path::new(".");
    fuzz(
        "config loading",
        1000,
        (text, env_value.clone(), env_value),
        |(text, plugins, other)| {
            let env = |name: &str| match name {
                "PLUGINS" => Some(plugins.clone()),
                "KEY" | "BASE" | "LISTEN" if !other.is_empty() => Some(other.clone()),
                _ => None,
            };
            if let Err(error) = Config::parse(&text, base, Path::new("fuzz.toml"), &env) {
                prop_assert!(!error.to_string().is_empty());
            }
            Ok(())
        },
    );
}

/// The bundled plugins, loaded once, or `None` (with a note) when `make plugins` has not run.
fn bundled_plugins(rt: &tokio::runtime::Runtime) -> Option<PluginSet> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
    if !dir.join("openai-compatible.wasm").is_file() {
        eprintln!(
            "skipping plugin fuzzing: {} has no plugins (run `make plugins`)",
            dir.display()
        );
        return None;
    }
    let runtime = Arc::new(Runtime::new().expect("runtime"));
    let limits = |_: &str| PluginLimits {
        mode: InstanceMode::Pooled,
        pool_size: 4,
        timeout: Duration::from_millis(1000),
        memory_bytes: 64 << 20,
        quarantine_after: 0,
    };
    let set = rt
        .block_on(PluginSet::load_dir(&runtime, &dir, None, &limits))
        .expect("plugins load");
    Some(set)
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn target(provider: &str, stream: bool) -> Target {
    Target {
        provider: provider.into(),
        base_url: "https://api.example.com/v1".into(),
        model: "m".into(),
        stream,
        settings: "{}".into(),
    }
}

const ADAPTERS: &[&str] = &["openai-compatible", "anthropic", "gemini"];

#[test]
fn adapters_parse_any_answer_without_trapping() {
    let rt = tokio_runtime();
    let Some(plugins) = bundled_plugins(&rt) else {
        return;
    };
    let statuses = prop_oneof![Just(200u16), Just(429), Just(500), Just(400), 100u16..600];
    let header = prop_oneof![
        Just(("retry-after".to_string(), "7".to_string())),
        Just((
            "x-ratelimit-remaining-requests".to_string(),
            "0".to_string()
        )),
        ("[a-z\\-]{1,20}", "\\PC{0,20}"),
    ];
    for name in ADAPTERS {
        let plugin = plugins.get(name).expect("bundled adapter").clone();
        let input = (
            statuses.clone(),
            prop::collection::vec(header.clone(), 0..4),
            mutated(seeds::ANSWERS),
        );
        fuzz(
            &format!("{name} parse-response"),
            300,
            input,
            |(status, headers, body)| {
                rt.block_on(async {
                    let mut lease = plugin.lease().await.map_err(fault)?;
                    let t = target(name, false);
                    plugin_call!(lease, "parse-response", |store, b| b
                        .adapter()?
                        .call_parse_response(store, &t, status, &headers, &body)
                        .await)
                    .map_err(fault)?
                    .map(|_| ())
                    .or_else(|error| {
                        prop_assert!(!error.message.is_empty());
                        Ok(())
                    })?;
                    plugin_call!(lease, "read-rate-limits", |store, b| b
                        .adapter()?
                        .call_read_rate_limits(store, status, &headers, &body)
                        .await)
                    .map_err(fault)?;
                    Ok(())
                })
            },
        );
    }
}

#[test]
fn stream_decoders_take_any_bytes_split_anywhere_without_trapping() {
    let rt = tokio_runtime();
    let Some(plugins) = bundled_plugins(&rt) else {
        return;
    };
    for name in ADAPTERS {
        let plugin = plugins.get(name).expect("bundled adapter").clone();
        let input = (
            mutated(seeds::STREAMS),
            prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        );
        fuzz(
            &format!("{name} stream decoder"),
            300,
            input,
            |(bytes, cuts)| {
                let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
                cuts.sort_unstable();
                rt.block_on(async {
                    let mut lease = plugin.lease().await.map_err(fault)?;
                    let t = target(name, true);
                    let decoder = plugin_call!(lease, "stream-decoder", |store, b| b
                        .adapter()?
                        .stream_decoder()
                        .call_constructor(store, &t)
                        .await)
                    .map_err(fault)?;
                    let mut from = 0;
                    for cut in cuts.into_iter().chain([bytes.len()]) {
                        let piece = &bytes[from..cut];
                        from = cut;
                        let pushed = plugin_call!(lease, "push", |store, b| b
                            .adapter()?
                            .stream_decoder()
                            .call_push(store, decoder, piece)
                            .await)
                        .map_err(fault)?;
                        if pushed.is_err() {
                            return Ok(());
                        }
                    }
                    let _ = plugin_call!(lease, "finish", |store, b| b
                        .adapter()?
                        .stream_decoder()
                        .call_finish(store, decoder)
                        .await)
                    .map_err(fault)?;
                    Ok(())
                })
            },
        );
    }
}

#[test]
fn pii_detectors_take_any_text_without_trapping() {
    let rt = tokio_runtime();
    let Some(plugins) = bundled_plugins(&rt) else {
        return;
    };
    let Some(pii) = plugins.get("pii").cloned() else {
        eprintln!("skipping pii fuzzing: pii.wasm is not built");
        return;
    };
    let text = prop_oneof![
        mutated(seeds::TEXTS).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "\\PC{0,300}",
        "[0-9 +\\-()./@:a-zA-Z０-９＠]{0,200}",
    ];
    let settings = r#"{"actions":{"email":"redact","phone":"redact","card":"redact","iban":"redact","ssn":"redact","ip":"redact","secret":"redact"},"reversible":true}"#;
    let info = RequestInfo {
        model: "m".into(),
        tags: Vec::new(),
        metadata: Vec::new(),
    };
    // The settings are ones the filter takes: a known e-mail is redacted (a rewrite).
    let known = rt.block_on(async {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"jane.doe@example.com"}]}"#;
        let mut lease = pii.lease().await.expect("lease");
        plugin_call!(lease, "on-request", |store, b| b
            .guard()?
            .call_on_request(store, &info, body, settings)
            .await)
        .expect("no fault")
        .expect("settings accepted")
        .verdict
    });
    assert!(
        matches!(known, freeway::plugins::bindings::guard::RequestVerdict::Rewrite(ref b) if !b.contains("jane.doe")),
        "{known:?}"
    );
    fuzz("pii on-request", 300, text, |text| {
        let body =
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": text}]})
                .to_string();
        rt.block_on(async {
            let mut lease = pii.lease().await.map_err(fault)?;
            let outcome = plugin_call!(lease, "on-request", |store, b| b
                .guard()?
                .call_on_request(store, &info, &body, settings)
                .await)
            .map_err(fault)?;
            if let Ok(outcome) = outcome
                && let freeway::plugins::bindings::guard::RequestVerdict::Rewrite(rewritten) =
                    outcome.verdict
            {
                // A rewrite must still be a request the gateway accepts.
                prop_assert!(
                    inspect_chat_request(rewritten.as_bytes()).is_ok(),
                    "{rewritten}"
                );
            }
            Ok(())
        })
    });
}

fn fault(fault: freeway::plugins::PluginFault) -> TestCaseError {
    TestCaseError::fail(format!(
        "the plugin faulted (trap, hang or memory): {fault}"
    ))
}

/// Inputs the fuzzers once found, kept so they stay fixed.
mod regressions {
    use super::*;

    #[test]
    fn request_bodies_found_by_fuzzing() {
        // (none found so far; add each shrunk failure here with the result it must give)
        for body in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"model\":\"\"}",
            b"{\"model\":\"m\",\"messages\":[]}",
        ] {
            assert!(inspect_chat_request(body).is_err());
        }
    }
}
