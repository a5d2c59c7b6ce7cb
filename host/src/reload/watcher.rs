//! Watching what a reload depends on — the config file, its catalogs, the plugin folder — and
//! turning completed changes into debounced reloads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::Config;

use super::Reloader;

/// How long the watched folders must be quiet before a reload runs.
const DEBOUNCE: Duration = Duration::from_millis(60);

/// The files and folders a reload depends on.
#[derive(Default, Debug)]
pub(super) struct Watched {
    config_files: Vec<PathBuf>,
    plugin_dir: PathBuf,
    dirs: Vec<PathBuf>,
}

impl Watched {
    fn of(config_path: &Path, config: &Config) -> Watched {
        let mut config_files = vec![absolute(config_path)];
        config_files.extend(config.catalog_files.iter().map(|p| absolute(p)));
        let plugin_dir = absolute(&config.plugin_dir);
        let mut dirs: Vec<PathBuf> = config_files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .chain([plugin_dir.clone()])
            // The plugin folder's parent too: a deploy may rename a whole new folder into place.
            .chain(plugin_dir.parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        Watched {
            config_files,
            plugin_dir,
            dirs,
        }
    }

    fn relevant(&self, path: &Path) -> bool {
        self.config_files.iter().any(|f| f == path)
            || path == self.plugin_dir
            || (path.parent() == Some(self.plugin_dir.as_path())
                && path.extension().is_some_and(|e| e == "wasm"))
    }
}

impl Reloader {
    /// Point the watcher at what `config` depends on (new catalogs, a new plugin folder).
    pub(super) fn watch_files_of(&self, config: &Config) {
        let next = Watched::of(&self.config_path, config);
        if let Ok(mut watcher) = self.watcher.lock()
            && let Some(watcher) = watcher.as_mut()
            && let Ok(current) = self.watched.read()
        {
            for dir in next.dirs.iter().filter(|d| !current.dirs.contains(d)) {
                if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                    tracing::warn!(dir = %dir.display(), "cannot watch: {error}");
                }
            }
            // A watch follows the folder it was made on; if a new folder was renamed into
            // place, watch the one that is there now.
            let _ = watcher.unwatch(&next.plugin_dir);
            if let Err(error) = watcher.watch(&next.plugin_dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %next.plugin_dir.display(), "cannot watch the plugin folder: {error}");
            }
        }
        if let Ok(mut watched) = self.watched.write() {
            *watched = next;
        }
    }
}

/// Start watching the config, its catalogs and the plugin folder.
pub fn watch(reloader: Arc<Reloader>) -> anyhow::Result<()> {
    let snapshot = reloader.gateway.snapshot.load_full();
    let watched = Watched::of(&reloader.config_path, &snapshot.config);
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let relevant = reloader.watched.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        // A completed write or a rename into place; never a bare create or modify, which a
        // file still being written also produces.
        let completes_a_change = matches!(
            event.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Remove(_)
                | EventKind::Modify(ModifyKind::Name(_))
        );
        let Ok(watched) = relevant.read() else { return };
        if completes_a_change && event.paths.iter().any(|p| watched.relevant(p)) {
            let _ = tx.send(());
        }
    })?;
    for dir in &watched.dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    tracing::info!(
        plugins = %watched.plugin_dir.display(),
        config = %reloader.config_path.display(),
        "watching for changes"
    );
    if let Ok(mut slot) = reloader.watched.write() {
        *slot = watched;
    }
    if let Ok(mut slot) = reloader.watcher.lock() {
        *slot = Some(watcher);
    }
    tokio::spawn(debounce_and_reload(reloader, rx));
    Ok(())
}

async fn debounce_and_reload(reloader: Arc<Reloader>, mut rx: mpsc::UnboundedReceiver<()>) {
    while rx.recv().await.is_some() {
        // Wait until no event arrived for DEBOUNCE.
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
        let _ = reloader.reload("file change").await;
    }
}

fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
    };
    // Normalise `a/../b` without touching the filesystem, so event paths compare equal.
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
