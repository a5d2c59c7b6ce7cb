//! What the `pii` filter costs, natively: µs per detector scan for 1 KB, 4 KB and 32 KB
//! prompts, per whole request hook (JSON walk + scan + redaction), and per stream chunk.
//!
//! Four prompt mixes: a realistic one (mostly prose, code and numbers that are not personal
//! data); the dense one `freeway-plugin-bench` sends in wasm (an e-mail, a phone number and
//! an IBAN every 290 bytes), so native and wasm figures can be compared row for row; Japanese
//! and Chinese text with full-width forms (scanned twice: the worst case); and plain prose
//! with nothing to find, the floor: what walking the text alone costs.
//!
//! ```text
//! cargo run --release -p freeway-pii --example pii-bench [FILTER]
//! ```
//!
//! With `FILTER`, only the rows whose name contains it run (`"host mix: scan 4"`), which keeps
//! a profiler's samples (`perf record`, `valgrind --tool=callgrind`) on one workload.
//!
//! The modules are included by path, so this measures the shipped code without the bindings;
//! inside wasm add the host's call overhead and the compiled-wasm factor.

#![allow(dead_code)]

#[path = "../src/detect/mod.rs"]
mod detect;
#[path = "../src/json.rs"]
mod json;
#[path = "../src/pseudonym.rs"]
mod pseudonym;
#[path = "../src/request.rs"]
mod request;
#[path = "../src/settings.rs"]
mod settings;
#[path = "../src/stream.rs"]
mod stream;

use std::hint::black_box;
use std::time::{Duration, Instant};

/// A realistic prompt mix: prose in several languages, code, numbers that are not personal
/// data (dates, versions, prices, hashes, order and tracking numbers), and a few that are.
const PARAGRAPHS: &[&str] = &[
    "Hello! I'm preparing the quarterly report for our team and need help summarising the \
     numbers. Revenue grew 12.5% to $1,234,567 in Q3 2024, compared with 1.1 million the year \
     before. Please keep the tone neutral and mention the release of version 2.14.3 on \
     2024-09-15 at 10:30. ",
    "Kannst du bitte diese E-Mail an jane.doe@example.org umformulieren? Die Bestellung \
     4711-0815 wurde am 15.01.2024 verschickt, Sendungsnummer 00340434161094042557. ",
    "fn main() {\n    let xs: Vec<u32> = (0..100).map(|x| x * 2).collect();\n    \
     println!(\"{:?} {}\", xs, 0xdeadbeefu32);\n}\n",
    "Le client peut être joint au +33 1 23 45 67 89 ou par courrier. Le montant de 249,99 € \
     sera prélevé le 3 mars. Référence: FR-2024-000123. ",
    "The server at 10.20.30.40 returned HTTP 503 after 30000 ms; the commit \
     9fceb02d0ae598e95dc970b74767f19372d61af8 introduced the regression in build 4521. ",
    "Por favor, traduce este párrafo al inglés y mantén el formato. El pedido 123456 llegó \
     tarde, pero el servicio fue excelente. Gracias por todo. ",
];

/// The paragraph `host/src/bin/freeway-plugin-bench.rs` (`prompt_of`) repeats.
const HOST_PARAGRAPH: &str = "Please summarise the meeting notes below and list action items with owners. \
    Ana will send the Q3 numbers to the finance team by Friday; contact her at ana.silva@example.com \
    or +351 912 345 678. The vendor invoice (IBAN DE89 3704 0044 0532 0130 00) is due next week. ";

/// The host benchmark's prompt: [`HOST_PARAGRAPH`] repeated and cut at `bytes`.
fn host_prompt(bytes: usize) -> String {
    let mut text = HOST_PARAGRAPH.repeat(bytes / HOST_PARAGRAPH.len() + 1);
    text.truncate(bytes);
    text
}

/// Japanese and Chinese text with full-width punctuation (so every scan stops at the first
/// form and runs again on the narrowed text: the worst case), a mobile, an e-mail, an order
/// number and a full-width phone number.
const CJK_PARAGRAPH: &str = "会議の議事録を要約して、担当者ごとに作業を一覧にしてください。\
    佐藤さんの携帯は090-1234-5678、メールはyuki.sato@docomo.ne.jpです。注文番号7760-1466は\
    2024/06/16に発送しました。我的手机是13812345678，连络先：０３－１２３４－５６７８。";

/// [`CJK_PARAGRAPH`] repeated and cut at `bytes` (on a character boundary).
fn cjk_prompt(bytes: usize) -> String {
    let mut text = CJK_PARAGRAPH.repeat(bytes / CJK_PARAGRAPH.len() + 1);
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// Prose with no digits, no `@` and no secret-like words.
const PROSE: &str = "The committee met on a quiet afternoon to review the proposal. Most of the \
    members agreed that the plan was sound, though a few wanted more detail on the timeline \
    and on who would own each part of the work. They will meet again next week to decide. ";

/// [`PROSE`] repeated and cut at `bytes`.
fn prose(bytes: usize) -> String {
    let mut text = PROSE.repeat(bytes / PROSE.len() + 1);
    text.truncate(bytes);
    text
}

fn prompt(bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 512);
    let mut index = 0;
    while text.len() < bytes {
        text.push_str(PARAGRAPHS[index % PARAGRAPHS.len()]);
        index += 1;
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// Time per call: the best of ten rounds, each the mean over a tenth of `budget`. The machine
/// may be shared (CI, parallel builds): the best round is the code's cost, the others include
/// time the process was not running.
fn time(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..100 {
        f();
    }
    let round = budget / 10;
    let mut best = f64::INFINITY;
    for _ in 0..10 {
        let mut iterations = 0u64;
        let start = Instant::now();
        while start.elapsed() < round {
            for _ in 0..20 {
                f();
            }
            iterations += 20;
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / iterations as f64);
    }
    best
}

/// Times `f` and prints one row, unless the command line's filter leaves the row out.
/// `bytes`: the input size, for a throughput column.
fn row(name: &str, bytes: Option<usize>, f: impl FnMut()) {
    let filter = std::env::args().nth(1).unwrap_or_default();
    if !name.contains(&filter) {
        return;
    }
    let micros = time(Duration::from_millis(500), f);
    match bytes {
        Some(bytes) => println!("{name:<36} {micros:>10.2} {:>8.0}", bytes as f64 / micros),
        None => println!("{name:<36} {micros:>10.3}"),
    }
}

/// A prompt mix: the row prefix, the prompt of a given size, and the request body around it.
type Mix = (&'static str, fn(usize) -> String, fn(&str) -> String);

fn main() {
    let defaults = settings::Settings::default();
    println!("{:<36} {:>10} {:>8}", "", "µs", "MB/s");
    let mixes: [Mix; 4] = [
        ("", prompt, |content| {
            format!(
                r#"{{"model":"gpt-4o","messages":[{{"role":"system","content":"You are helpful."}},{{"role":"user","content":{content}}}]}}"#
            )
        }),
        ("host mix: ", host_prompt, |content| {
            format!(r#"{{"model":"bench","messages":[{{"role":"user","content":{content}}}]}}"#)
        }),
        ("cjk: ", cjk_prompt, |content| {
            format!(r#"{{"model":"bench","messages":[{{"role":"user","content":{content}}}]}}"#)
        }),
        ("prose: ", prose, |content| {
            format!(r#"{{"model":"bench","messages":[{{"role":"user","content":{content}}}]}}"#)
        }),
    ];
    for (prefix, make_prompt, make_body) in mixes {
        for size in [1024, 4096, 32 * 1024] {
            let text = make_prompt(size);
            let mut found = Vec::new();
            row(
                &format!("{prefix}scan {} KB", size / 1024),
                Some(size),
                || {
                    detect::scan_into(black_box(&text), &mut found);
                    black_box(&found);
                },
            );
            let body = make_body(&pseudonym::json_string(&text));
            row(
                &format!("{prefix}on-request {} KB", size / 1024),
                Some(body.len()),
                || {
                    black_box(request::judge(black_box(&body), &defaults).ok());
                },
            );
        }
    }

    let state = r#"{"[EMAIL_1]":"jane.doe@example.org","[PHONE_1]":"+33 1 23 45 67 89"}"#;
    let plain = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" the quarterly numbers look"},"finish_reason":null}]}"#;
    let with_placeholder = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" write to [EMAIL_1] today"},"finish_reason":null}]}"#;
    for (name, chunk) in [
        ("stream chunk, no placeholder", plain),
        ("stream chunk, placeholder", with_placeholder),
    ] {
        let restorer = pseudonym::Restorer::from_state(state).expect("state");
        let mut filter = stream::StreamRestorer::new(restorer);
        row(name, None, || {
            black_box(filter.on_chunk(black_box(chunk)).ok());
        });
    }
}
