//! The operator's commands besides `serve` and `check`: virtual keys and usage reports (on
//! the store the config names, with or without a running gateway; a running one picks key
//! changes up within a second), and the plugin author's `freeway plugin new|check|test`.

pub mod keys;
pub mod plugin;
pub mod usage;

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;

use crate::config::{Config, StorePath};
use crate::store::Store;

/// The store of the config at `path`.
pub fn open_store(path: &Path) -> anyhow::Result<Store> {
    let config = Config::load(path)?;
    match &config.store {
        StorePath::Sqlite(file) => {
            Store::open(file).with_context(|| format!("the store of {}", path.display()))
        }
        StorePath::Memory => anyhow::bail!(
            "{} keeps its store in memory (store.path = \"memory\"): keys and usage need a \
             store file",
            path.display()
        ),
    }
}

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
