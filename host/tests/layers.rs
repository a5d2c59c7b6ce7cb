//! The host's layering, checked: each top-level module of `host/src` may import (`crate::x`)
//! only the layers below it, so a change that would make an import cycle — or make anything
//! import `server` — fails here with the file that did it.

use std::collections::BTreeMap;
use std::path::Path;

/// Each layer and the layers it may use. Order: a request's path, top to bottom.
const ALLOWED: &[(&str, &[&str])] = &[
    ("cli", &["plugins", "state", "store", "config"]),
    (
        "server",
        &[
            "api", "admin", "reload", "pipeline", "state", "metrics", "config", "http", "error",
        ],
    ),
    (
        "admin",
        &[
            "api", "reload", "pipeline", "plugins", "state", "store", "metrics", "events",
            "config", "http", "error",
        ],
    ),
    (
        "api",
        &["pipeline", "cache", "state", "config", "http", "error"],
    ),
    (
        "reload",
        &[
            "pipeline",
            "plugins",
            "state",
            "store",
            "ledger",
            "metrics",
            "telemetry",
            "events",
            "config",
        ],
    ),
    (
        "pipeline",
        &[
            "upstream",
            "plugins",
            "cache",
            "state",
            "ledger",
            "metrics",
            "telemetry",
            "events",
            "store",
            "config",
            "error",
        ],
    ),
    ("telemetry", &["upstream", "config"]),
    ("cache", &["state", "config"]),
    ("upstream", &["plugins", "state", "config"]),
    ("plugins", &["config"]),
    ("ledger", &["store"]),
    ("state", &["store", "config"]),
    ("metrics", &[]),
    ("events", &[]),
    ("store", &[]),
    ("config", &[]),
    ("http", &["error"]),
    ("error", &[]),
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn layers_import_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default();
        let layer = first.trim_end_matches(".rs");
        if matches!(layer, "main" | "lib" | "bin") {
            continue;
        }
        let Some(may_use) = allowed.get(layer) else {
            violations.push(format!(
                "{}: layer '{layer}' is not in ALLOWED",
                relative.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("readable");
        for (at, _) in text.match_indices("crate::") {
            let used: String = text[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if used != layer
                && allowed.contains_key(used.as_str())
                && !may_use.contains(&used.as_str())
            {
                violations.push(format!(
                    "{}: layer '{layer}' imports '{used}'",
                    relative.display()
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
