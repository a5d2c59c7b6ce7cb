//! Where config text comes from before it is parsed: provider catalogs merged under
//! `providers`, `models = [..]` shorthand normalised, `${VAR}` references expanded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ConfigError, error};

/// Merge the provider catalogs named by `catalog = [...]` under this file's `providers`:
/// a catalog gives every provider's defaults, this file's keys win, table by table.
pub(super) fn merge_catalogs(
    value: &mut toml::Value,
    base_dir: &Path,
) -> Result<Vec<PathBuf>, ConfigError> {
    let Some(files) = value
        .get("catalog")
        .and_then(toml::Value::as_array)
        .cloned()
    else {
        return Ok(Vec::new());
    };
    let mut read = Vec::new();
    let mut merged = toml::Table::new();
    for (i, file) in files.iter().enumerate() {
        let path = format!("catalog[{i}]");
        let Some(name) = file.as_str() else {
            return Err(error(path, "must be a file path"));
        };
        let file_path = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            base_dir.join(name)
        };
        read.push(file_path.clone());
        let text = std::fs::read_to_string(&file_path).map_err(|e| {
            error(
                path.clone(),
                format!("cannot read {}: {e}", file_path.display()),
            )
        })?;
        let catalog: toml::Table = toml::from_str(&text).map_err(|e| {
            error(
                path.clone(),
                format!("{}: {}", file_path.display(), e.message()),
            )
        })?;
        for (key, item) in catalog {
            if key != "providers" {
                return Err(error(
                    path,
                    format!(
                        "{}: a catalog holds only [providers.*], found `{key}`",
                        file_path.display()
                    ),
                ));
            }
            let toml::Value::Table(providers) = item else {
                return Err(error(
                    path,
                    format!("{}: `providers` must be a table", file_path.display()),
                ));
            };
            deep_merge(&mut merged, providers);
        }
    }
    if let Some(toml::Value::Table(own)) = value.get("providers").cloned() {
        deep_merge(&mut merged, own);
    }
    if let toml::Value::Table(root) = value {
        root.insert("providers".into(), toml::Value::Table(merged));
    }
    Ok(read)
}

fn deep_merge(base: &mut toml::Table, top: toml::Table) {
    for (key, item) in top {
        match (base.get_mut(&key), item) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(top_table)) => {
                deep_merge(base_table, top_table)
            }
            (_, item) => {
                base.insert(key, item);
            }
        }
    }
}

/// `models = ["a", "b"]` is shorthand for `models = { a = {}, b = {} }`.
pub(super) fn normalise_model_lists(value: &mut toml::Value) {
    let Some(toml::Value::Table(providers)) = value.get_mut("providers") else {
        return;
    };
    for (_, provider) in providers.iter_mut() {
        if let Some(models) = provider.get_mut("models")
            && let toml::Value::Array(names) = models
            && names.iter().all(toml::Value::is_str)
        {
            let table = names
                .iter()
                .filter_map(|n| n.as_str())
                .map(|n| (n.to_string(), toml::Value::Table(toml::Table::new())))
                .collect();
            *models = toml::Value::Table(table);
        }
    }
}

/// Replace `${NAME}` / `${NAME:-default}` in every string value.
pub(super) fn expand_env(
    value: &mut toml::Value,
    path: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) if s.contains("${") => {
            *s = expand_str(s, env).map_err(|reason| error(path.clone(), reason))?;
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                expand_env(item, path, env)?;
                path.truncate(len);
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                expand_env(item, path, env)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_str(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in {input:?}"))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{expr}}}` is not a valid variable reference"));
        }
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (write `${{{name}:-default}}` to give a default)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn table_to_json(table: Option<toml::Table>) -> Arc<str> {
    let json = table
        .map(|t| serde_json::to_string(&t).unwrap_or_else(|_| "{}".into()))
        .unwrap_or_else(|| "{}".into());
    Arc::from(json)
}
