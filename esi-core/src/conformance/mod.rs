//! Checking esi against the recorded golden cases (`shared/conformance/`).
//!
//! This module is pure: the caller reads case files and worlds and hands them in as JSON.
//! Comparison rules are those of the corpus README: params compared as a set keyed by name,
//! dependencies as a set, the random id suffix masked as `*`, JSON types significant.

pub mod compare;

use crate::catalog::HEAT_WORKER;
use crate::expand::{expand, ChangeEvent, EventAction, InFlight, SeededSuffixes};
use crate::mapping::ResourceView;
use crate::model::{Job, Resource, ResourceRef};
use crate::world::{resource_entry, Overlay, World};
use serde_json::Value;
use std::collections::HashMap;

/// The case kinds this build checks against a world.
pub const WORLD_KINDS: &[&str] = &["template", "jobs"];

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The produced result matches.
    Pass,
    /// It does not; the lines say where.
    Fail(Vec<String>),
    /// This build does not run cases of this kind.
    Skip,
}

/// The `kind` of a case document, if it is one.
pub fn case_kind(case: &Value) -> Option<&str> {
    case.get("kind").and_then(Value::as_str)
}

/// The `world` a case names, if any.
pub fn case_world(case: &Value) -> Option<&str> {
    case.get("world").and_then(Value::as_str)
}

/// Runs one case of any kind: `template` and `jobs` against their world (a missing world is a
/// failure), `stack`, `state`, `netconf` and `monitor` on their own inputs (`strict` adds the
/// byte-exact text checks). Unknown kinds are [`Verdict::Skip`].
pub fn run_case(case: &Value, world: Option<&World>, strict: bool) -> Verdict {
    let kind = case_kind(case).unwrap_or_default();
    if crate::exec::conformance::EXEC_KINDS.contains(&kind) {
        return match crate::exec::check_exec_case(case, strict) {
            crate::exec::ExecVerdict::Pass => Verdict::Pass,
            crate::exec::ExecVerdict::Fail(msg) => {
                Verdict::Fail(msg.lines().map(str::to_string).collect())
            }
        };
    }
    if WORLD_KINDS.contains(&kind) {
        return match world {
            Some(w) => run_world_case(case, w),
            None => Verdict::Fail(vec![format!(
                "case names no world it could be checked against (kind {kind})"
            )]),
        };
    }
    Verdict::Skip
}

/// Runs one `template` or `jobs` case against its world. Other kinds are [`Verdict::Skip`].
pub fn run_world_case(case: &Value, world: &World) -> Verdict {
    let result = match case_kind(case) {
        Some("template") => template_case(case, world),
        Some("jobs") => jobs_case(case, world),
        _ => return Verdict::Skip,
    };
    match result {
        Ok(()) => Verdict::Pass,
        Err(lines) => Verdict::Fail(lines),
    }
}

fn field<'v>(v: &'v Value, path: &str) -> Result<&'v Value, Vec<String>> {
    v.get(path)
        .ok_or_else(|| vec![format!("malformed case: missing `{path}`")])
}

fn str_field<'v>(v: &'v Value, path: &str) -> Result<&'v str, Vec<String>> {
    field(v, path)?
        .as_str()
        .ok_or_else(|| vec![format!("malformed case: `{path}` is not a string")])
}

fn template_case(case: &Value, world: &World) -> Result<(), Vec<String>> {
    let resource_type = str_field(case, "resource_type")?;
    let handler = case
        .get("handler")
        .and_then(Value::as_str)
        .unwrap_or(HEAT_WORKER);
    let body = field(case, "body")?.clone();
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let r = Resource::new(resource_type, id, body, 1);
    let got = crate::expand::template_for(&world.catalog, handler, &r, &world.resources)
        .map_err(|e| vec![format!("error: {e}")])?;
    let got = got.map(Value::String).unwrap_or(Value::Null);
    let expected = field(case, "expected")?;
    if &got == expected {
        Ok(())
    } else {
        Err(vec![format!("template: expected {expected}, got {got}")])
    }
}

fn jobs_case(case: &Value, world: &World) -> Result<(), Vec<String>> {
    let ev = field(case, "event")?;
    let action: EventAction = serde_json::from_value(field(ev, "action")?.clone())
        .map_err(|e| vec![format!("malformed case: event.action: {e}")])?;
    let resource_type = str_field(ev, "resource_type")?;
    let resource_id = str_field(ev, "resource_id")?;
    let version = field(ev, "version")?
        .as_u64()
        .ok_or_else(|| vec!["malformed case: event.version".to_string()])?;
    let body = match ev.get("body") {
        Some(Value::Null) | None => Value::Object(Default::default()),
        Some(b) => b.clone(),
    };
    let previous = match ev.get("previous") {
        Some(Value::Object(p)) => Some((
            p.get("version").and_then(Value::as_u64).unwrap_or(0),
            p.get("body").cloned().unwrap_or(Value::Null),
        )),
        _ => None,
    };
    let mut resource = Resource::new(resource_type, resource_id, body, version);
    resource.marked_for_deletion = ev
        .get("marked_for_deletion")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let event = ChangeEvent {
        action,
        resource,
        previous,
    };

    let mut overrides: HashMap<ResourceRef, Option<Resource>> = HashMap::new();
    if let Some(Value::Object(by_type)) = case.get("overrides") {
        for (ty, ids) in by_type {
            let Value::Object(ids) = ids else {
                return Err(vec![format!("malformed case: overrides.{ty}")]);
            };
            for (id, entry) in ids {
                let r = match entry {
                    Value::Null => None,
                    e => Some(
                        resource_entry(ty, id, e, "overrides").map_err(|e| vec![e.to_string()])?,
                    ),
                };
                overrides.insert(ResourceRef::new(ty.clone(), id.clone()), r);
            }
        }
    }
    let view: &dyn ResourceView = &world.resources;
    let overlay = Overlay::new(view, &overrides);

    let in_flight: InFlight = match case.get("in_flight") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, j)| {
                serde_json::from_value(j.clone())
                    .map_err(|e| vec![format!("malformed case: in_flight[{i}]: {e}")])
            })
            .collect::<Result<Vec<Job>, _>>()?
            .into_iter()
            .collect(),
        _ => InFlight::new(),
    };

    let mut suffixes = SeededSuffixes::new(0);
    let got = expand(&world.catalog, &overlay, &event, &in_flight, &mut suffixes)
        .map_err(|e| vec![format!("error: {e}")])?;
    let expected = match field(case, "expected")? {
        Value::Array(a) => a,
        _ => return Err(vec!["malformed case: `expected` is not a list".to_string()]),
    };
    compare_records(expected, &got.jobs).map_err(|lines| {
        secret_free_diff(
            world,
            &event.resource.body,
            &overrides,
            expected,
            &got.jobs,
            lines,
        )
    })
}

/// A diff with the one redaction policy applied: every secret value the case carries (secret
/// members of the bodies, values of secret params, on both sides) is scrubbed, and Junos
/// statements are masked at their value token.
fn secret_free_diff(
    world: &World,
    body: &Value,
    overrides: &HashMap<ResourceRef, Option<Resource>>,
    expected: &[Value],
    jobs: &[Job],
    lines: Vec<String>,
) -> Vec<String> {
    use crate::secret::{mask_junos_text, redact_params, template_secret_params, Scrubber};
    let mut scrubber = Scrubber::new();
    scrubber.add_secret_members(body);
    for r in overrides.values().flatten() {
        scrubber.add_secret_members(&r.body);
    }
    let secret: std::collections::BTreeSet<String> = world
        .catalog
        .templates
        .values()
        .flat_map(|t| template_secret_params(&t.template_file))
        .collect();
    let mut records: Vec<Value> = expected.to_vec();
    records.extend(jobs.iter().map(|j| j.to_record()));
    for mut r in records {
        redact_params(&mut r, &secret, &mut scrubber);
    }
    lines
        .iter()
        .map(|l| mask_junos_text(&scrubber.text(l)))
        .collect()
}

/// Compares produced jobs with the expected `/jobs/all` records of a case.
pub fn compare_records(expected: &[Value], jobs: &[Job]) -> Result<(), Vec<String>> {
    if expected.len() != jobs.len() {
        let names = |ids: Vec<String>| {
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(", ")
            }
        };
        return Err(vec![format!(
            "expected {} job(s) [{}], got {} [{}]",
            expected.len(),
            names(
                expected
                    .iter()
                    .map(|r| r
                        .get("key")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string())
                    .collect()
            ),
            jobs.len(),
            names(jobs.iter().map(|j| mask_id(&j.id)).collect()),
        )]);
    }
    let mut lines = Vec::new();
    for (i, (rec, job)) in expected.iter().zip(jobs).enumerate() {
        let key = format!("/jobs/all/{}", mask_id(&job.id));
        if rec.get("key").and_then(Value::as_str) != Some(key.as_str()) {
            lines.push(format!(
                "job {i}: key: expected {}, got {key}",
                rec.get("key").unwrap_or(&Value::Null)
            ));
        }
        let mut dedup = job.dependency.clone();
        dedup.sort();
        dedup.dedup();
        if dedup.len() != job.dependency.len() {
            lines.push(format!("job {i}: dependency has duplicates"));
        }
        let got = normalize_record(&job.to_record());
        let want = normalize_record(rec.get("value").unwrap_or(&Value::Null));
        for d in compare::diff(&want, &got) {
            lines.push(format!("job {i} ({}): {d}", mask_id(&job.id)));
        }
    }
    if lines.is_empty() {
        Ok(())
    } else {
        Err(lines)
    }
}

/// Replaces the random suffix of a job id by `*`.
pub fn mask_id(id: &str) -> String {
    match id.rsplit_once(':') {
        Some((head, _)) => format!("{head}:*"),
        None => id.to_string(),
    }
}

/// Puts a `["handler", job, 0]` record in comparable form: id and dependencies masked,
/// dependencies sorted, params keyed and sorted by name.
fn normalize_record(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(job)) = v.get_mut(1) {
        if let Some(Value::String(id)) = job.get_mut("id") {
            *id = mask_id(id);
        }
        if let Some(Value::Array(deps)) = job.get_mut("dependency") {
            for d in deps.iter_mut() {
                if let Value::String(s) = d {
                    *s = mask_id(s);
                }
            }
            deps.sort_by_key(|d| d.to_string());
        }
        if let Some(Value::Array(params)) = job.get("params") {
            let mut keyed = serde_json::Map::new();
            let mut sorted: Vec<&Value> = params.iter().collect();
            sorted.sort_by_key(|p| p.get("param").map(|n| n.to_string()).unwrap_or_default());
            for p in sorted {
                let name = p
                    .get("param")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                keyed.insert(name, p.clone());
            }
            job.insert("params".to_string(), Value::Object(keyed));
        }
    }
    v
}
