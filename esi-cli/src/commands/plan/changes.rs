//! `esi plan WORLD --changes FILE`: per phase what each change would do (jobs, stacks, router
//! diffs) and a Terraform-style summary. Built by [`esi_core::plan::changes::plan_changes`].

use crate::commands::run::read_changes;
use crate::commands::write_device_diffs;
use crate::worlddir::load_world;
use crate::Output;
use anyhow::Result;
use esi_core::plan::changes::{plan_changes, ChangePlan};
use esi_core::runtime::embedded::EmbeddedOptions;
use esi_core::secret::redact;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Plans the changes; the exit code is 1 when a change cannot be expanded, else with
/// `detailed_exitcode` 2 when something would change and 0 when not.
pub fn run_changes(
    world_path: &Path,
    changes_path: &Path,
    output: Output,
    detailed_exitcode: bool,
) -> Result<ExitCode> {
    let world = load_world(world_path)?;
    let changes = read_changes(changes_path)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let plan = rt.block_on(plan_changes(&world, &changes, &EmbeddedOptions::default()))?;
    match output {
        Output::Json => {
            let mut doc = serde_json::to_value(&plan)?;
            redact(&mut doc);
            crate::emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        }
        Output::Text => crate::emit(&to_text(&plan))?,
    }
    let errors: usize = plan.phases.iter().map(|p| p.errors.len()).sum();
    Ok(if errors > 0 {
        ExitCode::FAILURE
    } else if detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The text form: per phase its summary, jobs (not for the load), stacks and router diffs;
/// then the summary of the changes.
pub fn to_text(plan: &ChangePlan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "plan of {} changes to world {}",
        plan.phases.len().saturating_sub(1),
        if plan.world.is_empty() {
            "(unnamed)"
        } else {
            &plan.world
        }
    );
    let n = plan.phases.len();
    for (i, p) in plan.phases.iter().enumerate() {
        let _ = writeln!(s, "\n== {} ({}/{}): {}", p.label, i + 1, n, p.summary);
        for e in &p.errors {
            let _ = writeln!(s, "   ERROR {e}");
        }
        if i == 0 {
            let _ = writeln!(
                s,
                "   {} jobs, {} stacks to create (`esi plan` without --changes lists them)",
                p.jobs.len(),
                p.stacks.len()
            );
        } else {
            for j in &p.jobs {
                let _ = writeln!(
                    s,
                    "   job {}  {} {} {}",
                    j.id,
                    j.action.as_str(),
                    j.handler,
                    j.resource
                );
            }
            for (r, c) in &p.stacks {
                let _ = writeln!(s, "   stack {} {r}", c.as_str());
            }
        }
        if p.devices.is_empty() {
            let _ = writeln!(s, "\n   (no router configuration changed)");
        } else {
            write_device_diffs(&mut s, &p.devices);
        }
    }
    let _ = writeln!(s, "\nPlan: {}", plan.summary);
    s
}
