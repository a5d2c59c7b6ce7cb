//! `freeway plugin check FILE.wasm`: is this file a plugin this gateway would load, what does
//! it say it is, and what does a call cost? Loads it with the gateway's own loader (so every
//! refusal is the one `serve` would log), then runs it once on sample inputs of its world
//! under the limits it would get, timing each call and reading its peak memory.

use std::time::Duration;

use serde_json::{Value, json};

use super::cases::{Case, CaseFault};
use super::{Exit, Loaded};
use crate::plugins::PluginWorld;

const CHAT: &str = r#"{"model":"check-model","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Name one planet."}],"max_tokens":20}"#;
const COMPLETION: &str = r#"{"id":"chatcmpl-check","object":"chat.completion","created":1700000000,"model":"check-model","choices":[{"index":0,"message":{"role":"assistant","content":"Mars."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}"#;
const CHUNK: &str = r#"{"id":"chatcmpl-check","object":"chat.completion.chunk","created":1700000000,"model":"check-model","choices":[{"index":0,"delta":{"content":"Mars."},"finish_reason":null}]}"#;

/// Sample inputs for each world: what a gateway hands the plugin on an ordinary request.
fn samples(world: PluginWorld, settings: &Value) -> Vec<Case> {
    let target = json!({"provider": "check", "base_url": "http://127.0.0.1:9/v1",
                        "model": "check-model", "settings": settings});
    let stream_target = json!({"provider": "check", "base_url": "http://127.0.0.1:9/v1",
                               "model": "check-model", "stream": true, "settings": settings});
    let cases = match world {
        PluginWorld::Provider => json!([
            {"call": "build-request", "input": {"target": target, "request": CHAT}},
            {"call": "parse-response", "input": {"target": target, "status": 200,
                "headers": {"content-type": "application/json"}, "body": COMPLETION}},
            {"call": "read-rate-limits", "input": {"status": 429,
                "headers": {"retry-after": "2", "x-ratelimit-remaining-requests": "0"}, "body": "{}"}},
            {"call": "stream", "input": {"target": stream_target,
                "chunks": [format!("data: {CHUNK}\n\n"), "data: [DONE]\n\n"]}},
        ]),
        PluginWorld::Router => json!([
            {"call": "route", "input": {"settings": settings,
                "request": {"model": "check", "prompt_tokens": 120, "max_tokens": 50},
                "candidates": [
                    {"provider": "a", "model": "m1", "input_price": 3.0, "output_price": 15.0},
                    {"provider": "b", "model": "m2", "input_price": 0.0, "output_price": 0.0, "tags": ["free"]},
                    {"provider": "c", "model": "m3", "input_price": 0.5, "output_price": 1.5, "healthy": false},
                ]}},
        ]),
        PluginWorld::Filter => json!([
            {"call": "on-request", "input": {"settings": settings, "body": CHAT}},
            {"call": "on-response", "input": {"settings": settings, "body": COMPLETION}},
            {"call": "stream-filter", "input": {"settings": settings, "chunks": [CHUNK]}},
        ]),
        // Fitters have no golden-case calls yet: `check` loads them and reports what they are.
        PluginWorld::Fitter => json!([]),
    };
    Case::parse_file(&cases.to_string(), "samples").unwrap_or_default()
}

/// Repetitions per sample call for the timing (after the first, which is printed).
const TIMED_RUNS: usize = 20;

pub async fn run(loaded: &Loaded, settings: &Value) -> Exit {
    let plugin = &loaded.plugin;
    let limits = &plugin.limits;
    println!("file:        {}", plugin.source.display());
    println!("size:        {} KB", loaded.size.div_ceil(1024));
    println!("sha256:      {}", plugin.sha256);
    println!("name:        {}", plugin.name);
    println!("kind:        {}", plugin.world);
    println!("version:     {}", plugin.version);
    println!("description: {}", plugin.description);
    println!(
        "contract:    freeway:plugin@{} (this gateway speaks {})",
        plugin.contract,
        crate::plugins::WIT_VERSION
    );
    if plugin.world == crate::plugins::PluginWorld::Provider {
        println!(
            "embeddings:  {}",
            if plugin.embeds {
                "yes (exports freeway:plugin/embedder)"
            } else {
                "no (no freeway:plugin/embedder export)"
            }
        );
    }
    println!(
        "imports:     {}",
        if plugin.imports.is_empty() {
            "none (needs nothing from the host)".to_string()
        } else {
            plugin.imports.join(", ")
        }
    );
    println!(
        "limits:      {} instances, {} ms per call, {} MiB memory",
        format!("{:?}", limits.mode).to_lowercase(),
        limits.timeout.as_millis(),
        limits.memory_bytes >> 20
    );
    match plugin.check_settings(&settings.to_string()).await {
        Ok(Ok(())) => println!("settings:    {settings} accepted"),
        Ok(Err(why)) => println!("settings:    {settings} refused: {why}"),
        Err(fault) => {
            eprintln!("freeway: {fault}");
            return Exit::Trap;
        }
    }
    let started = std::time::Instant::now();
    let mut lease = match plugin.lease().await {
        Ok(lease) => lease,
        Err(fault) => {
            eprintln!("freeway: {fault}");
            return Exit::Trap;
        }
    };
    println!("calls (first answer; median µs of {TIMED_RUNS} more on one instance):");
    println!(
        "  {:<18} {:>8.1} µs",
        "instantiate",
        micros(started.elapsed())
    );
    for case in samples(plugin.world, settings) {
        let (answer, _) = match case.run(&mut lease).await {
            Ok(done) => done,
            Err(fault) => return fault_exit(&case, &fault),
        };
        let mut times = Vec::with_capacity(TIMED_RUNS);
        for _ in 0..TIMED_RUNS {
            match case.run(&mut lease).await {
                Ok((_, took)) => times.push(took),
                Err(fault) => return fault_exit(&case, &fault),
            }
        }
        times.sort();
        println!(
            "  {:<18} {:>8.1} µs  {}",
            case.call.name(),
            micros(times[TIMED_RUNS / 2]),
            summary(&answer)
        );
    }
    println!(
        "peak memory: {:.1} MiB of {} MiB",
        lease.memory_bytes() as f64 / f64::from(1 << 20),
        limits.memory_bytes >> 20
    );
    drop(lease);
    println!(
        "OK: {} is a {} plugin this gateway loads",
        plugin.name, plugin.world
    );
    Exit::Ok
}

fn fault_exit(case: &Case, fault: &CaseFault) -> Exit {
    eprintln!("freeway: {} failed: {fault}", case.call.name());
    match fault {
        CaseFault::Plugin(_) => Exit::Trap,
        CaseFault::Input(_) => Exit::Failed,
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One line saying what the call answered, cut for the terminal.
fn summary(answer: &Value) -> String {
    let text = answer.to_string();
    if text.chars().count() > 110 {
        format!("{}…", text.chars().take(110).collect::<String>())
    } else {
        text
    }
}
