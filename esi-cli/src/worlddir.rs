//! Loading a world from a directory of YAML/JSON files (or from one file).

use anyhow::{Context, Result};
use esi_core::{World, WorldBuilder};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Reads one YAML or JSON file into a JSON value.
pub fn read_document(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_json = path.extension().is_some_and(|e| e == "json");
    if is_json {
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    } else {
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// Every file below `dir` (sorted, recursive) whose extension is one of `exts`.
pub fn files_below(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The files of a world: FILE itself, or every YAML/JSON file below DIR except `changes.*`
/// (scripted changes are not part of the world).
pub fn world_files(path: &Path) -> Result<Vec<PathBuf>> {
    Ok(if path.is_dir() {
        files_below(path, &["yaml", "yml", "json"])?
            .into_iter()
            .filter(|p| p.file_stem().is_none_or(|s| s != "changes"))
            .collect()
    } else {
        vec![path.to_path_buf()]
    })
}

/// Loads a world: a directory (every `*.yaml`, `*.yml`, `*.json` below it, merged in path
/// order, skipping files named `changes.*`) or a single file; then the one validation every
/// command shares ([`esi_core::validate::validate`]): an invalid world is an error (exit 2).
pub fn load_world(path: &Path) -> Result<World> {
    let world = load_unchecked(path)?;
    esi_core::validate::validate(&world).with_context(|| format!("world {}", path.display()))?;
    Ok(world)
}

fn load_unchecked(path: &Path) -> Result<World> {
    let files = world_files(path)?;
    let mut b = WorldBuilder::default();
    for f in &files {
        let doc = read_document(f)?;
        b.merge(&doc, &f.display().to_string())
            .with_context(|| format!("loading {}", f.display()))?;
    }
    Ok(b.build())
}
