//! Precision and recall of the detectors on the labelled corpus (`corpus/pii.jsonl`).
//!
//! Each line is `{"text": ..., "entities": [{"type": ..., "value": ...}]}`; a finding counts as
//! a true positive only when its type and exact text match a labelled entity, so a phone
//! number found without its `+44` is both a miss and a false alarm. Shared by the `pii-eval`
//! example (which prints the table) and a unit test (which holds the targets).

use serde::Deserialize;

use crate::detect::{self, Kind};

pub const CORPUS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/pii.jsonl"));

/// Types with hard targets: recall ≥ 0.98 and precision ≥ 0.95.
pub const TARGETED: [Kind; 4] = [Kind::Card, Kind::Iban, Kind::Email, Kind::Secret];
pub const MIN_RECALL: f64 = 0.98;
pub const MIN_PRECISION: f64 = 0.95;

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
    /// Lines with no entity at all (hard negatives).
    pub negatives: usize,
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
        for hit in detect::scan(&line.text) {
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
    fn corpus_meets_the_targets() {
        let report = evaluate(CORPUS).expect("corpus is well-formed");
        assert!(report.lines >= 300, "{} strings", report.lines);
        let mut failures = Vec::new();
        for kind in TARGETED {
            let c = report.counts[kind as usize];
            if c.recall() < MIN_RECALL || c.precision() < MIN_PRECISION {
                failures.push(format!(
                    "{}: precision {:.3}, recall {:.3}",
                    kind.name(),
                    c.precision(),
                    c.recall()
                ));
            }
        }
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
