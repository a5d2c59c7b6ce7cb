//! Precision and recall of the `pii` detectors on the labelled corpora, per entity type, and
//! the share of clean texts they would alter.
//!
//! ```text
//! cargo run --release -p freeway-pii --example pii-eval [-- [--verbose] [FILE.jsonl ...]]
//! ```
//!
//! The detector modules are included by path and compiled natively: the same code as the
//! `.wasm`, without the bindings. `--verbose` lists every miss and false alarm. With files, those
//! corpora (same line format) are measured instead, against the locale corpus's targets: a
//! held-out generation (`locales.py` with another seed) or a test set of someone else's.
//! Exits non-zero when a corpus falls below its targets (see `src/quality.rs`).

#![allow(dead_code)]

#[path = "../src/detect/mod.rs"]
mod detect;
#[path = "../src/quality.rs"]
mod quality;

use std::process::ExitCode;

fn main() -> ExitCode {
    let verbose = std::env::args().any(|arg| arg == "--verbose");
    let files: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--verbose")
        .collect();
    // Other corpora (held-out generations, someone else's test set) get the locale targets.
    let mut targets: Vec<(String, String, &quality::Target)> = Vec::new();
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(text) => targets.push((file.clone(), text, &quality::TARGETS[1])),
            Err(problem) => {
                eprintln!("{file}: {problem}");
                return ExitCode::FAILURE;
            }
        }
    }
    if files.is_empty() {
        for target in &quality::TARGETS {
            targets.push((target.name.to_owned(), target.corpus.to_owned(), target));
        }
    }
    let mut ok = true;
    for (name, corpus, target) in &targets {
        let report = match quality::evaluate(corpus) {
            Ok(report) => report,
            Err(problem) => {
                eprintln!("{name}: {problem}");
                return ExitCode::FAILURE;
            }
        };
        println!("== {name}");
        print!("{}", report.table());
        if verbose {
            println!("\nmisses ({}):", report.misses.len());
            for miss in &report.misses {
                println!("  {miss}");
            }
            println!("\nfalse alarms ({}):", report.false_alarms.len());
            for alarm in &report.false_alarms {
                println!("  {alarm}");
            }
        }
        let shortfalls = target.shortfalls(&report);
        for shortfall in &shortfalls {
            println!("below target: {shortfall}");
        }
        println!(
            "targets ({}): recall >= {}, precision >= {}, clean texts altered <= {}%: {}\n",
            target
                .kinds
                .iter()
                .map(|kind| kind.name())
                .collect::<Vec<_>>()
                .join(", "),
            target.min_recall,
            target.min_precision,
            target.max_clean_altered * 100.0,
            if shortfalls.is_empty() {
                "met"
            } else {
                "NOT met"
            }
        );
        ok &= shortfalls.is_empty();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
