//! `esi expand WORLD`: the jobs a world's resources produce, in processing order.

use crate::commands::chain_text;
use crate::worlddir::load_world;
use crate::Output;
use anyhow::Result;
use esi_core::expand::{fold_chain, HandlerDecision};
use esi_core::secret::{
    is_secret_name, redact, redact_params, template_secret_params, Scrubber, MASK,
};
use esi_core::{expand_world, Job, ParamType, ResourceOutcome, SeededSuffixes, World};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Expands every resource of the world and prints the result.
pub fn run(world_path: &Path, output: Output, seed: u64) -> Result<ExitCode> {
    let world = load_world(world_path)?;
    let mut suffixes = SeededSuffixes::new(seed);
    let outcomes = expand_world(&world, &mut suffixes);
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    match output {
        Output::Json => crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&to_json(&world, &outcomes))?
        ))?,
        Output::Text => crate::emit(&to_text(&world, &outcomes))?,
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Per template, the params whose values are secret (hidden Heat parameters, values of
/// secret-bearing Junos statements): computed once per template.
type SecretParams = HashMap<String, BTreeSet<String>>;

fn secret_params(world: &World) -> SecretParams {
    world
        .catalog
        .templates
        .iter()
        .map(|(id, t)| (id.clone(), template_secret_params(&t.template_file)))
        .collect()
}

/// The secret params of the templates picked for a resource.
fn hidden_of(secret: &SecretParams, o: &ResourceOutcome) -> BTreeSet<String> {
    o.decisions
        .iter()
        .filter_map(|d| match d {
            HandlerDecision::Template { template, .. } => secret.get(template),
            _ => None,
        })
        .flatten()
        .cloned()
        .collect()
}

/// Every secret value of the world: secret-named body members and the values of secret or
/// hidden params, to scrub from every text.
fn scrubber_of(world: &World, secret: &SecretParams, outcomes: &[ResourceOutcome]) -> Scrubber {
    let mut s = Scrubber::new();
    for r in world.resources.iter() {
        s.add_secret_members(&r.body);
    }
    for o in outcomes {
        let hidden = hidden_of(secret, o);
        for j in o.result.iter().flatten() {
            for p in &j.params {
                if is_secret_name(&p.param) || hidden.contains(&p.param) {
                    s.add_param_value(p.kind, &p.value);
                }
            }
        }
    }
    s
}

fn to_json(world: &World, outcomes: &[ResourceOutcome]) -> Value {
    let secret = secret_params(world);
    let mut scrubber = scrubber_of(world, &secret, outcomes);
    let mut doc = json!({
        "resources": outcomes.iter().map(|o| json!({
            "resource_type": o.resource.resource_type,
            "resource_id": o.resource.resource_id,
            "version": o.version,
            "action": o.action.as_str(),
            "decisions": o.decisions,
            "jobs": match &o.result {
                Ok(jobs) => jobs.iter().map(|j| json!({"key": esi_core::keys::job(&j.id), "value": j.to_record()})).collect(),
                Err(_) => Vec::new(),
            },
            "error": o.result.as_ref().err().map(|e| e.to_string()),
        })).collect::<Vec<_>>()
    });
    if let Some(list) = doc.get_mut("resources").and_then(Value::as_array_mut) {
        for (item, o) in list.iter_mut().zip(outcomes) {
            redact_params(item, &hidden_of(&secret, o), &mut scrubber);
        }
    }
    scrubber.value(&mut doc);
    doc
}

/// The text tree: resource → template → jobs → params with their source chain.
pub fn to_text(world: &World, outcomes: &[ResourceOutcome]) -> String {
    let world_name = world.name.as_str();
    let secret = secret_params(world);
    let scrubber = scrubber_of(world, &secret, outcomes);
    let mut s = String::new();
    let jobs: usize = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .map(Vec::len)
        .sum();
    let errors = outcomes.iter().filter(|o| o.result.is_err()).count();
    let _ = writeln!(
        s,
        "world {}: {} resources, {} jobs, {} errors",
        if world_name.is_empty() {
            "(unnamed)"
        } else {
            world_name
        },
        outcomes.len(),
        jobs,
        errors
    );
    for o in outcomes {
        let _ = writeln!(s, "\n{}  v{}  {}", o.resource, o.version, o.action.as_str());
        for d in &o.decisions {
            let line = match d {
                HandlerDecision::NoPath { handler } => {
                    format!("{handler}: no template path for this type")
                }
                HandlerDecision::NoTemplate { handler } => {
                    format!("{handler}: template path yields none")
                }
                HandlerDecision::UnknownTemplate { handler, template } => {
                    format!("{handler}: template `{template}` does not exist (skipped)")
                }
                HandlerDecision::Template { handler, template } => {
                    format!("{handler}: template `{template}`")
                }
            };
            let _ = writeln!(s, "  {line}");
        }
        match &o.result {
            Err(e) => {
                let _ = writeln!(s, "  ERROR {}", scrubber.text(&e.to_string()));
            }
            Ok(jobs) if jobs.is_empty() => {
                let _ = writeln!(s, "  (recorded only: READ_COMPLETE, no job)");
            }
            Ok(jobs) => {
                let hidden = hidden_of(&secret, o);
                for j in jobs {
                    write_job(&mut s, j, &hidden, &scrubber);
                }
            }
        }
    }
    s
}

fn write_job(s: &mut String, j: &Job, hidden: &BTreeSet<String>, scrubber: &Scrubber) {
    let mut flags = Vec::new();
    if j.is_first {
        flags.push("first");
    }
    if j.is_last {
        flags.push("last");
    }
    let _ = writeln!(
        s,
        "  job {}  [{}] on_failure={}",
        j.id,
        flags.join(","),
        j.on_failure.as_str()
    );
    if j.dependency.is_empty() {
        let _ = writeln!(s, "    depends on: nothing");
    } else {
        for d in &j.dependency {
            let _ = writeln!(s, "    depends on: {d}");
        }
    }
    let width = j.params.iter().map(|p| p.param.len()).max().unwrap_or(0);
    let mut params: Vec<_> = j.params.iter().collect();
    params.sort_by(|a, b| a.param.cmp(&b.param));
    for p in params {
        let value = if is_secret_name(&p.param) || hidden.contains(&p.param) {
            MASK.to_string()
        } else {
            match p.kind {
                ParamType::OutputKey => describe_output(&p.value),
                ParamType::List => match &p.value {
                    Value::Array(items) => format!(
                        "[{}]",
                        items
                            .iter()
                            .map(|i| describe_output(i.get("value").unwrap_or(&Value::Null)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    other => other.to_string(),
                },
                ParamType::Value => {
                    let mut v = p.value.clone();
                    redact(&mut v);
                    scrubber.value(&mut v);
                    shorten(&v.to_string())
                }
            }
        };
        let (chain, repeated) = fold_chain(&p.resources);
        let chain = chain_text(&chain, repeated);
        let _ = writeln!(
            s,
            "    {:width$}  {:10}  {}{}",
            p.param,
            p.kind.as_str(),
            value,
            if chain.is_empty() {
                String::new()
            } else {
                format!("   via {chain}")
            },
        );
    }
}

fn describe_output(v: &Value) -> String {
    match (
        v.get("resource_type"),
        v.get("resource_id"),
        v.get("output_key"),
    ) {
        (Some(Value::String(t)), Some(Value::String(i)), Some(Value::String(k))) => {
            format!("output `{k}` of {t}/{i}")
        }
        _ => shorten(&v.to_string()),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 72 {
        format!("{}...", s.chars().take(69).collect::<String>())
    } else {
        s.to_string()
    }
}
