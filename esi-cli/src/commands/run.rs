//! `esi run WORLD [--changes FILE]`: the whole system on the embedded default.

use crate::commands::write_device_diffs;
use crate::worlddir::{load_world, read_document};
use crate::Output;
use anyhow::{Context, Result};
use esi_core::plan::changes::phase_diffs;
use esi_core::runtime::embedded::{self, EmbeddedOptions, Phase};
use esi_core::runtime::sim::Change;
use esi_core::secret::redact;
use serde_json::json;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

/// Runs a world to quiescence, applies scripted changes, prints the final state.
pub fn run(
    world_path: &Path,
    changes: Option<&Path>,
    output: Output,
    seed: u64,
    full: bool,
) -> Result<ExitCode> {
    let world = load_world(world_path)?;
    let changes: Vec<Change> = match changes {
        Some(p) => read_changes(p)?,
        None => Vec::new(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let options = EmbeddedOptions {
        seed,
        ..EmbeddedOptions::default()
    };
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(changes.len() as u64 + 1);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut progress = |label: &str, done: usize, _total: usize| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
            b.set_message(label.to_string());
        }
    };
    let phases = rt.block_on(embedded::run_with_progress(
        &world,
        &changes,
        &options,
        &mut progress,
    ))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let errors = phases
        .last()
        .map(|p| {
            p.resources
                .iter()
                .filter(|r| {
                    r.worker_state
                        .as_deref()
                        .is_some_and(|s| s.ends_with("_ERROR"))
                })
                .count()
        })
        .unwrap_or(0);
    match output {
        Output::Json => {
            let mut doc = match phases.last() {
                Some(last) => json!({
                    "resources": last.resources,
                    "devices": last.devices,
                    "phases": phases,
                }),
                None => json!({"resources": [], "devices": {}, "phases": []}),
            };
            redact(&mut doc);
            crate::emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        }
        Output::Text => crate::emit(&to_text(&phases, full))?,
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Reads a changes file (`{op: create|modify|delete, type, id, body}` list).
pub fn read_changes(p: &Path) -> Result<Vec<Change>> {
    serde_json::from_value(read_document(p)?)
        .with_context(|| format!("reading changes from {}", p.display()))
}

/// Per phase: the resource table (ids whole), then each router's configuration diff against
/// the previous phase (`full`: the whole configuration).
pub fn to_text(phases: &[Phase], full: bool) -> String {
    let mut s = String::new();
    let diffs = phase_diffs(phases);
    for (i, p) in phases.iter().enumerate() {
        let _ = writeln!(
            s,
            "{}== after {} ({}/{})",
            if i > 0 { "\n" } else { "" },
            p.label,
            i + 1,
            phases.len()
        );
        for f in &p.faults {
            let _ = writeln!(s, "   fault injected: {f}");
        }
        let rows: Vec<[String; 6]> = p
            .resources
            .iter()
            .map(|r| {
                let mut monitoring = r.monitoring.clone().unwrap_or(serde_json::Value::Null);
                redact(&mut monitoring);
                [
                    format!("{}/{}", r.resource_type, r.id),
                    r.version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "deleted".into()),
                    r.worker_state.clone().unwrap_or_else(|| "-".into()),
                    r.orchestration_state
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "-".into()),
                    if monitoring.is_null() {
                        "-".into()
                    } else {
                        monitoring.to_string()
                    },
                    r.error
                        .clone()
                        .filter(|e| !e.is_empty())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        let header = [
            "resource",
            "version",
            "worker_state",
            "orchestration_state",
            "monitoring",
            "error",
        ];
        let widths: Vec<usize> = (0..5)
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].chars().count())
                    .chain([header[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cols: [&str; 6]| {
            let mut l = String::from("   ");
            for (c, w) in widths.iter().enumerate() {
                let _ = write!(l, "{:w$}  ", cols[c], w = *w);
            }
            l.push_str(cols[5]);
            l.trim_end().to_string()
        };
        let _ = writeln!(s, "{}", line(header));
        for r in &rows {
            let _ = writeln!(s, "{}", line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
        }
        if !full {
            match diffs.get(i) {
                Some(d) if !d.is_empty() => write_device_diffs(&mut s, d),
                _ => {
                    let _ = writeln!(s, "\n   (no router configuration changed)");
                }
            }
            continue;
        }
        for (name, config) in &p.devices {
            let _ = writeln!(s, "\n   router {name}:");
            if config.trim().is_empty() {
                let _ = writeln!(s, "     (empty configuration)");
            }
            for l in config.lines() {
                let _ = writeln!(s, "     {l}");
            }
        }
    }
    s
}
