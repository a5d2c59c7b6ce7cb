//! Precision and recall of the detectors on the labelled corpora (`corpus/*.jsonl`).
//!
//! Each line is `{"text": ..., "entities": [{"type": ..., "value": ...}]}`; a finding counts as
//! a true positive only when its type and exact text match a labelled entity, so a phone
//! number found without its `+44` is both a miss and a false alarm. A line without entities
//! is a clean text: any finding in it would alter a prompt that should pass untouched. Shared
//! by the `pii-eval` example (which prints the tables) and a unit test (which holds the
//! targets).
//!
//! Two corpora, two sets of targets:
//! - `pii.jsonl` (`generate.py`): the cases the detectors were written against, hard
//!   negatives included; cards, IBANs, e-mails and secrets at recall ≥ 0.98, precision ≥ 0.95.
//! - `locales.jsonl` (`locales.py`): every type in fifteen locales' sentences, values generated
//!   from public format rules, and clean texts full of numbers; every type at recall ≥ 0.97
//!   and precision ≥ 0.95, at most 1% of the clean texts altered.

use serde::Deserialize;

use crate::detect::{self, Kind};

pub const CORPUS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/pii.jsonl"));
pub const LOCALES: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/locales.jsonl"));

/// A corpus and its targets.
pub struct Target {
    pub name: &'static str,
    pub corpus: &'static str,
    /// Types held to the recall and precision below.
    pub kinds: &'static [Kind],
    pub min_recall: f64,
    pub min_precision: f64,
    /// The largest share of clean texts that may be altered.
    pub max_clean_altered: f64,
}

pub const TARGETS: [Target; 2] = [
    Target {
        name: "pii.jsonl",
        corpus: CORPUS,
        kinds: &[Kind::Card, Kind::Iban, Kind::Email, Kind::Secret],
        min_recall: 0.98,
        min_precision: 0.95,
        max_clean_altered: 1.0,
    },
    Target {
        name: "locales.jsonl",
        corpus: LOCALES,
        kinds: &Kind::ALL,
        min_recall: 0.97,
        min_precision: 0.95,
        max_clean_altered: 0.01,
    },
];

impl Target {
    /// What falls short of the targets in `report`, one line each.
    pub fn shortfalls(&self, report: &Report) -> Vec<String> {
        let mut out = Vec::new();
        for &kind in self.kinds {
            let c = report.counts[kind as usize];
            if c.recall() < self.min_recall || c.precision() < self.min_precision {
                out.push(format!(
                    "{}: {}: precision {:.3}, recall {:.3}",
                    self.name,
                    kind.name(),
                    c.precision(),
                    c.recall()
                ));
            }
        }
        if report.clean_altered_share() > self.max_clean_altered {
            out.push(format!(
                "{}: {:.2}% of clean texts altered",
                self.name,
                report.clean_altered_share() * 100.0
            ));
        }
        out
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    text: String,
    entities: Vec<Entity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entity {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Clone, Copy, Default, Debug)]
pub struct Counts {
    pub true_positives: u32,
    pub false_positives: u32,
    pub false_negatives: u32,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
}

fn ratio(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        1.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

#[derive(Default)]
pub struct Report {
    pub lines: usize,
    /// Lines with no entity at all (hard negatives, clean texts).
    pub negatives: usize,
    /// Of those, the ones with a finding: the texts the filter would alter.
    pub negatives_altered: usize,
    /// Indexed like [`Kind::ALL`].
    pub counts: [Counts; Kind::ALL.len()],
    /// `type: value  <- text` for every miss and every false alarm.
    pub misses: Vec<String>,
    pub false_alarms: Vec<String>,
}

pub fn evaluate(corpus: &str) -> Result<Report, String> {
    let mut report = Report::default();
    for (number, line) in corpus
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
    {
        let line: Line =
            serde_json::from_str(line).map_err(|e| format!("corpus line {}: {e}", number + 1))?;
        report.lines += 1;
        report.negatives += usize::from(line.entities.is_empty());
        let mut gold = Vec::new();
        for entity in &line.entities {
            let kind = Kind::from_name(&entity.kind).ok_or_else(|| {
                format!("corpus line {}: unknown type {:?}", number + 1, entity.kind)
            })?;
            if !line.text.contains(&entity.value) {
                return Err(format!(
                    "corpus line {}: {:?} is not in the text",
                    number + 1,
                    entity.value
                ));
            }
            gold.push((kind, entity.value.as_str(), false));
        }
        let found = detect::scan(&line.text);
        report.negatives_altered += usize::from(line.entities.is_empty() && !found.is_empty());
        for hit in found {
            let value = &line.text[hit.start..hit.end];
            let counts = &mut report.counts[hit.kind as usize];
            match gold.iter_mut().find(|(kind, gold_value, matched)| {
                !*matched && *kind == hit.kind && *gold_value == value
            }) {
                Some(entry) => {
                    entry.2 = true;
                    counts.true_positives += 1;
                }
                None => {
                    counts.false_positives += 1;
                    report.false_alarms.push(format!(
                        "{}: {value:?}  <- {:?}",
                        hit.kind.name(),
                        line.text
                    ));
                }
            }
        }
        for (kind, value, _) in gold.iter().filter(|(_, _, matched)| !matched) {
            report.counts[*kind as usize].false_negatives += 1;
            report
                .misses
                .push(format!("{}: {value:?}  <- {:?}", kind.name(), line.text));
        }
    }
    Ok(report)
}

impl Report {
    /// The share of clean texts with a finding; 0 when there are none.
    pub fn clean_altered_share(&self) -> f64 {
        if self.negatives == 0 {
            0.0
        } else {
            self.negatives_altered as f64 / self.negatives as f64
        }
    }

    /// The per-type table, as `pii-eval` prints it.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} strings ({} without any entity)\n\n{:<8} {:>6} {:>4} {:>4} {:>4} {:>10} {:>8}\n",
            self.lines, self.negatives, "type", "labels", "tp", "fp", "fn", "precision", "recall"
        );
        let mut total = Counts::default();
        for kind in Kind::ALL {
            let c = self.counts[kind as usize];
            total.true_positives += c.true_positives;
            total.false_positives += c.false_positives;
            total.false_negatives += c.false_negatives;
            out.push_str(&row(kind.name(), c));
        }
        out.push_str(&row("all", total));
        out.push_str(&format!(
            "\nclean texts altered: {} of {} ({:.2}%)\n",
            self.negatives_altered,
            self.negatives,
            self.clean_altered_share() * 100.0
        ));
        out
    }
}

fn row(name: &str, c: Counts) -> String {
    format!(
        "{name:<8} {:>6} {:>4} {:>4} {:>4} {:>10.3} {:>8.3}\n",
        c.true_positives + c.false_negatives,
        c.true_positives,
        c.false_positives,
        c.false_negatives,
        c.precision(),
        c.recall()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpora_meet_the_targets() {
        for target in &TARGETS {
            let report = evaluate(target.corpus).expect("corpus is well-formed");
            assert!(
                report.lines >= 300,
                "{}: {} strings",
                target.name,
                report.lines
            );
            let failures = target.shortfalls(&report);
            assert!(
                failures.is_empty(),
                "{}\n{}\nmisses:\n{}\nfalse alarms:\n{}",
                failures.join("\n"),
                report.table(),
                report.misses.join("\n"),
                report.false_alarms.join("\n")
            );
        }
    }
}
