//! `freeway keys create|list|update|revoke`: virtual keys in the store. The secret is printed
//! once, at creation; listings show a prefix to recognise a key by.

use std::path::Path;
use std::time::SystemTime;

use clap::{Args, Subcommand};

use super::{now_s, open_store};
use crate::state::keys::{this_month_start_ms, today_start_ms};
use crate::store::keys::{self, KeyLimits, KeySpec, KeySpend, view};
use crate::store::ledger::spend_by_key;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints its secret once.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        limits: LimitFlags,
        /// Print a JSON object instead of the secret alone.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets) with what they spent.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a key's limits (flags given replace the current values).
    Update {
        name: String,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// Revoke a key: it is refused from now on, and stays listed.
    Revoke { name: String },
}

#[derive(Args, Default)]
pub struct LimitFlags {
    /// Who the key is for (free text).
    #[arg(long)]
    owner: Option<String>,
    /// Public models the key may use, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    models: Option<Vec<String>>,
    /// Routing labels added to the key's requests, comma-separated.
    #[arg(long, value_delimiter = ',')]
    tags: Option<Vec<String>>,
    #[arg(long)]
    rpm: Option<u64>,
    #[arg(long)]
    tpm: Option<u64>,
    #[arg(long)]
    daily_requests: Option<u64>,
    #[arg(long)]
    daily_tokens: Option<u64>,
    #[arg(long)]
    monthly_tokens: Option<u64>,
    #[arg(long)]
    daily_usd: Option<f64>,
    #[arg(long)]
    monthly_usd: Option<f64>,
    /// A lifetime budget in USD.
    #[arg(long)]
    budget_usd: Option<f64>,
    /// RFC 3339 time or a duration from now (30d, 12h).
    #[arg(long)]
    expires: Option<String>,
    /// 0-9: the highest place the key's requests take in a line waiting for capacity
    /// (default 5); `x-freeway-priority` may lower it.
    #[arg(long)]
    priority: Option<u8>,
    /// The longest the key's requests wait for capacity (caps a model's queue_wait_ms).
    #[arg(long)]
    queue_wait_ms: Option<u64>,
}

impl LimitFlags {
    fn spec(&self) -> KeySpec {
        KeySpec {
            name: None,
            owner: self.owner.clone(),
            models: self.models.clone(),
            tags: self.tags.clone(),
            rpm: self.rpm,
            tpm: self.tpm,
            daily_requests: self.daily_requests,
            daily_tokens: self.daily_tokens,
            monthly_tokens: self.monthly_tokens,
            daily_usd: self.daily_usd,
            monthly_usd: self.monthly_usd,
            budget_usd: self.budget_usd,
            expires_at: self.expires.clone(),
            priority: self.priority,
            queue_wait_ms: self.queue_wait_ms,
        }
    }
}

pub fn run(config: &Path, command: KeysCommand) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let connection = store.connect()?;
    match command {
        KeysCommand::Create { name, limits, json } => {
            let mut key_limits = KeyLimits::default();
            limits.spec().apply(&mut key_limits, now_s())?;
            let (row, secret) = keys::create(&connection, &name, &key_limits, now_s())?;
            if json {
                let mut object = view(&row, KeySpend::default());
                object["key"] = serde_json::Value::String(secret);
                println!("{object}");
            } else {
                println!("{secret}");
                eprintln!(
                    "key '{}' created; this is the only time its secret is shown",
                    row.name
                );
            }
        }
        KeysCommand::List { json } => {
            let now = SystemTime::now();
            let today = spend_by_key(&connection, today_start_ms(now))?;
            let month = spend_by_key(&connection, this_month_start_ms(now))?;
            let total = spend_by_key(&connection, 0)?;
            let find = |list: &[(String, crate::store::ledger::Spend)], name: &str| {
                list.iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, s)| *s)
                    .unwrap_or_default()
            };
            let views: Vec<serde_json::Value> = keys::all(&connection)?
                .iter()
                .map(|row| {
                    let day = find(&today, &row.name);
                    view(
                        row,
                        KeySpend {
                            usd_today: day.cost_usd,
                            usd_month: find(&month, &row.name).cost_usd,
                            usd_total: find(&total, &row.name).cost_usd,
                            tokens_today: day.tokens,
                        },
                    )
                })
                .collect();
            if json {
                println!("{}", serde_json::Value::Array(views));
            } else {
                println!(
                    "{:<24} {:<12} {:<8} {:>12} {:>12}  owner",
                    "name", "prefix", "state", "usd today", "usd total"
                );
                for v in &views {
                    println!(
                        "{:<24} {:<12} {:<8} {:>12.6} {:>12.6}  {}",
                        v["name"].as_str().unwrap_or_default(),
                        v["prefix"].as_str().unwrap_or_default(),
                        if v["revoked"].as_bool() == Some(true) {
                            "revoked"
                        } else {
                            "active"
                        },
                        v["spent_usd_today"].as_f64().unwrap_or_default(),
                        v["spent_usd_total"].as_f64().unwrap_or_default(),
                        v["owner"].as_str().unwrap_or_default(),
                    );
                }
            }
        }
        KeysCommand::Update { name, limits } => {
            let row = keys::get(&connection, &name)?
                .ok_or_else(|| anyhow::anyhow!("no key named '{name}'"))?;
            let mut key_limits = row.limits;
            limits.spec().apply(&mut key_limits, now_s())?;
            let row = keys::update(&connection, &name, &key_limits)?;
            println!("{}", view(&row, KeySpend::default()));
        }
        KeysCommand::Revoke { name } => {
            let row = keys::revoke(&connection, &name, now_s())?;
            eprintln!("key '{}' revoked", row.name);
        }
    }
    Ok(())
}
