//! Do the config and the loaded plugins fit together? Every plugin the config names must be
//! loaded and of the right world, and must accept the settings it would be handed. Run at
//! start, by `freeway check` and before every reload swaps anything in.

use crate::config::{Config, ConfigError, ContextFit, error};

use super::{PluginSet, PluginWorld};

/// Check every plugin the config names is loaded and of the right world.
pub fn check_plugins(config: &Config, plugins: &PluginSet) -> Result<(), ConfigError> {
    let expect = |path: String, name: &str, world: PluginWorld| -> Result<(), ConfigError> {
        match plugins.get(name) {
            None => Err(error(
                path,
                format!(
                    "no {world} plugin named '{name}' is loaded from {} (loaded: {})",
                    config.plugin_dir.display(),
                    plugins
                        .plugins
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            Some(p) if p.world != world => Err(error(
                path,
                format!(
                    "plugin '{name}' is a {} plugin, not a {world} plugin",
                    p.world
                ),
            )),
            Some(_) => Ok(()),
        }
    };
    for (i, name) in config.filters.iter().enumerate() {
        expect(format!("pipeline.filters[{i}]"), name, PluginWorld::Filter)?;
    }
    expect(
        "pipeline.default_router".into(),
        &config.default_router,
        PluginWorld::Router,
    )?;
    for (name, provider) in &config.providers {
        expect(
            format!("providers.{name}.adapter"),
            &provider.adapter,
            PluginWorld::Provider,
        )?;
    }
    for (name, model) in &config.models {
        expect(
            format!("models.{name}.router"),
            &model.router,
            PluginWorld::Router,
        )?;
        for (i, filter) in model.filters.iter().enumerate() {
            expect(
                format!("models.{name}.filters[{i}]"),
                filter,
                PluginWorld::Filter,
            )?;
        }
        if let ContextFit::Plugin { name: fitter, .. } = &model.context_fit {
            expect(
                format!("models.{name}.context_fit"),
                fitter,
                PluginWorld::Fitter,
            )?;
        }
    }
    Ok(())
}

/// Ask each plugin the config uses whether the settings it would be handed suit it, so a
/// misspelt or invalid setting is refused at start, by `freeway check` and on reload —
/// naming its key — instead of failing requests later. Call after [`check_plugins`].
pub async fn check_plugin_settings(
    config: &Config,
    plugins: &PluginSet,
) -> Result<(), ConfigError> {
    let mut uses: Vec<(String, &str, &str)> = Vec::new();
    let filters_in_use: std::collections::BTreeSet<&str> = config
        .filters
        .iter()
        .chain(config.models.values().flat_map(|m| m.filters.iter()))
        .map(String::as_str)
        .collect();
    for name in config.filter_settings.keys() {
        if !filters_in_use.contains(name.as_str()) {
            return Err(error(
                format!("pipeline.settings.{name}"),
                format!(
                    "no filter named '{name}' is in use (pipeline.filters or models.*.filters name: {})",
                    if filters_in_use.is_empty() {
                        "none".to_string()
                    } else {
                        filters_in_use
                            .iter()
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
        }
    }
    for name in &filters_in_use {
        let settings = config.filter_settings.get(*name).map_or("{}", |s| s);
        uses.push((format!("pipeline.settings.{name}"), name, settings));
    }
    // Direct `provider/model` requests use the default router without settings.
    uses.push((
        "pipeline.default_router".into(),
        &config.default_router,
        "{}",
    ));
    for (name, provider) in &config.providers {
        uses.push((
            format!("providers.{name}.settings"),
            &provider.adapter,
            &provider.settings,
        ));
    }
    for (name, model) in &config.models {
        uses.push((
            format!("models.{name}.settings"),
            &model.router,
            &model.router_settings,
        ));
        if let ContextFit::Plugin {
            name: fitter,
            settings,
        } = &model.context_fit
        {
            uses.push((
                format!("models.{name}.context_fit_settings"),
                fitter,
                settings,
            ));
        }
    }
    for (path, plugin, settings) in uses {
        let Some(loaded) = plugins.get(plugin) else {
            continue; // `check_plugins` reports it.
        };
        match loaded.check_settings(settings).await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                return Err(error(
                    path,
                    format!("plugin '{plugin}' refused its settings: {why}"),
                ));
            }
            Err(fault) => {
                return Err(error(path, format!("cannot check these settings: {fault}")));
            }
        }
    }
    Ok(())
}
