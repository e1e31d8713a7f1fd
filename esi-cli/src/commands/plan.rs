//! `esi plan WORLD`: what each change will do, before anything touches the network.
//!
//! The plan itself is built by [`esi_core::plan::plan_world`] (pure, secrets masked); this module
//! loads the world, picks the output form and sets the exit code: 0 when every resource could be
//! planned, 1 when some job could not (the plan is printed anyway), 2 on unusable input.

mod text;

use crate::worlddir::load_world;
use crate::Output;
use anyhow::{bail, Result};
use esi_core::model::ResourceRef;
use esi_core::plan::{plan_world, Plan, PlanOptions};
use esi_core::secret::redact;
use esi_core::SeededSuffixes;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

/// The job-id suffix seed of a plan (the same ids as `esi expand` with its default seed).
const SEED: u64 = 0;

/// Prints the plan of a world (optionally of one resource `TYPE/ID`).
pub fn run(world_path: &Path, resource: Option<&str>, output: Output) -> Result<ExitCode> {
    let world = load_world(world_path)?;
    let full = plan_world(
        &world,
        &mut SeededSuffixes::new(SEED),
        PlanOptions::default(),
    );
    let plan = match resource {
        None => full,
        Some(spec) => {
            let key = parse_resource(spec)?;
            match full.only(&key) {
                Some(p) => p,
                None => bail!(
                    "resource {key} is not part of world {}",
                    world_path.display()
                ),
            }
        }
    };
    match output {
        Output::Json => crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&to_json(&plan))?
        ))?,
        Output::Text => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            crate::emit(&text::render(&plan, colour))?;
        }
    }
    Ok(if plan.error_count() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `TYPE/ID` → a reference.
fn parse_resource(spec: &str) -> Result<ResourceRef> {
    match spec.split_once('/') {
        Some((t, i)) if !t.is_empty() && !i.is_empty() => Ok(ResourceRef::new(t, i)),
        _ => bail!("--resource expects TYPE/ID, got `{spec}`"),
    }
}

/// The JSON document: the plan as serialised by esi-core, with [`redact`] applied once more as
/// a last guard (the plan is already masked).
pub fn to_json(plan: &Plan) -> serde_json::Value {
    let mut v = serde_json::to_value(plan).unwrap_or(serde_json::Value::Null);
    redact(&mut v);
    v
}
