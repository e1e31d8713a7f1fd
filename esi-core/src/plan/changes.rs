//! Plans of changes: what each scripted change (`esi run --changes`, [`Change`]) would do,
//! phase by phase: the jobs it produces, the stacks it creates, updates or deletes, and per
//! router the configuration diff as `+`/`-` set lines.
//!
//! The jobs are the manager's own expansion ([`expand`]) of each change against the world as it
//! stands after the earlier ones (nothing in flight: a run waits until quiet between changes).
//! The router diffs come from a dry run of the world and the changes on the embedded default
//! (in-memory store, `LocalHeat`, simulated routers: nothing leaves the process), diffed with
//! [`config_diff`], the same function `esi run` prints its per-phase diffs with, so the two
//! agree line for line.

use crate::device::config::statement_paths;
use crate::expand::{expand, expand_world, ChangeEvent, EventAction, InFlight, SeededSuffixes};
use crate::model::{JobAction, Resource, ResourceRef};
use crate::runtime::embedded::{self, EmbeddedError, EmbeddedOptions, Phase};
use crate::runtime::sim::Change;
use crate::world::{ResourceSet, World};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The `+`/`-` lines that turn router configuration `old` into `new`: removed statements first
/// (`- set …`), then added ones (`+ set …`), each in configuration order. Configurations that
/// do not parse as Junos text are diffed line by line instead.
pub fn config_diff(old: &str, new: &str) -> Vec<String> {
    let lines = |text: &str| -> Vec<String> {
        match statement_paths(text) {
            Ok(paths) => paths
                .iter()
                .map(|p| format!("set {}", p.join(" ")))
                .collect(),
            Err(_) => text
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        }
    };
    let (before, after) = (lines(old), lines(new));
    let before_set: BTreeSet<&String> = before.iter().collect();
    let after_set: BTreeSet<&String> = after.iter().collect();
    let mut out: Vec<String> = before
        .iter()
        .filter(|l| !after_set.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    out.extend(
        after
            .iter()
            .filter(|l| !before_set.contains(l))
            .map(|l| format!("+ {l}")),
    );
    out
}

/// Per router, the diff from `before` to `after` (routers without changes are left out).
pub fn device_diffs(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> BTreeMap<String, Vec<String>> {
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let empty = String::new();
            let d = config_diff(
                before.get(name).unwrap_or(&empty),
                after.get(name).unwrap_or(&empty),
            );
            (!d.is_empty()).then(|| (name.clone(), d))
        })
        .collect()
}

/// Per phase of a run, the router diffs against the previous phase (the first phase against
/// empty routers).
pub fn phase_diffs(phases: &[Phase]) -> Vec<BTreeMap<String, Vec<String>>> {
    let empty = BTreeMap::new();
    phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let before = if i == 0 {
                &empty
            } else {
                &phases[i - 1].devices
            };
            device_diffs(before, &p.devices)
        })
        .collect()
}

/// One job a change produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobChange {
    /// Job id.
    pub id: String,
    /// `create`, `modify`, `delete` or `logical_delete`.
    pub action: JobAction,
    /// Handler.
    pub handler: String,
    /// The resource.
    pub resource: ResourceRef,
}

/// What a stack job does to its stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StackChange {
    /// A new stack.
    Create,
    /// The stack is updated in place.
    Update,
    /// The stack is deleted.
    Delete,
}

impl StackChange {
    /// The word printed.
    pub fn as_str(self) -> &'static str {
        match self {
            StackChange::Create => "create",
            StackChange::Update => "update",
            StackChange::Delete => "delete",
        }
    }

    fn of(action: JobAction) -> Self {
        match action {
            JobAction::Create => StackChange::Create,
            JobAction::Modify => StackChange::Update,
            _ => StackChange::Delete,
        }
    }
}

/// Counts of one phase (or of all): jobs by what they do, and routers whose configuration
/// changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChangeSummary {
    /// Jobs that create (a stack, a monitoring target).
    pub create: usize,
    /// Jobs that modify in place.
    pub modify: usize,
    /// Jobs that delete.
    pub delete: usize,
    /// Routers whose configuration changes.
    pub devices: usize,
}

impl ChangeSummary {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.create + self.modify + self.delete + self.devices == 0
    }

    fn add(&mut self, o: &ChangeSummary) {
        self.create += o.create;
        self.modify += o.modify;
        self.delete += o.delete;
        self.devices += o.devices;
    }
}

impl std::fmt::Display for ChangeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to create, {} to modify, {} to delete, {} devices changed",
            self.create, self.modify, self.delete, self.devices
        )
    }
}

/// What one phase (the initial load, or one change) would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseChanges {
    /// `load`, or `modify TYPE/ID` and the like (the labels of `esi run`).
    pub label: String,
    /// The jobs, in chain order (for the load: every resource's chain).
    pub jobs: Vec<JobChange>,
    /// The stacks the stack jobs touch, per resource.
    pub stacks: Vec<(ResourceRef, StackChange)>,
    /// Per router, the configuration diff.
    pub devices: BTreeMap<String, Vec<String>>,
    /// Expansion errors (the change is refused by the manager: `READ_ERROR`).
    pub errors: Vec<String>,
    /// The counts.
    pub summary: ChangeSummary,
}

/// The plan of a world and its changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangePlan {
    /// The world's name.
    pub world: String,
    /// The load, then one entry per change.
    pub phases: Vec<PhaseChanges>,
    /// The counts of the changes (the load phase excluded).
    pub summary: ChangeSummary,
}

impl ChangePlan {
    /// True when the changes would change something (what `--detailed-exitcode` reports).
    pub fn has_changes(&self) -> bool {
        !self.summary.is_empty()
    }
}

/// Plans a world and its changes (see the module documentation). `options` are those of the
/// dry run (its seed).
pub async fn plan_changes(
    world: &World,
    changes: &[Change],
    options: &EmbeddedOptions,
) -> Result<ChangePlan, EmbeddedError> {
    let phases = embedded::run(world, changes, options).await?;
    let diffs = phase_diffs(&phases);
    let mut suffixes = SeededSuffixes::new(options.seed);

    let mut out = Vec::with_capacity(changes.len() + 1);
    // The load: every resource as a create (or logical delete), as `esi plan` shows it.
    let mut load = PhaseChanges {
        label: "load".into(),
        jobs: Vec::new(),
        stacks: Vec::new(),
        devices: BTreeMap::new(),
        errors: Vec::new(),
        summary: ChangeSummary::default(),
    };
    for o in expand_world(world, &mut suffixes) {
        match o.result {
            Ok(jobs) => load.jobs.extend(jobs.iter().map(job_change)),
            Err(e) => load.errors.push(e.to_string()),
        }
    }
    out.push(load);

    let mut view: ResourceSet = world.resources.clone();
    for change in changes {
        let mut phase = PhaseChanges {
            label: String::new(),
            jobs: Vec::new(),
            stacks: Vec::new(),
            devices: BTreeMap::new(),
            errors: Vec::new(),
            summary: ChangeSummary::default(),
        };
        match apply(&mut view, change) {
            Ok((label, event)) => {
                phase.label = label;
                if let Some(event) = event {
                    match expand(
                        &world.catalog,
                        &view,
                        &event,
                        &InFlight::new(),
                        &mut suffixes,
                    ) {
                        Ok(x) => phase.jobs = x.jobs.iter().map(job_change).collect(),
                        Err(e) => phase.errors.push(e.to_string()),
                    }
                }
            }
            Err((label, e)) => {
                phase.label = label;
                phase.errors.push(e);
            }
        }
        out.push(phase);
    }

    let mut total = ChangeSummary::default();
    for (i, phase) in out.iter_mut().enumerate() {
        phase.devices = diffs.get(i).cloned().unwrap_or_default();
        phase.stacks = phase
            .jobs
            .iter()
            .filter(|j| j.handler == crate::catalog::HEAT_WORKER)
            .map(|j| (j.resource.clone(), StackChange::of(j.action)))
            .collect();
        for j in &phase.jobs {
            match j.action {
                JobAction::Create => phase.summary.create += 1,
                JobAction::Modify => phase.summary.modify += 1,
                _ => phase.summary.delete += 1,
            }
        }
        phase.summary.devices = phase.devices.len();
        if i > 0 {
            total.add(&phase.summary);
        }
    }
    Ok(ChangePlan {
        world: world.name.clone(),
        phases: out,
        summary: total,
    })
}

fn job_change(j: &crate::model::Job) -> JobChange {
    JobChange {
        id: j.id.clone(),
        action: j.action,
        handler: j.handler.clone(),
        resource: j.resource(),
    }
}

/// Applies a change to the planned view as the API does (a modify merges top-level fields and
/// bumps the version; a delete marks the next version for deletion). Returns the phase label
/// and the event the manager would see.
#[allow(clippy::type_complexity)]
fn apply(
    view: &mut ResourceSet,
    change: &Change,
) -> Result<(String, Option<ChangeEvent>), (String, String)> {
    match change {
        Change::Create {
            resource_type,
            id,
            body,
        } => {
            let label = format!("create {resource_type}/{id}");
            let r = Resource::new(resource_type.clone(), id.clone(), body.clone(), 1);
            view.insert(r.clone());
            Ok((
                label,
                Some(ChangeEvent {
                    action: EventAction::Create,
                    resource: r,
                    previous: None,
                }),
            ))
        }
        Change::Modify {
            resource_type,
            id,
            body,
        } => {
            let label = format!("modify {resource_type}/{id}");
            let Some(current) = view.get(resource_type, id).cloned() else {
                return Err((label, format!("{resource_type}/{id} does not exist")));
            };
            let mut next = current.clone();
            if let (Value::Object(b), Value::Object(p)) = (&mut next.body, body) {
                for (k, v) in p {
                    if k != "id" {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
            next.version = current.version + 1;
            view.insert(next.clone());
            Ok((
                label,
                Some(ChangeEvent {
                    action: EventAction::Modify,
                    resource: next,
                    previous: Some((current.version, current.body)),
                }),
            ))
        }
        Change::Delete { resource_type, id } => {
            let label = format!("delete {resource_type}/{id}");
            let Some(current) = view.get(resource_type, id).cloned() else {
                return Err((label, format!("{resource_type}/{id} does not exist")));
            };
            let mut next = current.clone();
            next.version = current.version + 1;
            next.marked_for_deletion = true;
            view.insert(next.clone());
            Ok((
                label,
                Some(ChangeEvent {
                    action: EventAction::LogicalDelete,
                    resource: next,
                    previous: Some((current.version, current.body)),
                }),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_diff_lists_removed_then_added_set_lines() {
        let old =
            "interfaces {\n    xe-0/0/1 {\n        description old;\n        mtu 9000;\n    }\n}\n";
        let new =
            "interfaces {\n    xe-0/0/1 {\n        description new;\n        mtu 9000;\n    }\n}\n";
        assert_eq!(
            config_diff(old, new),
            vec![
                "- set interfaces xe-0/0/1 description old".to_string(),
                "+ set interfaces xe-0/0/1 description new".to_string(),
            ]
        );
        assert!(config_diff(new, new).is_empty());
        assert_eq!(config_diff("", "system { host-name r1; }").len(), 1);
    }

    #[test]
    fn summaries_read_like_terraform() {
        let s = ChangeSummary {
            create: 1,
            modify: 2,
            delete: 3,
            devices: 2,
        };
        assert_eq!(
            s.to_string(),
            "1 to create, 2 to modify, 3 to delete, 2 devices changed"
        );
        assert!(!s.is_empty());
        assert!(ChangeSummary::default().is_empty());
    }
}
