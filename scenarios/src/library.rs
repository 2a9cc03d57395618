//! The library of scenarios: every `*.toml` of one directory, each known by its file's name
//! (`lossy-pon` is `lossy-pon.toml`), so that `scenario run lossy-pon` runs it from anywhere.
//!
//! Where the library is, first found wins: `--library DIR`, then the environment variable
//! [`LIBRARY_ENV`], then the `scenarios/` folder of the source tree this tool was built from
//! (so `cargo run -p scenarios -- list` finds it, from the repository or elsewhere).

use std::path::{Path, PathBuf};

use crate::spec::{self, Scenario, SpecError};

/// The environment variable that names the library's directory.
pub const LIBRARY_ENV: &str = "SCENARIO_LIBRARY";

/// The library's directory: `flag`, else [`LIBRARY_ENV`], else the source tree's
/// `scenarios/` when it still exists; why none, otherwise.
pub fn dir(flag: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(d) = flag {
        return Ok(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os(LIBRARY_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR"));
    if built_from.is_dir() {
        return Ok(built_from.to_path_buf());
    }
    Err(format!(
        "no scenario library: {} (where this tool was built) is gone; set {LIBRARY_ENV} or give \
         --library DIR",
        built_from.display()
    ))
}

/// The library's scenario files, by name: every `*.toml` of `dir` but `Cargo.toml`.
pub fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("the scenario library {}: {e}", dir.display()))?;
    let mut files: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.ends_with("Cargo.toml"))
        .filter(|p| p.is_file())
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
        .collect();
    files.sort();
    Ok(files)
}

/// A scenario of the library.
#[derive(Debug)]
pub struct Entry {
    /// Its name: its file's, without `.toml`.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// It, or why it does not read.
    pub scenario: Result<Scenario, SpecError>,
}

/// Every scenario of the library, read.
pub fn scenarios(dir: &Path) -> Result<Vec<Entry>, String> {
    Ok(files(dir)?
        .into_iter()
        .map(|(name, path)| Entry {
            scenario: spec::load(&path),
            name,
            path,
        })
        .collect())
}

/// The file `arg` names: itself when it is a file, or a path (it has a `/`, or ends in
/// `.toml`); else the library's scenario of that name. The error is one line: no such
/// scenario, the names that come closest, and where the library is.
pub fn resolve(arg: &Path, flag: Option<&Path>) -> Result<PathBuf, String> {
    let text = arg.to_string_lossy();
    let is_name = arg.components().count() == 1
        && !text.contains('/')
        && !text.ends_with(".toml")
        && !text.is_empty();
    if arg.is_file() || !is_name {
        return Ok(arg.to_path_buf());
    }
    let dir = dir(flag).map_err(|why| format!("{text:?} is not a file, and {why}"))?;
    let files = files(&dir)?;
    if let Some((_, path)) = files.iter().find(|(name, _)| *name == text) {
        return Ok(path.clone());
    }
    let mut close: Vec<(f64, &str)> = files
        .iter()
        .map(|(name, _)| (strsim::jaro_winkler(&text, name), name.as_str()))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let hint = match close.first() {
        Some((_, name)) => format!(" (did you mean {name}?)"),
        None => String::new(),
    };
    Err(format!(
        "{text:?} is neither a file nor a scenario of the library {}{hint}; `scenario list` \
         shows them",
        dir.display()
    ))
}

/// `scenario list`: a line per scenario of the library (its name and description, aligned),
/// and for each file that does not read, why (the caller writes those to standard error).
pub fn list(dir: &Path) -> Result<(String, Vec<String>), String> {
    let all = scenarios(dir)?;
    let width = all
        .iter()
        .filter(|e| e.scenario.is_ok())
        .map(|e| e.name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let mut broken = Vec::new();
    for e in &all {
        match &e.scenario {
            Ok(s) => {
                let line = format!("{:<width$}  {}", e.name, s.description.trim());
                out.push_str(line.trim_end());
                out.push('\n');
            }
            Err(why) => broken.push(why.to_string()),
        }
    }
    Ok((out, broken))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "name = \"one\"\ndescription = \"the first\"\n[topology]\nonus = 1\n\
                       [image]\nversion = \"V2\"\n";

    #[test]
    fn a_name_is_the_librarys_file_and_a_path_is_itself() {
        let lib = tempfile::tempdir().unwrap();
        std::fs::write(lib.path().join("one.toml"), ONE).unwrap();
        std::fs::write(lib.path().join("Cargo.toml"), "[package]\n").unwrap();
        let flag = Some(lib.path());
        assert_eq!(
            resolve(Path::new("one"), flag).unwrap(),
            lib.path().join("one.toml")
        );
        for path in ["x/one", "one.toml", "./one"] {
            assert_eq!(resolve(Path::new(path), flag).unwrap(), Path::new(path));
        }
        let err = resolve(Path::new("onr"), flag).unwrap_err();
        assert!(err.contains("did you mean one?"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        assert!(resolve(Path::new("Cargo"), flag).is_err());
    }

    #[test]
    fn the_list_is_a_line_per_file_and_names_the_broken_ones() {
        let lib = tempfile::tempdir().unwrap();
        std::fs::write(lib.path().join("one.toml"), ONE).unwrap();
        std::fs::write(lib.path().join("two.toml"), "name = 3\n").unwrap();
        let (out, broken) = list(lib.path()).unwrap();
        assert_eq!(out, "one  the first\n");
        assert_eq!(broken.len(), 1);
        assert!(broken[0].contains("two.toml"), "{broken:?}");
    }

    #[test]
    fn the_source_trees_library_is_found_without_a_flag() {
        // (Unless the environment names another.)
        if std::env::var_os(LIBRARY_ENV).is_none() {
            let d = dir(None).unwrap();
            assert!(d.join("quickstart.toml").is_file(), "{}", d.display());
        }
    }
}
