//! `freeway plugin`: the plugin author's commands. `new` writes a project from the templates
//! in `plugins/templates` (built into the binary), `check` says whether a `.wasm` is a plugin
//! this gateway loads and what a call costs, `test` runs golden JSON cases against one.
//! `check` and `test` load the file with the gateway's own loader and limits, so what they
//! accept is what `serve` accepts.

mod cases;
mod check;
mod golden;
mod inputs;
mod scaffold;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};

use crate::config::{Config, PluginLimits};
use crate::plugins::{Plugin, PluginWorld, Refusal, RefusalKind, Runtime, registry};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Write a new plugin project that builds as generated (see its README.md).
    New {
        /// The plugin's name (lower-case letters, digits and dashes); also the folder's.
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        #[arg(long, value_enum)]
        lang: scaffold::Lang,
        /// Where to write the project (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Validate a .wasm against the contract, print what it is, run it once on sample inputs.
    ///
    /// Exit codes: 0 loads and runs; 1 cannot read it or bad arguments; 3 not a plugin or
    /// the wrong world; 4 built for an incompatible contract version; 5 an export is missing
    /// or has another signature, or it imports more than WASI; 6 it trapped, timed out or ran
    /// out of memory.
    Check {
        file: PathBuf,
        /// Fail (exit 3) unless the plugin is of this kind.
        #[arg(long, value_enum)]
        kind: Option<Kind>,
        /// Settings (a JSON object) to check and to run the samples with.
        #[arg(long, default_value = "{}")]
        settings: String,
        /// Use this gateway config's plugin limits and plugin cache (default: built-in limits,
        /// cache in $FREEWAY_CACHE_DIR or ~/.cache/freeway).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Run the golden cases (*.json) in CASES_DIR against a .wasm; exit 1 if any fails.
    Test {
        file: PathBuf,
        cases_dir: PathBuf,
        /// Use this gateway config's plugin limits and plugin cache.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Provider,
    Router,
    Filter,
}

impl Kind {
    fn world(self) -> PluginWorld {
        match self {
            Kind::Provider => PluginWorld::Provider,
            Kind::Router => PluginWorld::Router,
            Kind::Filter => PluginWorld::Filter,
        }
    }
}

/// How a plugin command ended; the numbers are documented on `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Failed = 1,
    WrongWorld = 3,
    Contract = 4,
    Exports = 5,
    Trap = 6,
}

/// A plugin loaded for inspection.
pub struct Loaded {
    pub plugin: Arc<Plugin>,
    pub size: u64,
}

pub fn run(command: PluginCommand) -> ExitCode {
    let exit = match command {
        PluginCommand::New {
            name,
            kind,
            lang,
            dir,
        } => scaffold::run(&name, kind, lang, dir.as_deref()),
        PluginCommand::Check {
            file,
            kind,
            settings,
            config,
        } => {
            let settings = match serde_json::from_str::<serde_json::Value>(&settings) {
                Ok(value @ serde_json::Value::Object(_)) => value,
                _ => {
                    eprintln!("freeway: --settings must be a JSON object, e.g. '{{\"key\": 1}}'");
                    return ExitCode::from(Exit::Failed as u8);
                }
            };
            with_plugin(&file, config.as_deref(), kind, |loaded| async move {
                check::run(&loaded, &settings).await
            })
        }
        PluginCommand::Test {
            file,
            cases_dir,
            config,
        } => with_plugin(&file, config.as_deref(), None, |loaded| async move {
            golden::run(&loaded, &cases_dir).await
        }),
    };
    ExitCode::from(exit as u8)
}

/// Where compiled plugins are kept between commands without `--config`, so checking an 18 MB
/// Python component again takes milliseconds, not seconds: `$FREEWAY_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/freeway`, else `~/.cache/freeway` (entries are keyed by content hash and
/// engine, so one folder serves every file and version).
fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("FREEWAY_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("freeway")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/freeway")))
}

/// Load `file` as the gateway would (its limits and cache from `config` when given), then
/// hand it to `then`; a refusal becomes its exit code and one message.
fn with_plugin<F, Fut>(file: &Path, config: Option<&Path>, kind: Option<Kind>, then: F) -> Exit
where
    F: FnOnce(Loaded) -> Fut,
    Fut: std::future::Future<Output = Exit>,
{
    let config = match config.map(Config::load).transpose() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("freeway: {error:#}");
            return Exit::Failed;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("freeway: cannot start the async runtime: {error}");
            return Exit::Failed;
        }
    };
    runtime.block_on(async move {
        let engine = match Runtime::new() {
            Ok(engine) => Arc::new(engine),
            Err(error) => {
                eprintln!("freeway: cannot start the plugin runtime: {error:#}");
                return Exit::Failed;
            }
        };
        let limits_for = |name: &str| match &config {
            Some(config) => config.limits_for(name),
            None => PluginLimits::builtin(),
        };
        let cache = match &config {
            Some(config) => config.cache_dir.clone(),
            None => default_cache_dir(),
        };
        let plugin = match registry::load_file(&engine, file, cache.as_deref(), &limits_for).await {
            Ok(plugin) => Arc::new(plugin),
            Err(error) => {
                let exit = match error.downcast_ref::<Refusal>().map(|r| r.kind) {
                    Some(RefusalKind::WrongWorld) => Exit::WrongWorld,
                    Some(RefusalKind::Contract) => Exit::Contract,
                    Some(RefusalKind::Exports) => Exit::Exports,
                    Some(RefusalKind::Trap) => Exit::Trap,
                    None => Exit::Failed,
                };
                eprintln!("freeway: {} refused: {error:#}", file.display());
                return exit;
            }
        };
        if let Some(kind) = kind
            && plugin.world != kind.world()
        {
            eprintln!(
                "freeway: {} is a {} plugin ('{}'), not a {} plugin",
                file.display(),
                plugin.world,
                plugin.name,
                kind.world()
            );
            return Exit::WrongWorld;
        }
        let size = std::fs::metadata(file).map_or(0, |m| m.len());
        then(Loaded { plugin, size }).await
    })
}
