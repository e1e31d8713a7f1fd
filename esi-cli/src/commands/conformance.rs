//! `esi conformance PATH...`: run golden cases and report.

use crate::worlddir::{files_below, read_document};
use crate::Output;
use anyhow::Result;
use esi_core::conformance::{case_kind, case_world, run_case, Verdict};
use esi_core::secret::mask_junos_text;
use esi_core::World;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

struct Outcome {
    id: String,
    kind: String,
    verdict: Verdict,
}

/// Whether a kind is one this build runs.
fn known_kind(kind: &str) -> bool {
    esi_core::conformance::WORLD_KINDS.contains(&kind)
        || esi_core::exec::conformance::EXEC_KINDS.contains(&kind)
}

/// The JSON files below a directory that must be cases: everything except the worlds
/// (`worlds/` directories) and corpus indexes (`*index.json`).
fn case_files_below(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(files_below(dir, &["json"])?
        .into_iter()
        .filter(|f| {
            let rel = f.strip_prefix(dir).unwrap_or(f);
            !rel.components().any(|c| c.as_os_str() == "worlds")
                && !f
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with("index.json"))
        })
        .collect())
}

/// Runs every case below `paths`. Unusable input is an error (exit 2): a path without any case,
/// a file that is not a case, a kind this build does not know, a case's `world` outside the
/// corpus.
pub fn run(paths: &[PathBuf], output: Output, strict: bool) -> Result<ExitCode> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let found = case_files_below(p)?;
            if found.is_empty() {
                anyhow::bail!("{}: no conformance case below this directory", p.display());
            }
            files.extend(found);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    let mut worlds: HashMap<PathBuf, Result<World, String>> = HashMap::new();
    let mut outcomes = Vec::new();
    let mut unusable = Vec::new();
    for f in &files {
        let case = match read_document(f) {
            Ok(v) => v,
            Err(e) => {
                outcomes.push(Outcome {
                    id: f.display().to_string(),
                    kind: "?".into(),
                    verdict: Verdict::Fail(vec![format!("{e:#}")]),
                });
                continue;
            }
        };
        let Some(kind) = case_kind(&case).map(str::to_string) else {
            unusable.push(format!(
                "{}: not a conformance case (no `kind`)",
                f.display()
            ));
            continue;
        };
        if !known_kind(&kind) {
            unusable.push(format!("{}: unknown case kind `{kind}`", f.display()));
            continue;
        }
        let id = case
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| f.display().to_string());
        let verdict = match case_world(&case) {
            Some(name) => match world_for(f, name, &mut worlds) {
                Ok(w) => run_case(&case, Some(w), strict),
                Err(WorldError::Unusable(e)) => {
                    unusable.push(e);
                    continue;
                }
                Err(WorldError::Broken(e)) => Verdict::Fail(vec![e]),
            },
            None => run_case(&case, None, strict),
        };
        outcomes.push(Outcome { id, kind, verdict });
    }
    if !unusable.is_empty() {
        anyhow::bail!("unusable conformance input:\n  {}", unusable.join("\n  "));
    }
    report(&outcomes, output)
}

enum WorldError {
    /// The case itself is unusable (exit 2).
    Unusable(String),
    /// The world could not be read or loaded (the case fails).
    Broken(String),
}

fn world_for<'w>(
    case_file: &Path,
    name: &str,
    cache: &'w mut HashMap<PathBuf, Result<World, String>>,
) -> Result<&'w World, WorldError> {
    let dir = case_file
        .ancestors()
        .skip(1)
        .find(|d| d.join("worlds").is_dir())
        .ok_or_else(|| {
            WorldError::Broken(format!(
                "no `worlds/` directory above {}",
                case_file.display()
            ))
        })?;
    let worlds = dir.join("worlds");
    let path = worlds.join(format!("{name}.json"));
    let outside = || {
        WorldError::Unusable(format!(
            "{}: world `{name}` resolves outside the corpus ({})",
            case_file.display(),
            worlds.display()
        ))
    };
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(outside());
    }
    if let (Ok(root), Ok(real)) = (worlds.canonicalize(), path.canonicalize()) {
        if !real.starts_with(&root) {
            return Err(outside());
        }
    }
    let entry = cache.entry(path.clone()).or_insert_with(|| {
        read_document(&path)
            .map_err(|e| format!("{e:#}"))
            .and_then(|doc| {
                World::from_json(&doc).map_err(|e| format!("world {}: {e}", path.display()))
            })
    });
    entry.as_ref().map_err(|e| WorldError::Broken(e.clone()))
}

fn report(outcomes: &[Outcome], output: Output) -> Result<ExitCode> {
    let passed = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Pass)
        .count();
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Fail(_)))
        .collect();
    let mut skipped_by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let mut passed_by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for o in outcomes {
        match o.verdict {
            Verdict::Skip => *skipped_by_kind.entry(&o.kind).or_default() += 1,
            Verdict::Pass => *passed_by_kind.entry(&o.kind).or_default() += 1,
            Verdict::Fail(_) => {}
        }
    }
    let skipped: usize = skipped_by_kind.values().sum();
    match output {
        Output::Json => {
            let doc = json!({
                "passed": passed,
                "failed": failed.len(),
                "skipped": skipped,
                "passed_by_kind": passed_by_kind,
                "skipped_by_kind": skipped_by_kind,
                "failures": failed.iter().map(|o| json!({
                    "id": o.id,
                    "kind": o.kind,
                    "diff": match &o.verdict { Verdict::Fail(l) => l.iter().map(|l| mask_junos_text(l)).collect(), _ => Vec::new() },
                })).collect::<Vec<_>>(),
            });
            crate::emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        }
        Output::Text => {
            let mut s = String::new();
            for o in &failed {
                let _ = writeln!(s, "FAIL {} ({})", o.id, o.kind);
                if let Verdict::Fail(lines) = &o.verdict {
                    for l in lines {
                        let _ = writeln!(s, "    {}", mask_junos_text(l));
                    }
                }
            }
            if !passed_by_kind.is_empty() {
                let parts: Vec<String> = passed_by_kind
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                let _ = writeln!(s, "passed by kind: {}", parts.join(", "));
            }
            if !skipped_by_kind.is_empty() {
                let parts: Vec<String> = skipped_by_kind
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "skipped (kinds this build does not run): {}",
                    parts.join(", ")
                );
            }
            let _ = writeln!(
                s,
                "{passed} passed, {} failed, {skipped} skipped",
                failed.len()
            );
            crate::emit(&s)?;
        }
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
