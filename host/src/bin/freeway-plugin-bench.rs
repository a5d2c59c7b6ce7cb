//! `freeway-plugin-bench`: what each plugin costs the gateway, measured through the same
//! runtime the server uses (pooling allocator, epoch deadlines, async bindings).
//!
//! ```text
//! freeway-plugin-bench [PLUGIN_DIR ...]     (default: plugins/dist target/test-plugins)
//! ```
//! For every plugin found it prints, in microseconds (median and mean of many runs):
//! - a fresh instance (what `instances = "fresh"` pays per request) and a call on a reused one;
//! - adapters: build-request, parse-response and stream decoding per chunk;
//! - routers: a decision over 20 candidates;
//! - filters: on-request over 1 KB, 4 KB and 32 KB prompts, and per stream chunk.
//!
//! Run it with `make bench-plugins`. It is a benchmark, not a test: it asserts nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use freeway::plugin_call;
use freeway::plugins::bindings::adapter::Target;
use freeway::plugins::bindings::guard;
use freeway::plugins::bindings::policy::{Candidate, RequestInfo};
use freeway::plugins::{
    InstanceMode, Lease, Plugin, PluginLimits, PluginSet, PluginWorld, Runtime,
};

const CHAT: &str = r#"{"model":"bench","temperature":0.2,"messages":[{"role":"system","content":"You are a concise assistant that answers questions about travel planning. Keep answers under 100 words and always suggest one alternative."},{"role":"user","content":"I have three days in Lisbon in October. What should I not miss, and is it worth taking a day trip to Sintra or should I stay in the city? I like food markets, viewpoints and old trams."}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}"#;

struct Sample {
    adapter: &'static str,
    base_url: &'static str,
    response: &'static str,
    stream: Vec<String>,
}

fn samples() -> Vec<Sample> {
    let openai_chunk = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}]}"#;
    let mut openai = vec![format!("{openai_chunk}\n\n"); 100];
    openai.push("data: [DONE]\n\n".into());
    let mut anthropic = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n".to_string(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string(),
    ];
    anthropic.extend(std::iter::repeat_n(
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" token\"}}\n\n".to_string(),
        100,
    ));
    anthropic.extend([
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".to_string(),
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":100}}\n\n".to_string(),
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_string(),
    ]);
    let mut gemini = vec![
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\" token\"}]},\"index\":0}]}\r\n\r\n".to_string();
        100
    ];
    gemini.push("data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\".\"}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":25,\"candidatesTokenCount\":100,\"totalTokenCount\":125}}\r\n\r\n".to_string());
    vec![
        Sample {
            adapter: "openai-compatible",
            base_url: "http://127.0.0.1:1/v1",
            response: r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Lisbon in October is lovely: ride tram 28, eat at Time Out Market, watch sunset from Miradouro da Senhora do Monte. Sintra is worth a day."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":80,"completion_tokens":40,"total_tokens":120}}"#,
            stream: openai,
        },
        Sample {
            adapter: "anthropic",
            base_url: "http://127.0.0.1:1/v1",
            response: r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Lisbon in October is lovely: ride tram 28, eat at Time Out Market, watch sunset from Miradouro da Senhora do Monte. Sintra is worth a day."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":80,"output_tokens":40}}"#,
            stream: anthropic,
        },
        Sample {
            adapter: "gemini",
            base_url: "http://127.0.0.1:1/v1beta",
            response: r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Lisbon in October is lovely: ride tram 28, eat at Time Out Market, watch sunset from Miradouro da Senhora do Monte. Sintra is worth a day."}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":80,"candidatesTokenCount":40,"totalTokenCount":120},"modelVersion":"gemini-2.5-flash"}"#,
            stream: gemini,
        },
    ]
}

/// Median and mean of `$runs` timings of `$body` (which may `.await`), after a short warm-up.
/// A macro, not a function taking a closure: the body borrows the instance mutably across
/// awaits, which an `FnMut` returning a future cannot express.
macro_rules! measure {
    ($runs:expr, $body:block) => {{
        let runs: usize = $runs;
        for _ in 0..runs / 10 + 1 {
            $body
        }
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            $body
            times.push(started.elapsed());
        }
        times.sort();
        let mean = times.iter().sum::<Duration>() / runs as u32;
        (times[runs / 2], mean)
    }};
}

fn row(plugin: &str, what: &str, (median, mean): (Duration, Duration)) {
    println!(
        "| {plugin:<18} | {what:<40} | {:>9.1} | {:>9.1} |",
        median.as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
}

async fn lease(plugin: &Arc<Plugin>) -> Lease {
    match plugin.lease().await {
        Ok(lease) => lease,
        Err(fault) => panic!("{fault}"),
    }
}

fn runs_for(plugin: &Plugin, fast: usize) -> usize {
    // Python/JS guests are 10-100x slower per call: fewer runs keep the whole bench short.
    if plugin.sha256.is_empty()
        || std::fs::metadata(&plugin.source).map_or(0, |m| m.len()) > 1_000_000
    {
        fast / 20
    } else {
        fast
    }
}

async fn bench_adapter(plugin: &Arc<Plugin>, sample: &Sample) {
    let name = plugin.name.as_str();
    let runs = runs_for(plugin, 2000);
    let target = |stream| Target {
        provider: "bench".into(),
        base_url: sample.base_url.into(),
        model: "bench-model".into(),
        stream,
        settings: "{}".into(),
    };
    let json_target = &target(false);
    let stream_target = &target(true);
    row(
        name,
        "fresh instance (instantiate)",
        measure!(runs, { drop(lease(plugin).await) }),
    );
    let mut instance = lease(plugin).await;
    row(
        name,
        "build-request (reused instance)",
        measure!(runs, {
            let built = plugin_call!(instance, "build-request", |store, b| b
                .adapter()?
                .call_build_request(store, json_target, CHAT)
                .await);
            assert!(matches!(built, Ok(Ok(_))), "build-request failed");
        }),
    );
    let headers = &vec![("content-type".to_string(), "application/json".to_string())];
    let body = &sample.response.as_bytes().to_vec();
    row(
        name,
        "parse-response (reused instance)",
        measure!(runs, {
            let parsed = plugin_call!(instance, "parse-response", |store, b| b
                .adapter()?
                .call_parse_response(store, json_target, 200, headers, body)
                .await);
            assert!(matches!(parsed, Ok(Ok(_))), "parse-response failed");
        }),
    );
    let frames: &Vec<Vec<u8>> = &sample
        .stream
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let chunks = frames.len() as u32;
    let (median, mean) = measure!(runs_for(plugin, 200), {
        let decoder = plugin_call!(instance, "stream-decoder", |store, b| b
            .adapter()?
            .stream_decoder()
            .call_constructor(store, stream_target)
            .await)
        .expect("decoder");
        for frame in frames {
            let pushed = plugin_call!(instance, "push", |store, b| b
                .adapter()?
                .stream_decoder()
                .call_push(store, decoder, frame)
                .await);
            assert!(matches!(pushed, Ok(Ok(_))), "push failed");
        }
        let _ = plugin_call!(instance, "finish", |store, b| b
            .adapter()?
            .stream_decoder()
            .call_finish(store, decoder)
            .await);
        let _ = plugin_call!(instance, "drop", |store, _b| decoder
            .resource_drop_async(store)
            .await);
    });
    row(
        name,
        &format!("stream decode, per chunk ({chunks} chunks)"),
        (median / chunks, mean / chunks),
    );
}

fn candidates(n: u32) -> Vec<Candidate> {
    (0..n)
        .map(|i| Candidate {
            id: i,
            provider: format!("provider-{}", i % 7),
            model: format!("model-{i}"),
            healthy: i % 9 != 4,
            cooldown_ms: if i % 5 == 3 { 12_000 } else { 0 },
            remaining_requests: Some(u64::from(100 - i)),
            remaining_tokens: Some(u64::from(50_000 - i * 1000)),
            quota_used: Some(i as f32 / 25.0),
            in_flight: i % 4,
            latency_ms: Some(200.0 + i as f32 * 13.0),
            ttft_ms: Some(80.0 + i as f32 * 7.0),
            error_rate: (i % 3) as f32 / 10.0,
            input_price: if i < 12 { 0.0 } else { 0.15 * f64::from(i) },
            output_price: if i < 12 { 0.0 } else { 0.6 * f64::from(i) },
            context_window: Some(8192 * (1 + i % 4)),
            weight: 1 + i % 3,
            tags: vec![if i < 12 { "free".into() } else { "paid".into() }],
        })
        .collect()
}

async fn bench_router(plugin: &Arc<Plugin>) {
    let name = plugin.name.as_str();
    let runs = runs_for(plugin, 2000);
    let request = RequestInfo {
        model: "bench".into(),
        prompt_tokens: 800,
        max_tokens: Some(256),
        stream: false,
        has_tools: true,
        has_images: false,
        tags: vec!["code".into()],
        metadata: vec![],
        session: None,
    };
    let list = &candidates(20);
    let request = &request;
    row(
        name,
        "fresh instance (instantiate)",
        measure!(runs, { drop(lease(plugin).await) }),
    );
    let mut instance = lease(plugin).await;
    row(
        name,
        "route, 20 candidates (reused instance)",
        measure!(runs, {
            let _ = plugin_call!(instance, "route", |store, b| b
                .policy()?
                .call_route(store, request, list, "{}")
                .await);
        }),
    );
    row(
        name,
        "fresh instance + route (per request)",
        measure!(runs, {
            let mut instance = lease(plugin).await;
            let _ = plugin_call!(instance, "route", |store, b| b
                .policy()?
                .call_route(store, request, list, "{}")
                .await);
        }),
    );
}

fn prompt_of(bytes: usize) -> String {
    let text = "Please summarise the meeting notes below and list action items with owners. \
                Ana will send the Q3 numbers to the finance team by Friday; contact her at ana.silva@example.com \
                or +351 912 345 678. The vendor invoice (IBAN DE89 3704 0044 0532 0130 00) is due next week. ";
    let mut content = String::with_capacity(bytes);
    while content.len() < bytes {
        content.push_str(text);
    }
    content.truncate(bytes);
    serde_json::json!({"model": "bench", "messages": [{"role": "user", "content": content}]})
        .to_string()
}

async fn bench_filter(plugin: &Arc<Plugin>) {
    let name = plugin.name.as_str();
    let runs = runs_for(plugin, 1000);
    let info = &guard::RequestInfo {
        model: "bench".into(),
        tags: vec![],
        metadata: vec![],
    };
    row(
        name,
        "fresh instance (instantiate)",
        measure!(runs, { drop(lease(plugin).await) }),
    );
    let mut instance = lease(plugin).await;
    for size in [1024, 4096, 32768] {
        let body = &prompt_of(size);
        row(
            name,
            &format!("on-request, {} KB prompt (reused)", size / 1024),
            measure!(runs, {
                let _ = plugin_call!(instance, "on-request", |store, b| b
                    .guard()?
                    .call_on_request(store, info, body, "{}")
                    .await);
            }),
        );
    }
    let chunk = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":" a token of text"},"finish_reason":null}]}"#;
    let resource = plugin_call!(instance, "stream-filter", |store, b| b
        .guard()?
        .stream_filter()
        .call_constructor(store, info, None, "{}")
        .await)
    .expect("stream filter");
    row(
        name,
        "stream filter, per chunk (reused)",
        measure!(runs * 5, {
            let _ = plugin_call!(instance, "on-chunk", |store, b| b
                .guard()?
                .stream_filter()
                .call_on_chunk(store, resource, chunk)
                .await);
        }),
    );
    let _ = plugin_call!(instance, "drop", |store, _b| resource
        .resource_drop_async(store)
        .await);
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        dirs = vec!["plugins/dist".into(), "target/test-plugins".into()];
    }
    let runtime = Arc::new(Runtime::new()?);
    let limits = PluginLimits {
        mode: InstanceMode::Fresh,
        pool_size: 4,
        timeout: Duration::from_secs(5),
        memory_bytes: 256 << 20,
        quarantine_after: 0,
    };
    println!(
        "| plugin             | what                                     | median µs |   mean µs |"
    );
    println!(
        "|--------------------|------------------------------------------|----------:|----------:|"
    );
    let samples = samples();
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        let set = PluginSet::load_dir(
            &runtime,
            dir,
            Some(std::path::Path::new("target/freeway-cache")),
            &|_| limits.clone(),
        )
        .await?;
        for plugin in set.plugins.values() {
            match plugin.world {
                PluginWorld::Provider => {
                    if let Some(sample) = samples.iter().find(|s| s.adapter == plugin.name) {
                        bench_adapter(plugin, sample).await;
                    }
                }
                PluginWorld::Router if plugin.name != "hostile-router" => {
                    bench_router(plugin).await
                }
                PluginWorld::Filter if plugin.name != "test-guard" => bench_filter(plugin).await,
                _ => {}
            }
        }
    }
    Ok(())
}
