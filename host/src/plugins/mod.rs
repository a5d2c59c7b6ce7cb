//! The WebAssembly plugin runtime: owns the wasmtime engine, the epoch ticker, loading and
//! identifying components, and handing out isolated instances for each call.
//!
//! Decisions, and why:
//! - **Calls run on the request's own task**, on a wasmtime fiber (async bindings). Plugin calls
//!   are microseconds long and bounded by an epoch deadline, so a hop to a blocking thread
//!   would cost more than the call. A plugin that loops is interrupted by the deadline, so it
//!   holds a worker for at most `timeout_ms`.
//! - **Pooling allocator.** Instance memories and tables come from pre-reserved slots, which
//!   makes a fresh instance cost ~15–35 µs for a Rust plugin instead of several mmaps.
//! - **`InstancePre` per plugin, built once at load.** Import resolution and type checking happen
//!   at load time, never on the request path; so does compilation (see `registry`).
//! - **Isolation per plugin is configurable** (`instances = "pooled" | "fresh"`). Pooled (the
//!   default) reuses up to `pool_size` idle instances, but only within one [`Tenant`] (one
//!   gateway key): an instance that served key A is never leased to key B, so whatever a
//!   plugin leaves in its memory cannot reach another key's request. Fresh gives every
//!   request a new instance of each plugin. Either way, an instance that faulted is discarded,
//!   never reused, and a fresh instance starts from the module's initial memory.

pub mod bindings;
pub mod contract;
mod epoch;
pub mod fit;
pub mod quarantine;
pub mod registry;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use crate::config::{InstanceMode, PluginLimits};
pub use contract::{PluginWorld, Refusal, RefusalKind, WIT_VERSION};
pub use epoch::Awake;
use epoch::{EPOCH_TICK, Ticker};
pub use quarantine::Quarantine;
pub use registry::PluginSet;

/// Per-store host data: an empty WASI context (no files, no env, no network, no stdio) and the
/// memory limiter.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and remembers whether it refused a grow, so a trap that follows can be
/// reported as "exceeded its memory limit" rather than an opaque `unreachable`.
struct MemoryLimiter {
    max_bytes: usize,
    refused: bool,
    /// Bytes of linear memory the store holds, over all its memories (they never shrink, so
    /// this is also the peak).
    held_bytes: usize,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = true;
            return Ok(false);
        }
        self.held_bytes += desired.saturating_sub(current);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The engine every plugin is compiled for, plus the thread that advances its epoch.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    ticker: Arc<Ticker>,
}

impl Runtime {
    pub fn new() -> anyhow::Result<Self> {
        // Reset-by-scan where the kernel has `PAGEMAP_SCAN` (Linux 6.7+); else the default
        // decommit, since keeping memory resident without the scan memsets whole slots.
        let engine = match Engine::new(&engine_config(true)) {
            Ok(engine) => engine,
            Err(_) => Engine::new(&engine_config(false))?,
        };

        let mut linker = Linker::new(&engine);
        // Plugins get WASI's interfaces (a Rust or Python guest's std imports them) but a
        // context with nothing in it: no preopened dirs, no env, no sockets, no stdio.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;

        let ticker = Arc::new(Ticker::default());
        let ticking_engine = engine.clone();
        let ticking = ticker.clone();
        std::thread::Builder::new()
            .name("freeway-epoch".into())
            .spawn(move || ticking.run(&ticking_engine))?;
        Ok(Self {
            engine,
            linker,
            ticker,
        })
    }

    /// Keep plugin deadlines running while the guard lives: hold one whenever guest code may
    /// run (instantiation, calls).
    pub fn awake(&self) -> Awake {
        Awake::new(&self.ticker)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn linker(&self) -> &Linker<PluginState> {
        &self.linker
    }

    fn new_store(&self, limits: &PluginLimits) -> Store<PluginState> {
        let state = PluginState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                max_bytes: limits.memory_bytes,
                refused: false,
                held_bytes: 0,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store
    }
}

/// The engine's configuration: epoch deadlines, Cranelift at speed, the pooling allocator.
///
/// With `reset_by_scan`, a freed instance's memory is not handed back to the kernel
/// (`madvise`, which on a multi-threaded process costs a TLB shootdown on every core) but
/// reset in place: the `PAGEMAP_SCAN` ioctl finds the pages the instance dirtied and only
/// those are restored from the module's image. Measured with `freeway-plugin-bench`
/// (`priority-fallback`, a fresh instance + one route call, per request): 41 µs with
/// decommit, 21 µs reset by scan; instantiate + drop alone 14.6 → 8.4 µs. `Engine::new`
/// refuses the setting where the kernel lacks the ioctl, and the caller falls back.
fn engine_config(reset_by_scan: bool) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    // Deadlines without fuel: epoch checks cost a load and compare per loop header, fuel
    // costs a counter update per basic block.
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    // Room for a few hundred concurrent calls; a Python/JS guest uses several core
    // instances and memories per component instance.
    pool.total_component_instances(1000);
    pool.total_core_instances(2000);
    pool.total_memories(2000);
    pool.total_tables(2000);
    pool.max_memories_per_component(16);
    pool.max_tables_per_component(16);
    pool.max_core_instances_per_component(64);
    pool.max_component_instance_size(1 << 20);
    pool.max_core_instance_size(1 << 20);
    // Per-plugin caps are enforced by `MemoryLimiter`; this is the ceiling of any slot.
    pool.max_memory_size(1 << 30);
    if reset_by_scan {
        // Up to this much of a freed slot stays resident and is reset page by page; a
        // guest that grew past it has the rest decommitted as before.
        pool.pagemap_scan(wasmtime::Enabled::Yes);
        pool.linear_memory_keep_resident(1 << 20);
        pool.table_keep_resident(64 << 10);
    }
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    config
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

/// Counters shown to the operator.
#[derive(Default, Debug)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub faults: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// Why a plugin call failed, in words an operator can act on. Always names the plugin.
#[derive(Debug, Clone)]
pub struct PluginFault {
    pub plugin: String,
    pub reason: String,
}

impl std::fmt::Display for PluginFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin '{}' {}", self.plugin, self.reason)
    }
}

/// A loaded plugin: its identity, its pre-instantiated component and its instance pool.
pub struct Plugin {
    pub name: String,
    pub version: String,
    pub description: String,
    pub world: PluginWorld,
    /// The `freeway:plugin` version it was built for (on this gateway's compatibility line).
    pub contract: String,
    /// A provider that also exports `freeway:plugin/embedder` (serves `POST /v1/embeddings`).
    pub embeds: bool,
    /// What it imports from the host (WASI interfaces): the capabilities it asks for.
    pub imports: Vec<String>,
    pub source: std::path::PathBuf,
    pub sha256: String,
    pub loaded_at: std::time::SystemTime,
    pub limits: PluginLimits,
    pub stats: PluginStats,
    /// Repeated faults take the plugin out for a while (see `quarantine`).
    pub quarantine: Quarantine,
    runtime: Arc<Runtime>,
    pre: registry::WorldPre,
    /// Idle instances, oldest first, each with the tenant it last served.
    idle: Mutex<Vec<(Tenant, Instance)>>,
}

/// Whose requests an instance may serve: pooled instances are reused only within one tenant.
/// A keyed hash of the gateway key's name (random per process, so no two names can be made
/// to collide); requests without a key share the anonymous tenant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tenant(u64);

impl Tenant {
    /// The tenant of requests made with the gateway key `name`.
    pub fn key(name: &str) -> Self {
        use std::hash::BuildHasher;
        static SEED: std::sync::LazyLock<std::collections::hash_map::RandomState> =
            std::sync::LazyLock::new(Default::default);
        // 0 is the anonymous tenant.
        Tenant(SEED.hash_one(name) | 1)
    }

    /// Requests made without a gateway key (and calls outside any request).
    pub const ANONYMOUS: Tenant = Tenant(0);
}

/// One live instance of a plugin with its store. Returned to the plugin's pool on drop when
/// the plugin is pooled and the instance never faulted.
pub struct Lease {
    plugin: Arc<Plugin>,
    tenant: Tenant,
    instance: Option<Instance>,
    /// Deadlines tick while the lease lives (instantiation included).
    _awake: Awake,
}

struct Instance {
    store: Store<PluginState>,
    bindings: registry::WorldBindings,
    faulted: bool,
    /// A call is under way: a lease dropped now (its request cancelled, a hedge lost) left
    /// the guest mid-call, so the instance is not pooled.
    in_call: bool,
}

impl Plugin {
    /// An instance to make calls on outside any request (settings checks, tools).
    pub async fn lease(self: &Arc<Self>) -> Result<Lease, PluginFault> {
        self.lease_for(Tenant::ANONYMOUS).await
    }

    /// An instance to make calls for `tenant` on: an idle one that last served the same
    /// tenant when the plugin is pooled, else a fresh one.
    pub async fn lease_for(self: &Arc<Self>, tenant: Tenant) -> Result<Lease, PluginFault> {
        if let Err(left) = self.quarantine.check() {
            return Err(PluginFault {
                plugin: self.name.clone(),
                reason: format!(
                    "is quarantined after repeated faults (next try in {} s; last: {})",
                    left.as_millis().div_ceil(1000),
                    self.stats
                        .last_error
                        .lock()
                        .ok()
                        .and_then(|e| e.clone())
                        .unwrap_or_default()
                ),
            });
        }
        let awake = self.runtime.awake();
        if self.limits.mode == InstanceMode::Pooled {
            let idle = self.idle.lock().ok().and_then(|mut idle| {
                let newest = idle.iter().rposition(|(served, _)| *served == tenant)?;
                Some(idle.remove(newest).1)
            });
            if let Some(instance) = idle {
                return Ok(Lease {
                    plugin: self.clone(),
                    tenant,
                    instance: Some(instance),
                    _awake: awake,
                });
            }
        }
        let mut store = self.runtime.new_store(&self.limits);
        store.set_epoch_deadline(self.deadline_ticks());
        let bindings = match self.pre.instantiate(&mut store).await {
            Ok(bindings) => bindings,
            Err(error) => return Err(self.fault(&mut store, error, "instantiate")),
        };
        Ok(Lease {
            plugin: self.clone(),
            tenant,
            instance: Some(Instance {
                store,
                bindings,
                faulted: false,
                in_call: false,
            }),
            _awake: awake,
        })
    }

    /// Whether this router also exports `judging` (it asks a model before it routes).
    pub fn judges(&self) -> bool {
        matches!(self.pre, registry::WorldPre::JudgedRouter { .. })
    }

    /// Ask the plugin whether `settings` suit it: `Ok(Err(why))` when it refuses them. Runs
    /// on its own instance under the plugin's limits, at load and reload only.
    pub async fn check_settings(
        self: &Arc<Self>,
        settings: &str,
    ) -> Result<Result<(), String>, PluginFault> {
        let mut lease = self.lease().await?;
        crate::plugin_call!(lease, "check-settings", |store, exports| exports
            .check_settings(store, settings)
            .await)
    }

    fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_micros().max(1);
        (self.limits.timeout.as_micros().div_ceil(tick) as u64).max(1)
    }

    fn fault(
        &self,
        store: &mut Store<PluginState>,
        error: wasmtime::Error,
        call: &str,
    ) -> PluginFault {
        let reason = match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => format!(
                "timed out after {} ms in {call}",
                self.limits.timeout.as_millis()
            ),
            _ if store.data().limiter.refused => format!(
                "exceeded its memory limit of {} MiB in {call}",
                self.limits.memory_bytes >> 20
            ),
            Some(trap) => format!("trapped in {call}: {trap}"),
            None => format!("failed in {call}: {error:#}"),
        };
        self.record_fault(reason)
    }

    /// Count a fault (the plugin's stats, its quarantine) and describe it.
    fn record_fault(&self, reason: String) -> PluginFault {
        self.stats.faults.fetch_add(1, Ordering::Relaxed);
        if let Some(length) = self.quarantine.fault() {
            tracing::error!(
                plugin = %self.name,
                "plugin quarantined for {} s after {} consecutive faults (last: {reason})",
                length.as_secs(),
                self.quarantine.threshold()
            );
        }
        if let Ok(mut last) = self.stats.last_error.lock() {
            *last = Some(reason.clone());
        }
        let fault = PluginFault {
            plugin: self.name.clone(),
            reason,
        };
        tracing::warn!(plugin = %self.name, "{fault}");
        fault
    }
}

impl Lease {
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Linear memory this instance holds now (and so at its peak: memories never shrink).
    pub fn memory_bytes(&self) -> usize {
        self.instance
            .as_ref()
            .map_or(0, |instance| instance.store.data().limiter.held_bytes)
    }

    /// Start a call into the guest: resets the deadline and hands out the store and exports.
    /// Pair with [`Lease::exit`]; the [`plugin_call!`] macro does both.
    pub fn enter(
        &mut self,
        name: &str,
    ) -> Result<(&mut Store<PluginState>, &registry::WorldBindings), PluginFault> {
        let plugin = &self.plugin;
        let instance = match self.instance.as_mut() {
            Some(instance) if !instance.faulted => instance,
            _ => {
                return Err(PluginFault {
                    plugin: plugin.name.clone(),
                    reason: format!("was called after a fault in {name}"),
                });
            }
        };
        plugin.stats.calls.fetch_add(1, Ordering::Relaxed);
        instance.in_call = true;
        instance.store.set_epoch_deadline(plugin.deadline_ticks());
        Ok((&mut instance.store, &instance.bindings))
    }

    /// The call returned, but what it returned is unusable (not JSON, over the size cap): a
    /// fault like a trap — counted, toward quarantine, and the instance is not reused.
    pub fn refuse_output(&mut self, call: &str, why: &str) -> PluginFault {
        if let Some(instance) = self.instance.as_mut() {
            instance.faulted = true;
        }
        self.plugin
            .record_fault(format!("returned unusable output from {call}: {why}"))
    }

    /// Finish a call: a trap marks the instance as faulted (it is dropped, never pooled) and
    /// becomes a `PluginFault` naming the plugin.
    pub fn exit<R>(&mut self, name: &str, result: wasmtime::Result<R>) -> Result<R, PluginFault> {
        if let Some(instance) = self.instance.as_mut() {
            instance.in_call = false;
        }
        match result {
            Ok(value) => {
                self.plugin.quarantine.success();
                Ok(value)
            }
            Err(error) => {
                let plugin = self.plugin.clone();
                match self.instance.as_mut() {
                    Some(instance) => {
                        instance.faulted = true;
                        Err(plugin.fault(&mut instance.store, error, name))
                    }
                    None => Err(PluginFault {
                        plugin: plugin.name.clone(),
                        reason: format!("failed in {name}: {error:#}"),
                    }),
                }
            }
        }
    }
}

/// One call into a leased plugin instance:
/// `plugin_call!(lease, "route", |store, exports| exports.router()?.call_route(store, ..).await)`.
/// A macro rather than a method taking an async closure, so the caller's future stays `Send`
/// without higher-ranked bounds.
#[macro_export]
macro_rules! plugin_call {
    ($lease:expr, $name:expr, |$store:ident, $exports:ident| $body:expr) => {{
        let lease: &mut $crate::plugins::Lease = &mut $lease;
        let name: &str = $name;
        match lease.enter(name) {
            Err(fault) => Err(fault),
            Ok(($store, $exports)) => {
                let result: wasmtime::Result<_> = async { $body }.await;
                lease.exit(name, result)
            }
        }
    }};
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(instance) = self.instance.take() else {
            return;
        };
        if instance.faulted || instance.in_call || self.plugin.limits.mode != InstanceMode::Pooled {
            return;
        }
        // A full pool drops its oldest idle instance (after the lock is released): the pool
        // follows the tenants that are busy now.
        let _evicted = match self.plugin.idle.lock() {
            Ok(mut idle) => {
                let evicted =
                    (idle.len() >= self.plugin.limits.pool_size.max(1)).then(|| idle.remove(0));
                idle.push((self.tenant, instance));
                evicted
            }
            Err(_) => None,
        };
    }
}
