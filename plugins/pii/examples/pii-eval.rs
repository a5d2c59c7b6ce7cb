//! Precision and recall of the `pii` detectors on the labelled corpus, per entity type.
//!
//! ```text
//! cargo run --release -p freeway-pii --example pii-eval [-- --verbose]
//! ```
//!
//! The detector modules are included by path and compiled natively: the same code as the
//! `.wasm`, without the bindings. `--verbose` lists every miss and false alarm. Exits non-zero
//! when a targeted type (cards, IBANs, e-mails, secrets) falls below its target.

#![allow(dead_code)]

#[path = "../src/detect/mod.rs"]
mod detect;
#[path = "../src/quality.rs"]
mod quality;

use std::process::ExitCode;

fn main() -> ExitCode {
    let report = match quality::evaluate(quality::CORPUS) {
        Ok(report) => report,
        Err(problem) => {
            eprintln!("{problem}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    if std::env::args().any(|arg| arg == "--verbose") {
        println!("\nmisses ({}):", report.misses.len());
        for miss in &report.misses {
            println!("  {miss}");
        }
        println!("\nfalse alarms ({}):", report.false_alarms.len());
        for alarm in &report.false_alarms {
            println!("  {alarm}");
        }
    }
    let mut ok = true;
    for kind in quality::TARGETED {
        let counts = report.counts[kind as usize];
        if counts.recall() < quality::MIN_RECALL || counts.precision() < quality::MIN_PRECISION {
            ok = false;
            println!("below target: {}", kind.name());
        }
    }
    println!(
        "\ntargets (card, iban, email, secret): recall >= {}, precision >= {}: {}",
        quality::MIN_RECALL,
        quality::MIN_PRECISION,
        if ok { "met" } else { "NOT met" }
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
