//! Precision and recall of the `pii` detectors on the labelled corpora, per entity type, and
//! the share of clean texts they would alter.
//!
//! ```text
//! cargo run --release -p freeway-pii --example pii-eval [-- --verbose]
//! ```
//!
//! The detector modules are included by path and compiled natively: the same code as the
//! `.wasm`, without the bindings. `--verbose` lists every miss and false alarm. Exits non-zero
//! when a corpus falls below its targets (see `src/quality.rs`).

#![allow(dead_code)]

#[path = "../src/detect/mod.rs"]
mod detect;
#[path = "../src/quality.rs"]
mod quality;

use std::process::ExitCode;

fn main() -> ExitCode {
    let verbose = std::env::args().any(|arg| arg == "--verbose");
    let mut ok = true;
    for target in &quality::TARGETS {
        let report = match quality::evaluate(target.corpus) {
            Ok(report) => report,
            Err(problem) => {
                eprintln!("{}: {problem}", target.name);
                return ExitCode::FAILURE;
            }
        };
        println!("== {}", target.name);
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
