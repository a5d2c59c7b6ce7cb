//! What a component must be for this gateway to load it — the contract, checked before
//! anything runs: which of the three worlds it exports, the contract version it was built for
//! (and the compatibility policy: the same semver line loads), and the imports it may have
//! (the contract's types and an empty WASI 0.2, nothing else). A refusal is typed, so the
//! loader's log line and `freeway plugin check`'s exit code say the same thing.

use wasmtime::component::Component;

use super::bindings::types;

/// Which of the three worlds a component implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginWorld {
    Provider,
    Router,
    Filter,
}

impl PluginWorld {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginWorld::Provider => "provider",
            PluginWorld::Router => "router",
            PluginWorld::Filter => "filter",
        }
    }

    pub(super) fn interface(self) -> &'static str {
        match self {
            PluginWorld::Provider => "freeway:plugin/adapter@",
            PluginWorld::Router => "freeway:plugin/policy@",
            PluginWorld::Filter => "freeway:plugin/guard@",
        }
    }

    pub(super) fn kind(self) -> types::PluginKind {
        match self {
            PluginWorld::Provider => types::PluginKind::Provider,
            PluginWorld::Router => types::PluginKind::Router,
            PluginWorld::Filter => types::PluginKind::Filter,
        }
    }
}

impl std::fmt::Display for PluginWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an author must fix in a component the gateway refuses; `freeway plugin check` turns it
/// into its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// Not a WebAssembly component, or it exports none (or several) of the three worlds, or
    /// its metadata names another kind than the world it exports.
    WrongWorld,
    /// Built for a contract version this gateway cannot run (another compatibility line).
    Contract,
    /// The world's exports are missing or have other signatures, or it imports more than WASI.
    Exports,
    /// It trapped, timed out or ran out of memory in its smoke test.
    Trap,
}

/// Why a component cannot be loaded: the kind of fault and the whole explanation.
#[derive(Debug)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

pub(super) fn refuse(kind: RefusalKind, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Refusal {
        kind,
        message: message.into(),
    })
}

/// The version of the `freeway:plugin` package this gateway speaks (from `wit/freeway.wit`).
pub const WIT_VERSION: &str = "0.2.1";

/// Whether a component built for contract version `spoken` runs on a gateway speaking `host`:
/// both on the same compatibility line, as semver draws it (the major number from 1.0 on; the
/// minor number while it is 0.x). Within a line the contract only grows by additions the
/// gateway treats as optional, so older and newer builds of the line both load; wasmtime
/// resolves their exports across the line the same way.
pub fn contract_compatible(spoken: &str, host: &str) -> bool {
    fn line(version: &str) -> Option<(u64, u64)> {
        let mut parts = version.split('.');
        let major: u64 = parts.next()?.parse().ok()?;
        let minor: u64 = parts.next()?.parse().ok()?;
        let patch = parts.next()?;
        // A pre-release or build suffix is never on a line with anything else.
        if parts.next().is_some() || patch.parse::<u64>().is_err() {
            return None;
        }
        Some(if major > 0 { (major, 0) } else { (0, minor) })
    }
    // 0.0.x versions are each their own line.
    matches!((line(spoken), line(host)), (Some(a), Some(b)) if a == b && a != (0, 0))
        || spoken == host
}

pub(super) fn identify_world(
    engine: &wasmtime::Engine,
    component: &Component,
) -> anyhow::Result<(PluginWorld, String)> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let worlds: Vec<PluginWorld> = [
        PluginWorld::Provider,
        PluginWorld::Router,
        PluginWorld::Filter,
    ]
    .into_iter()
    .filter(|world| exports.iter().any(|e| e.starts_with(world.interface())))
    .collect();
    match worlds.as_slice() {
        [world] => {
            // A component built against another version of the contract would fail type
            // checking with an opaque message; say what it speaks instead.
            let spoken = exports
                .iter()
                .find_map(|e| e.strip_prefix(world.interface()))
                .unwrap_or_default();
            if !contract_compatible(spoken, WIT_VERSION) {
                return Err(refuse(
                    RefusalKind::Contract,
                    format!(
                        "it was built for freeway:plugin@{spoken}, but this gateway speaks \
                         freeway:plugin@{WIT_VERSION} (compatible: the same {} line): rebuild it \
                         against wit/freeway.wit",
                        compatibility_line(WIT_VERSION)
                    ),
                ));
            }
            Ok((*world, spoken.to_string()))
        }
        [] => Err(refuse(
            RefusalKind::WrongWorld,
            format!(
                "it is not a Freeway plugin: it exports none of freeway:plugin/adapter, policy or guard (exports: {})",
                if exports.is_empty() {
                    "none".to_string()
                } else {
                    exports.join(", ")
                }
            ),
        )),
        _ => Err(refuse(
            RefusalKind::WrongWorld,
            "it exports more than one Freeway world; one component is one plugin",
        )),
    }
}

/// "0.2.x" for 0.2.0, "1.x" for 1.4.2: what `contract_compatible` accepts, for messages.
fn compatibility_line(version: &str) -> String {
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("0.{minor}.x"),
        (Some(major), _) => format!("{major}.x"),
        _ => version.to_string(),
    }
}

/// What a plugin may import: the contract's shared types, and WASI 0.2's interfaces, linked to a context with nothing in it
/// (no files, no environment, no sockets, no stdio), which a Rust, Python or JavaScript
/// guest's standard library imports. Everything else — `wasi:http`, a key-value store, an
/// interface of its own — is a capability this host does not grant.
const GRANTED_IMPORTS: &[&str] = &[
    "freeway:plugin/types@",
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// Refuse at load, naming them, the imports this host does not grant (otherwise the
/// linker's own message is an opaque "import not defined" deep in an error chain).
pub(super) fn refuse_ungranted_imports(
    engine: &wasmtime::Engine,
    component: &Component,
) -> anyhow::Result<()> {
    let ungranted: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !GRANTED_IMPORTS.iter().any(|p| name.starts_with(p)))
        .collect();
    if !ungranted.is_empty() {
        return Err(refuse(
            RefusalKind::Exports,
            format!(
                "it imports {}, which this gateway does not grant: plugins are pure transforms \
                 and may import only WASI 0.2's cli, io, clocks, random, filesystem and sockets \
                 interfaces (with no files, environment or network behind them)",
                ungranted.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version the host checks components against is the one its bindings were made from.
    #[test]
    fn wit_version_is_the_packages() {
        let wit = include_str!("../../../wit/freeway.wit");
        assert!(
            wit.contains(&format!("package freeway:plugin@{WIT_VERSION};")),
            "WIT_VERSION {WIT_VERSION} is not the version wit/freeway.wit declares"
        );
    }

    #[test]
    fn contract_lines_follow_semver() {
        // 0.x: the minor number is the line; older and newer patches load.
        assert!(contract_compatible("0.2.0", "0.2.3"));
        assert!(contract_compatible("0.2.9", "0.2.0"));
        assert!(!contract_compatible("0.1.9", "0.2.0"));
        assert!(!contract_compatible("0.3.0", "0.2.0"));
        // From 1.0: the major number is the line.
        assert!(contract_compatible("1.0.0", "1.4.2"));
        assert!(contract_compatible("1.5.0", "1.4.2"));
        assert!(!contract_compatible("1.4.2", "2.0.0"));
        assert!(!contract_compatible("0.9.0", "1.0.0"));
        // 0.0.x, pre-releases and garbage match only themselves, if at all.
        assert!(!contract_compatible("0.0.1", "0.0.2"));
        assert!(contract_compatible("0.0.1", "0.0.1"));
        assert!(!contract_compatible("0.2.0-rc1", "0.2.0"));
        assert!(!contract_compatible("", "0.2.0"));
        assert_eq!(compatibility_line("0.2.0"), "0.2.x");
        assert_eq!(compatibility_line("1.4.2"), "1.x");
    }
}
