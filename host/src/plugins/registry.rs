//! Loading a plugin folder: compile (or reuse a cached precompiled artifact), identify each
//! component by the world it exports and the metadata it reports, and build its `InstancePre`.
//!
//! Compilation never happens on the request path: a folder is loaded once at start (and on
//! reload), and the precompiled artifact is cached under `cache_dir` keyed by the component's
//! SHA-256 and the engine's compatibility hash, so a restart skips Cranelift entirely.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre};

use super::bindings::{
    adapter, embedder, filter, fitter, fitting, guard, judging, policy, provider, router, types,
};
pub use super::contract::{PluginWorld, Refusal, RefusalKind, WIT_VERSION, contract_compatible};
use super::contract::{exports_judging, identify_world, refuse, refuse_ungranted_imports};
use super::{Plugin, PluginLimits, PluginState, PluginStats, Runtime};

pub(super) enum WorldPre {
    /// A provider adapter, with the optional exports it has beside `adapter`, found once at
    /// load (a plugin without them is not asked to do what they do).
    Provider {
        pre: InstancePre<PluginState>,
        indices: provider::ProviderIndices,
        embedder: Option<embedder::GuestIndices>,
    },
    Router(router::RouterPre<PluginState>),
    /// A router that also exports `judging`: both sets of exports from one instance.
    JudgedRouter {
        pre: wasmtime::component::InstancePre<PluginState>,
        router: router::RouterIndices,
        judging: judging::GuestIndices,
    },
    Filter(filter::FilterPre<PluginState>),
    Fitter(fitter::FitterPre<PluginState>),
}

/// The typed exports of one live instance.
pub enum WorldBindings {
    /// The provider world, and its `embedder` exports when the plugin has them.
    Provider(provider::Provider, Option<embedder::Guest>),
    /// A router, with its `judging` exports when it has them.
    Router(router::Router, Option<judging::Guest>),
    Filter(filter::Filter),
    Fitter(fitter::Fitter),
}

impl WorldPre {
    pub(super) async fn instantiate(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<WorldBindings> {
        Ok(match self {
            WorldPre::Provider {
                pre,
                indices,
                embedder,
            } => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let exports = indices.load(&mut *store, &instance)?;
                let embedder = match embedder {
                    Some(embedder) => Some(embedder.load(&mut *store, &instance)?),
                    None => None,
                };
                WorldBindings::Provider(exports, embedder)
            }
            WorldPre::Router(pre) => {
                WorldBindings::Router(pre.instantiate_async(&mut *store).await?, None)
            }
            WorldPre::JudgedRouter {
                pre,
                router,
                judging,
            } => {
                let instance = pre.instantiate_async(&mut *store).await?;
                WorldBindings::Router(
                    router.load(&mut *store, &instance)?,
                    Some(judging.load(&mut *store, &instance)?),
                )
            }
            WorldPre::Filter(pre) => WorldBindings::Filter(pre.instantiate_async(store).await?),
            WorldPre::Fitter(pre) => WorldBindings::Fitter(pre.instantiate_async(store).await?),
        })
    }
}

impl WorldBindings {
    async fn metadata(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<types::PluginMetadata> {
        match self {
            WorldBindings::Provider(b, _) => b.call_metadata(store).await,
            WorldBindings::Router(b, _) => b.call_metadata(store).await,
            WorldBindings::Filter(b) => b.call_metadata(store).await,
            WorldBindings::Fitter(b) => b.call_metadata(store).await,
        }
    }

    /// The plugin's verdict on a settings object (every world exports `check-settings`).
    pub async fn check_settings(
        &self,
        store: &mut Store<PluginState>,
        settings: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            WorldBindings::Provider(b, _) => b.call_check_settings(store, settings).await,
            WorldBindings::Router(b, _) => b.call_check_settings(store, settings).await,
            WorldBindings::Filter(b) => b.call_check_settings(store, settings).await,
            WorldBindings::Fitter(b) => b.call_check_settings(store, settings).await,
        }
    }

    /// The adapter exports, or an error if this instance is another kind of plugin.
    pub fn adapter(&self) -> wasmtime::Result<&adapter::Guest> {
        match self {
            WorldBindings::Provider(p, _) => Ok(p.freeway_plugin_adapter()),
            _ => Err(wasmtime::Error::msg(
                "this plugin is not a provider adapter",
            )),
        }
    }

    /// The embedder exports, or an error if this instance has none (callers check
    /// [`Plugin::embeds`](super::Plugin::embeds) first).
    pub fn embedder(&self) -> wasmtime::Result<&embedder::Guest> {
        match self {
            WorldBindings::Provider(_, Some(embedder)) => Ok(embedder),
            _ => Err(wasmtime::Error::msg(
                "this plugin does not export freeway:plugin/embedder",
            )),
        }
    }

    pub fn policy(&self) -> wasmtime::Result<&policy::Guest> {
        match self {
            WorldBindings::Router(r, _) => Ok(r.freeway_plugin_policy()),
            _ => Err(wasmtime::Error::msg("this plugin is not a router")),
        }
    }

    /// The router's `judging` exports, when it has them.
    pub fn judging(&self) -> Option<&judging::Guest> {
        match self {
            WorldBindings::Router(_, judging) => judging.as_ref(),
            _ => None,
        }
    }

    pub fn fitting(&self) -> wasmtime::Result<&fitting::Guest> {
        match self {
            WorldBindings::Fitter(f) => Ok(f.freeway_plugin_fitting()),
            _ => Err(wasmtime::Error::msg("this plugin is not a context fitter")),
        }
    }

    pub fn guard(&self) -> wasmtime::Result<&guard::Guest> {
        match self {
            WorldBindings::Filter(f) => Ok(f.freeway_plugin_guard()),
            _ => Err(wasmtime::Error::msg("this plugin is not a filter")),
        }
    }
}

/// A file the gateway would not load, and why (one line).
#[derive(Clone, Debug)]
pub struct Rejected {
    pub path: PathBuf,
    /// The content that was refused.
    pub sha256: Option<String>,
    pub reason: String,
    /// Refused for what it is (not for what the config needs): the same content is not
    /// tried, or logged, again.
    pub for_its_content: bool,
}

/// The plugins loaded from one folder, by metadata name.
#[derive(Default)]
pub struct PluginSet {
    pub plugins: BTreeMap<String, Arc<Plugin>>,
    /// Files that could not be loaded, with the reason (the gateway logs them and goes on).
    pub rejected: Vec<Rejected>,
}

impl PluginSet {
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// Load every `*.wasm` in `dir`. A file that fails is recorded in `rejected`, not fatal:
    /// whether the gateway can run without it is the config's question.
    pub async fn load_dir(
        runtime: &Arc<Runtime>,
        dir: &Path,
        cache_dir: Option<&Path>,
        limits_for: &(dyn Fn(&str) -> PluginLimits + Sync),
    ) -> anyhow::Result<PluginSet> {
        Self::reload_dir(
            runtime,
            dir,
            cache_dir,
            limits_for,
            &PluginSet::default(),
            &|_| false,
        )
        .await
    }

    /// Load `dir` again, reusing every plugin whose file and limits are unchanged, so a reload
    /// costs one hash per file. Where a file is now refused (fails to compile, wrong world,
    /// traps in its smoke test), the previous version at that path keeps serving. Where a
    /// file is gone, its plugin is unloaded unless `referenced` says config still uses it.
    pub async fn reload_dir(
        runtime: &Arc<Runtime>,
        dir: &Path,
        cache_dir: Option<&Path>,
        limits_for: &(dyn Fn(&str) -> PluginLimits + Sync),
        previous: &PluginSet,
        referenced: &(dyn Fn(&str) -> bool + Sync),
    ) -> anyhow::Result<PluginSet> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read plugin folder {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm") && path.is_file())
            .collect();
        // Files that already provide a plugin go first, so a newcomer with a name that is
        // already loaded is the one refused, whatever the file names.
        files.sort_by_key(|path| {
            (
                !previous.plugins.values().any(|p| &p.source == path),
                path.clone(),
            )
        });
        let mut set = PluginSet::default();
        let mut kept_paths = Vec::new();
        for path in files {
            let old = previous.plugins.values().find(|p| p.source == path);
            let mut sha = None;
            let loaded = match std::fs::read(&path) {
                Ok(bytes) => {
                    let sha256 = hex::encode(Sha256::digest(&bytes));
                    sha = Some(sha256.clone());
                    let refused_before = previous.rejected.iter().find(|r| {
                        r.for_its_content
                            && r.path == path
                            && r.sha256.as_deref() == Some(sha256.as_str())
                    });
                    match (old, refused_before) {
                        (_, Some(refused)) => Err(RefusedAgain(refused.reason.clone(), true)),
                        (Some(old), None)
                            if old.sha256 == sha256 && old.limits == limits_for(&old.name) =>
                        {
                            Ok(old.clone())
                        }
                        _ => load_bytes(runtime, &path, bytes, sha256, cache_dir, limits_for)
                            .await
                            .map(Arc::new)
                            .map_err(|e| RefusedAgain(one_line(&format!("{e:#}")), true)),
                    }
                }
                Err(error) => Err(RefusedAgain(format!("cannot read it: {error}"), false)),
            };
            // A file that now holds another plugin (another name or world) would silently
            // remove the one the config uses: refuse it, keep the old one serving.
            let loaded = match (loaded, old) {
                (Ok(new), Some(old))
                    if (new.name != old.name || new.world != old.world)
                        && referenced(&old.name) =>
                {
                    // Not remembered by hash: it loads once the config stops using the old one.
                    Err(RefusedAgain(
                        format!(
                            "it now holds {} plugin '{}' in place of {} plugin '{}', which the config still uses",
                            new.world, new.name, old.world, old.name
                        ),
                        false,
                    ))
                }
                (loaded, _) => loaded,
            };
            let plugin = match loaded {
                Ok(plugin) => plugin,
                Err(RefusedAgain(reason, remember)) => {
                    let new = !previous
                        .rejected
                        .iter()
                        .any(|r| r.path == path && r.sha256 == sha);
                    let kept = old.cloned();
                    if new {
                        match &kept {
                            Some(old) => {
                                tracing::error!(file = %path.display(), "plugin refused, previous version of '{}' keeps serving: {reason}", old.name)
                            }
                            None => {
                                tracing::error!(file = %path.display(), "plugin refused: {reason}")
                            }
                        }
                    }
                    set.rejected.push(Rejected {
                        path: path.clone(),
                        sha256: sha,
                        reason,
                        for_its_content: remember,
                    });
                    match kept {
                        Some(old) => {
                            kept_paths.push(path.clone());
                            old
                        }
                        None => continue,
                    }
                }
            };
            if let Some(existing) = set.plugins.get(&plugin.name) {
                let reason = format!(
                    "plugin name '{}' is already provided by {}",
                    plugin.name,
                    existing.source.display()
                );
                tracing::error!(file = %path.display(), "plugin refused: {reason}");
                set.rejected.push(Rejected {
                    path: path.clone(),
                    sha256: None,
                    reason,
                    for_its_content: false,
                });
                continue;
            }
            set.plugins.insert(plugin.name.clone(), plugin);
        }
        for (name, old) in &previous.plugins {
            if set.plugins.contains_key(name)
                || old.source.is_file()
                || kept_paths.contains(&old.source)
            {
                continue;
            }
            if referenced(name) {
                tracing::warn!(plugin = %name, file = %old.source.display(), "plugin file deleted but the config still uses it; keeping the loaded version");
                set.plugins.insert(name.clone(), old.clone());
            } else {
                tracing::info!(plugin = %name, file = %old.source.display(), "plugin file deleted; unloaded");
            }
        }
        Ok(set)
    }
}

/// Why a file was not loaded (already one line), and whether that holds for its content
/// whatever the config says (then the same content is not tried again).
struct RefusedAgain(String, bool);

/// Error chains from the compiler can span lines (hex dumps); a log line must not.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > 400 {
        format!("{}…", joined.chars().take(400).collect::<String>())
    } else {
        joined
    }
}

/// Compile (or load from cache), identify and smoke-test one component file.
pub async fn load_file(
    runtime: &Arc<Runtime>,
    path: &Path,
    cache_dir: Option<&Path>,
    limits_for: &(dyn Fn(&str) -> PluginLimits + Sync),
) -> anyhow::Result<Plugin> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    load_bytes(runtime, path, bytes, sha256, cache_dir, limits_for).await
}

async fn load_bytes(
    runtime: &Arc<Runtime>,
    path: &Path,
    bytes: Vec<u8>,
    sha256: String,
    cache_dir: Option<&Path>,
    limits_for: &(dyn Fn(&str) -> PluginLimits + Sync),
) -> anyhow::Result<Plugin> {
    let started = Instant::now();
    // Cranelift takes 50 ms (Rust) to 10 s (Python) per component: keep it off the async
    // workers that serve requests.
    let (component, cached) = {
        let engine = runtime.engine().clone();
        let cache_dir = cache_dir.map(Path::to_path_buf);
        let sha256 = sha256.clone();
        tokio::task::spawn_blocking(move || {
            compile_cached(&engine, &bytes, &sha256, cache_dir.as_deref())
        })
        .await
        .context("the compiler thread failed")??
    };
    let engine = runtime.engine();
    let (world, contract) = identify_world(engine, &component)?;
    refuse_ungranted_imports(engine, &component)?;
    let pre = runtime
        .linker()
        .instantiate_pre(&component)
        .map_err(|error| {
            refuse(
                RefusalKind::Exports,
                format!(
                    "its imports cannot be satisfied (plugins may import only WASI 0.2): {error:#}"
                ),
            )
        })?;
    let missing = |error: wasmtime::Error| {
        refuse(
            RefusalKind::Exports,
            format!(
                "it does not export the {world} world of freeway:plugin@{WIT_VERSION} as the \
                 gateway expects (a missing or changed function): {error:#}"
            ),
        )
    };
    let pre = match world {
        PluginWorld::Provider => {
            let indices = provider::ProviderIndices::new(&pre).map_err(missing)?;
            // Optional: absent means the plugin cannot embed. A present one with other
            // signatures fails the smoke test's instantiation below, naming the function.
            let embedder = embedder::GuestIndices::new(&pre).ok();
            WorldPre::Provider {
                pre,
                indices,
                embedder,
            }
        }
        PluginWorld::Router if exports_judging(engine, &component) => WorldPre::JudgedRouter {
            router: router::RouterIndices::new(&pre).map_err(missing)?,
            judging: judging::GuestIndices::new(&pre).map_err(missing)?,
            pre,
        },
        PluginWorld::Router => WorldPre::Router(router::RouterPre::new(pre).map_err(missing)?),
        PluginWorld::Filter => WorldPre::Filter(filter::FilterPre::new(pre).map_err(missing)?),
        PluginWorld::Fitter => WorldPre::Fitter(fitter::FitterPre::new(pre).map_err(missing)?),
    };

    // Smoke test: instantiate once and ask who it is, under default-ish limits.
    let probe_limits = limits_for("");
    let mut store = runtime.new_store(&probe_limits);
    let _awake = runtime.awake();
    store.set_epoch_deadline(1000);
    let metadata = async {
        let bindings = pre.instantiate(&mut store).await?;
        bindings.metadata(&mut store).await
    }
    .await
    .map_err(|error| {
        refuse(
            RefusalKind::Trap,
            format!("its smoke test (instantiate + metadata) failed: {error:#}"),
        )
    })?;
    if metadata.kind != world.kind() {
        return Err(refuse(
            RefusalKind::WrongWorld,
            format!(
                "it exports the {world} world but its metadata says kind {:?}",
                metadata.kind
            ),
        ));
    }
    if metadata.name.is_empty() {
        return Err(refuse(
            RefusalKind::Exports,
            "its metadata has an empty name",
        ));
    }
    let limits = limits_for(&metadata.name);
    let quarantine_after = limits.quarantine_after;
    tracing::info!(
        plugin = %metadata.name,
        version = %metadata.version,
        world = %world,
        file = %path.display(),
        cached,
        load_ms = started.elapsed().as_secs_f64() * 1000.0,
        instances = ?limits.mode,
        "plugin loaded"
    );
    Ok(Plugin {
        name: metadata.name,
        version: metadata.version,
        description: metadata.description,
        world,
        contract,
        embeds: matches!(
            pre,
            WorldPre::Provider {
                embedder: Some(_),
                ..
            }
        ),
        imports: component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect(),
        source: path.to_path_buf(),
        sha256,
        loaded_at: std::time::SystemTime::now(),
        limits,
        stats: PluginStats::default(),
        quarantine: super::Quarantine::new(quarantine_after),
        runtime: runtime.clone(),
        pre,
        idle: Mutex::new(Vec::new()),
    })
}

/// Precompiled artifacts are only valid for the engine that made them: key by both.
fn compile_cached(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    sha256: &str,
    cache_dir: Option<&Path>,
) -> anyhow::Result<(Component, bool)> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let artifact =
        cache_dir.map(|dir| dir.join(format!("{sha256}-{:016x}.cwasm", hasher.finish())));
    if let Some(artifact) = &artifact
        && artifact.is_file()
    {
        // SAFETY: the artifact was written by `precompile_component` of an engine with the
        // same compatibility hash, into a cache folder the operator controls; wasmtime still
        // checks its header and refuses a mismatched one, and we recompile if it does.
        match unsafe { Component::deserialize_file(engine, artifact) } {
            Ok(component) => return Ok((component, true)),
            Err(error) => {
                tracing::warn!(artifact = %artifact.display(), "ignoring unusable cached artifact: {error:#}")
            }
        }
    }
    let compiled = engine
        .precompile_component(bytes)
        .map_err(anyhow::Error::from)
        .map_err(|error| {
            refuse(
                RefusalKind::WrongWorld,
                format!("it is not a valid WebAssembly component: {error:#}"),
            )
        })?;
    if let Some(artifact) = &artifact {
        // Write to a temporary name and rename, so a concurrent start never reads half a file.
        let result = artifact
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| {
                let tmp = artifact.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, &compiled)?;
                std::fs::rename(&tmp, artifact)
            });
        if let Err(error) = result {
            tracing::warn!(artifact = %artifact.display(), "cannot write plugin cache: {error}");
        }
    }
    // SAFETY: `compiled` was produced just now by this engine's `precompile_component`.
    let component = unsafe { Component::deserialize(engine, &compiled)? };
    Ok((component, false))
}
