//! `esi plan WORLD`: what each change will do, before anything touches the network.
//!
//! The plan itself is built by [`esi_core::plan::plan_world`] (pure, secrets masked); this module
//! loads the world, picks the output form and sets the exit code: 0 when every resource could be
//! planned, 1 when some job could not (the plan is printed anyway), 2 on unusable input.

mod changes;
mod text;

pub use changes::run_changes;

use crate::worlddir::load_world;
use crate::Output;
use anyhow::{bail, Context, Result};
use esi_core::model::ResourceRef;
use esi_core::plan::{plan_world, Plan, PlanOptions};
use esi_core::secret::redact;
use esi_core::{SeededSuffixes, World};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

/// The job-id suffix seed of a plan (the same ids as `esi expand` with its default seed).
const SEED: u64 = 0;

/// Prints the plan of a world (optionally of one resource `TYPE/ID`).
pub fn run(world_path: &Path, resource: Option<&str>, output: Output) -> Result<ExitCode> {
    let world = load_world(world_path)?;
    let key = match resource {
        Some(spec) => Some(
            resolve_resource(&world, spec)
                .with_context(|| format!("--resource {spec} in world {}", world_path.display()))?,
        ),
        None => None,
    };
    let options = PlanOptions {
        only: key.as_ref(),
        ..PlanOptions::default()
    };
    let full = plan_world(&world, &mut SeededSuffixes::new(SEED), options);
    let plan = match &key {
        None => full,
        Some(key) => match full.only(key) {
            Some(p) => p,
            None => bail!(
                "resource {key} is not part of world {}",
                world_path.display()
            ),
        },
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

/// `TYPE/ID`, or a unique prefix of it or of an id → the resource of the world it names.
/// An exact `TYPE/ID` always wins; an ambiguous prefix is an error listing the candidates.
pub fn resolve_resource(world: &World, spec: &str) -> Result<ResourceRef> {
    if spec.is_empty() {
        bail!("--resource expects TYPE/ID (or a unique prefix), got nothing");
    }
    if let Some((t, i)) = spec.split_once('/') {
        if world.resources.get(t, i).is_some() {
            return Ok(ResourceRef::new(t, i));
        }
    }
    let mut matches: Vec<ResourceRef> = world
        .resources
        .iter()
        .filter(|r| r.key.to_string().starts_with(spec) || r.key.resource_id.starts_with(spec))
        .map(|r| r.key.clone())
        .collect();
    matches.sort();
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => bail!("no resource `{spec}` (expected TYPE/ID or a unique prefix of one)"),
        n => bail!(
            "`{spec}` is ambiguous: {n} resources match ({}{})",
            matches
                .iter()
                .take(5)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if n > 5 { ", …" } else { "" }
        ),
    }
}

/// The JSON document: the plan as serialised by esi-core, with [`redact`] applied once more as
/// a last guard (the plan is already masked).
pub fn to_json(plan: &Plan) -> serde_json::Value {
    let mut v = serde_json::to_value(plan).unwrap_or(serde_json::Value::Null);
    redact(&mut v);
    v
}
