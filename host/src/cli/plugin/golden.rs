//! `freeway plugin test FILE.wasm CASES_DIR`: every `*.json` in the folder (sorted, not
//! recursive) holds one case or a list of them; each runs on a fresh instance of the plugin
//! and passes when its `expect` is part of the answer. A case for another world, one without
//! `expect`, or a plugin fault fails it. Prints one line per case and a closing count.

use std::path::Path;

use super::cases::{Case, mismatch};
use super::{Exit, Loaded};

pub async fn run(loaded: &Loaded, dir: &Path) -> Exit {
    let plugin = &loaded.plugin;
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect(),
        Err(error) => {
            eprintln!(
                "freeway: cannot read cases folder {}: {error}",
                dir.display()
            );
            return Exit::Failed;
        }
    };
    files.sort();
    let mut cases = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let parsed = std::fs::read_to_string(file)
            .map_err(anyhow::Error::from)
            .and_then(|text| Case::parse_file(&text, &name));
        match parsed {
            Ok(found) => cases.extend(found.into_iter().map(|case| (name.clone(), case))),
            Err(error) => {
                eprintln!("freeway: {error:#}");
                return Exit::Failed;
            }
        }
    }
    if cases.is_empty() {
        eprintln!("freeway: no cases (*.json) in {}", dir.display());
        return Exit::Failed;
    }
    let (mut passed, mut failed) = (0, 0);
    for (file, case) in &cases {
        let label = format!("{file}: {}", case.name);
        let verdict = if case.call.world() != plugin.world {
            Err(format!(
                "{} is a {} call, but {} is a {} plugin",
                case.call.name(),
                case.call.world(),
                plugin.name,
                plugin.world
            ))
        } else if case
            .expect
            .as_ref()
            .is_some_and(|e| e.as_object().is_some_and(|o| o.is_empty()))
        {
            Err("its \"expect\" is empty, so it could never fail".to_string())
        } else if let Some(expect) = &case.expect {
            match plugin.lease().await {
                Err(fault) => Err(fault.to_string()),
                Ok(mut lease) => match case.run(&mut lease).await {
                    Err(fault) => Err(fault.to_string()),
                    Ok((answer, _)) => match mismatch(expect, &answer) {
                        None => Ok(()),
                        Some(why) => Err(format!("{why}\n      answer: {answer}")),
                    },
                },
            }
        } else {
            Err("it has no \"expect\"".to_string())
        };
        match verdict {
            Ok(()) => {
                passed += 1;
                println!("ok   {label}");
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {label}\n      {why}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 { Exit::Ok } else { Exit::Failed }
}
