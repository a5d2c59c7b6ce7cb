//! `freeway usage --by key|provider|model|day|hour --since 24h`: the ledger, summed.

use std::path::Path;
use std::time::SystemTime;

use super::open_store;
use crate::store::ledger::{GroupBy, since_ms, usage, usage_json};

pub fn run(config: &Path, by: &str, since: &str, json: bool) -> anyhow::Result<()> {
    let group = GroupBy::parse(by)
        .ok_or_else(|| anyhow::anyhow!("--by {by:?}: use key, provider, model, day or hour"))?;
    let store = open_store(config)?;
    let rows = usage(
        &store.connect()?,
        group,
        since_ms(since, SystemTime::now())?,
    )?;
    if json {
        println!("{}", usage_json(group, since, &rows));
        return Ok(());
    }
    println!(
        "{:<32} {:>9} {:>13} {:>13} {:>12}",
        by, "requests", "prompt tok", "output tok", "cost usd"
    );
    for row in &rows {
        println!(
            "{:<32} {:>9} {:>13} {:>13} {:>12.6}",
            row.group, row.requests, row.prompt_tokens, row.completion_tokens, row.cost_usd
        );
    }
    Ok(())
}
