//! `freeway plugin new NAME --kind K --lang L`: writes a plugin project from the templates in
//! `plugins/templates` (compiled into the binary, so the command works without a checkout).
//!
//! A project is `templates/<lang>/common/` plus `templates/<lang>/<kind>/`, the WIT contract
//! this gateway speaks (`wit/freeway.wit`), and the kind's golden cases
//! (`templates/cases/<kind>/` → `cases/`). `{{name}}`, `{{name_snake}}`, `{{kind}}` and
//! `{{config}}` in any file are replaced.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use include_dir::{Dir, include_dir};

use super::{Exit, Kind};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../plugins/templates");
const WIT: &str = include_str!("../../../../wit/freeway.wit");

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

impl Lang {
    fn dir(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Provider => "provider",
        Kind::Router => "router",
        Kind::Filter => "filter",
    }
}

/// The config that puts a plugin of this kind to work, for the project's README.
fn config_snippet(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Provider => format!(
            "[providers.my-upstream]\nadapter = \"{name}\"\nbase_url = \"http://127.0.0.1:8000/v1\"\n\
             api_key_env = \"MY_UPSTREAM_KEY\"\nmodels = [\"my-model\"]\n\n\
             [models.my-chat]\ntargets = [\"my-upstream/my-model\"]"
        ),
        Kind::Router => format!(
            "[models.cheapest-first]\nrouter = \"{name}\"\n\
             targets = [\"groq/llama-3.3-70b-versatile\", \"openai/gpt-4o-mini\"]"
        ),
        Kind::Filter => format!("[pipeline]\nfilters = [\"{name}\"]"),
    }
}

/// Lower-case letters, digits and single dashes, starting with a letter: a name that is a
/// valid crate, package, file and C identifier stem alike.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The files of a project: relative path and content.
fn render(name: &str, kind: Kind, lang: Lang) -> Vec<(PathBuf, String)> {
    let snake = name.replace('-', "_");
    let config = config_snippet(kind, name);
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{name_snake}}", &snake)
            .replace("{{kind}}", kind_name(kind))
            .replace("{{config}}", &config)
    };
    let mut files = Vec::new();
    let sources = [
        (format!("{}/common", lang.dir()), PathBuf::new()),
        (
            format!("{}/{}", lang.dir(), kind_name(kind)),
            PathBuf::new(),
        ),
        (format!("cases/{}", kind_name(kind)), PathBuf::from("cases")),
    ];
    for (from, to) in sources {
        if let Some(dir) = TEMPLATES.get_dir(&from) {
            collect(dir, Path::new(&from), &to, &fill, &mut files);
        }
    }
    files.push((PathBuf::from("wit/freeway.wit"), WIT.to_string()));
    files
}

fn collect(
    dir: &Dir<'static>,
    root: &Path,
    to: &Path,
    fill: &dyn Fn(&str) -> String,
    out: &mut Vec<(PathBuf, String)>,
) {
    for file in dir.files() {
        if let (Ok(relative), Some(text)) = (file.path().strip_prefix(root), file.contents_utf8()) {
            out.push((to.join(relative), fill(text)));
        }
    }
    for sub in dir.dirs() {
        collect(sub, root, to, fill, out);
    }
}

pub fn run(name: &str, kind: Kind, lang: Lang, dir: Option<&Path>) -> Exit {
    if !valid_name(name) {
        eprintln!(
            "freeway: '{name}' is not a plugin name: use lower-case letters, digits and single \
             dashes, starting with a letter (e.g. my-router)"
        );
        return Exit::Failed;
    }
    let dest = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dest.exists()
        && std::fs::read_dir(&dest).map_or(true, |mut entries| entries.next().is_some())
    {
        eprintln!(
            "freeway: {} already exists and is not empty; choose another --dir",
            dest.display()
        );
        return Exit::Failed;
    }
    for (path, text) in render(name, kind, lang) {
        let path = dest.join(path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text))
            .and_then(|()| make_executable(&path));
        if let Err(error) = written {
            eprintln!("freeway: cannot write {}: {error}", path.display());
            return Exit::Failed;
        }
    }
    println!(
        "wrote {} {} plugin '{name}' to {}: cd there, run `make`, then read README.md",
        lang.dir(),
        kind_name(kind),
        dest.display()
    );
    Exit::Ok
}

/// Scripts keep their execute bit (the binary's copy of the templates has no modes).
fn make_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if path.extension().is_some_and(|e| e == "sh") {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_has_sources_cases_and_no_leftover_placeholder() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js, Lang::C] {
            for kind in [Kind::Provider, Kind::Router, Kind::Filter] {
                let files = render("my-plugin", kind, lang);
                let names: Vec<_> = files.iter().map(|(p, _)| p.display().to_string()).collect();
                for needed in ["README.md", "Makefile", "wit/freeway.wit"] {
                    assert!(
                        names.iter().any(|n| n == needed),
                        "{lang:?}/{kind:?}: {names:?}"
                    );
                }
                assert!(names.iter().any(|n| n.starts_with("cases/")), "{names:?}");
                for (path, text) in &files {
                    assert!(!text.contains("{{"), "{}: placeholder left", path.display());
                }
            }
        }
    }

    #[test]
    fn rust_templates_pin_the_repositorys_wit_bindgen() {
        let workspace = include_str!("../../../../Cargo.toml");
        let pin = workspace
            .lines()
            .find(|l| l.starts_with("wit-bindgen = "))
            .and_then(|l| l.split('"').nth(1))
            .expect("the workspace pins wit-bindgen");
        let template = TEMPLATES
            .get_file("rust/common/Cargo.toml")
            .and_then(|f| f.contents_utf8())
            .expect("rust template");
        assert!(
            template.contains(&format!("version = \"{pin}\"")),
            "template must pin {pin}"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("my-router2"));
        for bad in ["", "My", "1x", "a_b", "a-", "a--b", "../x"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
