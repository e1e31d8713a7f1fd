//! Job expansion: one resource change → the chain of job records the manager writes.
//!
//! Rules: `shared/spec/jobs.md` §1–§5 (chains per handler, `is_first`/`is_last`, `on_failure`,
//! the duplicated-resources quirk, the dependency rule, ids with a random suffix).

use crate::catalog::{Catalog, HeatTemplate, MONITORING_WORKER};
use crate::mapping::{EvalError, Evaluator, ResourceView, Subject};
use crate::model::{job_id, Job, JobAction, JobParam, OnFailure, Resource, ResourceRef};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;

/// How a `/config` change is classified (`shared/spec/jobs.md` §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    /// No `/state` document existed for the resource.
    Create,
    /// A `/state` document existed.
    Modify,
    /// The stored value has `marked_for_deletion: true`.
    LogicalDelete,
    /// The `/config` key was removed: cleanup only, never jobs.
    Delete,
}

impl EventAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Create => "create",
            EventAction::Modify => "modify",
            EventAction::LogicalDelete => "logical_delete",
            EventAction::Delete => "delete",
        }
    }
}

/// One resource change as the manager sees it.
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    /// The classification.
    pub action: EventAction,
    /// The resource as stored by the change (for `Delete`, the last known one).
    pub resource: Resource,
    /// The last body before this change, with its version.
    pub previous: Option<(u64, Value)>,
}

/// Where the random job-id suffixes come from.
pub trait SuffixSource {
    /// Five characters from `[a-z0-9]`.
    fn next_suffix(&mut self) -> String;
}

/// A deterministic suffix source (xorshift64*), for tests and reproducible runs.
#[derive(Debug, Clone)]
pub struct SeededSuffixes {
    state: u64,
}

impl SeededSuffixes {
    /// Seeds the generator (any seed, zero included).
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl SuffixSource for SeededSuffixes {
    fn next_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut n = self.next_u64();
        (0..5)
            .map(|_| {
                let c = ALPHABET[(n % 36) as usize] as char;
                n /= 36;
                c
            })
            .collect()
    }
}

/// A change that could not be expanded. Names the resource, and the template and param where
/// one is involved; the reader records it on the resource's state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExpandError {
    /// A template path could not be evaluated.
    #[error("{resource}: template path of handler `{handler}`: {source}")]
    TemplatePath {
        /// The changed resource.
        resource: ResourceRef,
        /// The handler whose path failed.
        handler: String,
        /// Why.
        #[source]
        source: Box<EvalError>,
    },
    /// A param mapping could not be evaluated.
    #[error("{resource}: template `{template}`, param `{param}`: {source}")]
    Mapping {
        /// The changed resource.
        resource: ResourceRef,
        /// The template.
        template: String,
        /// The param.
        param: String,
        /// Why.
        #[source]
        source: Box<EvalError>,
    },
}

/// What one handler made of a change (for traces, plans and logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum HandlerDecision {
    /// The type has no template path for this handler.
    NoPath {
        /// Handler.
        handler: String,
    },
    /// The path evaluated to null.
    NoTemplate {
        /// Handler.
        handler: String,
    },
    /// The path named a template that does not exist: the handler is skipped (recorded
    /// behaviour: such a change is non-workable for this handler).
    UnknownTemplate {
        /// Handler.
        handler: String,
        /// The id the path yielded.
        template: String,
    },
    /// The handler contributes jobs from this template.
    Template {
        /// Handler.
        handler: String,
        /// Template id.
        template: String,
    },
}

/// The records one change produces.
#[derive(Debug, Clone)]
pub struct Expansion {
    /// The chain, in order (empty for a non-workable change or a delete).
    pub jobs: Vec<Job>,
    /// Per handler, what its template path decided.
    pub decisions: Vec<HandlerDecision>,
    /// In-flight job ids the first job depends on, one entry per matching resource occurrence
    /// (duplicates included), as the `/worker-workflow-jobs` journal lists them.
    pub journal_dependencies: Vec<String>,
    /// The event action.
    pub action: EventAction,
}

impl Expansion {
    /// True when at least one job is written.
    pub fn is_workable(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// The `/worker-workflow-jobs` journal document: `{"action", "jobs": [jobs without id and
    /// dependency], "dependencies": [in-flight job objects, one per matching occurrence]}`.
    /// Built on demand: it is only needed when the journal is written.
    pub fn journal(&self, in_flight: &InFlight) -> Value {
        let strip = |j: &Job| {
            let mut v = serde_json::to_value(j).unwrap_or(Value::Null);
            if let Value::Object(o) = &mut v {
                o.remove("id");
                o.remove("dependency");
            }
            v
        };
        json!({
            "action": self.action.as_str(),
            "jobs": self.jobs.iter().map(strip).collect::<Vec<_>>(),
            "dependencies": self
                .journal_dependencies
                .iter()
                .filter_map(|id| in_flight.get(id))
                .map(|j| serde_json::to_value(j).unwrap_or(Value::Null))
                .collect::<Vec<_>>(),
        })
    }
}

/// Evaluates the template path of `handler` for a resource body: `Ok(None)` when the type has
/// no path for the handler or the path yields null.
pub fn template_for(
    catalog: &Catalog,
    handler: &str,
    r: &Resource,
    view: &dyn ResourceView,
) -> Result<Option<String>, ExpandError> {
    let Some(path) = catalog
        .schemas
        .get(&r.key.resource_type)
        .and_then(|s| s.template_paths.get(handler))
    else {
        return Ok(None);
    };
    Evaluator::new(catalog, view)
        .template_id(&path.0, subject(r, &r.body))
        .map_err(|source| ExpandError::TemplatePath {
            resource: r.key.clone(),
            handler: handler.to_string(),
            source: Box::new(source),
        })
}

fn subject<'a>(r: &'a Resource, body: &'a Value) -> Subject<'a> {
    Subject {
        resource_type: &r.key.resource_type,
        resource_id: &r.key.resource_id,
        version: r.version,
        body,
    }
}

/// Decides, per handler in order, which template (if any) a body selects.
pub fn decide(
    catalog: &Catalog,
    r: &Resource,
    view: &dyn ResourceView,
) -> Result<Vec<HandlerDecision>, ExpandError> {
    let mut out = Vec::new();
    for handler in catalog.handlers() {
        let has_path = catalog
            .schemas
            .get(&r.key.resource_type)
            .is_some_and(|s| s.template_paths.contains_key(&handler));
        let d = match template_for(catalog, &handler, r, view)? {
            None if has_path => HandlerDecision::NoTemplate { handler },
            None => HandlerDecision::NoPath { handler },
            Some(t) if catalog.templates.contains_key(&t) => HandlerDecision::Template {
                handler,
                template: t,
            },
            Some(t) => HandlerDecision::UnknownTemplate {
                handler,
                template: t,
            },
        };
        out.push(d);
    }
    Ok(out)
}

/// Handlers whose work is replaced (delete + create) instead of updated on a modify: the
/// monitoring handler of the two-handler era.
fn replaces_on_modify(handler: &str) -> bool {
    handler == MONITORING_WORKER
}

struct Planned<'c> {
    action: JobAction,
    template: &'c HeatTemplate,
    /// Params are read from the previous body (the monitoring `delete` of a modify).
    from_previous: bool,
    on_failure: OnFailure,
}

/// Expands one change into its chain of jobs.
///
/// `view` is the configuration right after the change was stored (it includes the changed
/// resource); `in_flight` the jobs still under `/jobs/all`. Pure: the same inputs and suffixes
/// give the same records.
pub fn expand(
    catalog: &Catalog,
    view: &dyn ResourceView,
    event: &ChangeEvent,
    in_flight: &InFlight,
    suffixes: &mut dyn SuffixSource,
) -> Result<Expansion, ExpandError> {
    let r = &event.resource;
    if event.action == EventAction::Delete {
        return Ok(Expansion {
            jobs: Vec::new(),
            decisions: Vec::new(),
            journal_dependencies: Vec::new(),
            action: event.action,
        });
    }
    let decisions = decide(catalog, r, view)?;
    let selected: Vec<(&str, &HeatTemplate)> = decisions
        .iter()
        .filter_map(|d| match d {
            HandlerDecision::Template { handler, template } => catalog
                .templates
                .get(template)
                .map(|t| (handler.as_str(), t)),
            _ => None,
        })
        .collect();
    let plan = plan_chain(catalog, view, event, &selected)?;
    if plan.is_empty() {
        return Ok(Expansion {
            jobs: Vec::new(),
            decisions,
            journal_dependencies: Vec::new(),
            action: event.action,
        });
    }

    let previous_resource = event.previous.as_ref().map(|(_, body)| Resource {
        body: body.clone(),
        ..r.clone()
    });
    let evaluator = Evaluator::new(catalog, view);
    let mut evaluations: HashMap<&str, usize> = HashMap::default();
    let mut jobs: Vec<Job> = Vec::with_capacity(plan.len());
    let n = plan.len();
    for (i, p) in plan.iter().enumerate() {
        let source = match (&previous_resource, p.from_previous) {
            (Some(prev), true) => prev,
            _ => r,
        };
        let nth = evaluations.entry(p.template.id.as_str()).or_insert(0);
        *nth += 1;
        let copies = repeat_count(event.action, *nth);
        let mut params = Vec::with_capacity(p.template.mappings.len());
        for (name, mapping) in &p.template.mappings {
            let e = evaluator
                .evaluate(mapping, subject(source, &source.body), name)
                .map_err(|source| ExpandError::Mapping {
                    resource: r.key.clone(),
                    template: p.template.id.clone(),
                    param: name.clone(),
                    source: Box::new(source),
                })?;
            params.push(JobParam {
                param: name.clone(),
                kind: e.kind,
                value: e.value,
                resources: repeat_resources(&e.resources, copies),
            });
        }
        let handler = p.template.handler.clone();
        let id = job_id(
            p.action,
            &handler,
            &r.key,
            r.version,
            &suffixes.next_suffix(),
        );
        jobs.push(Job {
            action: p.action,
            handler,
            resource_type: r.key.resource_type.clone(),
            resource_id: r.key.resource_id.clone(),
            version: r.version,
            job_name: format!(
                "{}:{}:{}",
                r.key.resource_type, r.key.resource_id, r.version
            ),
            id,
            on_failure: p.on_failure,
            is_first: i == 0,
            is_last: i + 1 == n,
            dependency: Vec::new(),
            params,
            resource_input: r.body.clone(),
        });
    }

    let (first_deps, journal_dependencies) = dependencies(&r.key, &jobs, in_flight);
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    for (i, job) in jobs.iter_mut().enumerate() {
        job.dependency = if i == 0 {
            first_deps.clone()
        } else {
            ids[..i].to_vec()
        };
    }
    Ok(Expansion {
        jobs,
        decisions,
        journal_dependencies,
        action: event.action,
    })
}

fn plan_chain<'c>(
    catalog: &'c Catalog,
    view: &dyn ResourceView,
    event: &ChangeEvent,
    selected: &[(&str, &'c HeatTemplate)],
) -> Result<Vec<Planned<'c>>, ExpandError> {
    let job = |action, template, from_previous, on_failure| Planned {
        action,
        template,
        from_previous,
        on_failure,
    };
    let mut plan = Vec::new();
    match event.action {
        EventAction::Delete => {}
        EventAction::Create => {
            for (_, t) in selected {
                plan.push(job(JobAction::Create, *t, false, OnFailure::Fail));
            }
        }
        EventAction::Modify | EventAction::LogicalDelete => {
            // Replacing handlers first tear down what the previous body set up ...
            for (handler, t) in selected.iter().filter(|(h, _)| replaces_on_modify(h)) {
                let template = match &event.previous {
                    Some((_, prev_body)) => {
                        let prev = Resource {
                            body: prev_body.clone(),
                            ..event.resource.clone()
                        };
                        template_for(catalog, handler, &prev, view)?
                            .and_then(|id| catalog.templates.get(&id))
                    }
                    None => Some(*t),
                };
                if let Some(template) = template {
                    plan.push(job(
                        JobAction::Delete,
                        template,
                        event.previous.is_some(),
                        OnFailure::Ignore,
                    ));
                }
            }
            // ... stack handlers update (or delete) in place ...
            let in_place = if event.action == EventAction::Modify {
                JobAction::Modify
            } else {
                JobAction::LogicalDelete
            };
            for (_, t) in selected.iter().filter(|(h, _)| !replaces_on_modify(h)) {
                plan.push(job(in_place, *t, false, OnFailure::Fail));
            }
            // ... and replacing handlers set up again from the new body (not after a delete).
            if event.action == EventAction::Modify {
                for (_, t) in selected.iter().filter(|(h, _)| replaces_on_modify(h)) {
                    plan.push(job(JobAction::Create, *t, false, OnFailure::Fail));
                }
            }
        }
    }
    Ok(plan)
}

/// How many copies of each param's resource list a job carries.
///
/// Recorded quirk (`shared/spec/jobs.md` §4): within one workflow, evaluations are counted per
/// template; for any action but `create` the first evaluation of a template carries the list
/// twice and each further evaluation of the same template one more copy. The original evidently
/// appended into lists shared across evaluations. Reproduced for wire compatibility only:
/// dependency matching uses [`Job::referenced_resources`], which removes the copies.
pub fn repeat_count(action: EventAction, nth_evaluation_of_template: usize) -> usize {
    match action {
        EventAction::Create => 1,
        _ => nth_evaluation_of_template + 1,
    }
}

/// `resources` repeated `copies` times in a row (`[a, b]`, 2 → `[a, b, a, b]`).
pub fn repeat_resources(resources: &[ResourceRef], copies: usize) -> Vec<ResourceRef> {
    let mut out = Vec::with_capacity(resources.len() * copies);
    for _ in 0..copies {
        out.extend_from_slice(resources);
    }
    out
}

/// The inverse of [`repeat_resources`], for display: `[a, b, a, b]` → (`[a, b]`, 2).
pub fn fold_chain(resources: &[ResourceRef]) -> (Vec<ResourceRef>, usize) {
    let n = resources.len();
    if n == 0 {
        return (Vec::new(), 1);
    }
    for p in 1..=n {
        let whole = resources.chunks_exact(p).remainder().is_empty();
        if whole && resources.chunks(p).all(|c| c == &resources[..p]) {
            return (resources[..p].to_vec(), n / p);
        }
    }
    (resources.to_vec(), 1)
}

/// The jobs still under `/jobs/all`, indexed for the dependency rule.
///
/// Two indexes keep [`expand`] linear in the size of the new chain rather than in the number of
/// jobs in flight: jobs by the resource they work on, and jobs by the resources their params name
/// (de-duplicated, so the recorded repetition quirk never matters). A third, jobs by the ids
/// they depend on, lets the manager release or fail only the dependents of a finished job
/// ([`InFlight::dependents`]) instead of rescanning every waiting job.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    jobs: Vec<Option<Job>>,
    by_id: HashMap<String, usize>,
    by_resource: HashMap<ResourceRef, Vec<usize>>,
    by_reference: HashMap<ResourceRef, Vec<usize>>,
    by_dependency: HashMap<String, Vec<usize>>,
    live: usize,
}

impl InFlight {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a job (a job with an id already present replaces nothing and is ignored).
    pub fn push(&mut self, job: Job) {
        if self.by_id.contains_key(&job.id) {
            return;
        }
        let i = self.jobs.len();
        self.by_id.insert(job.id.clone(), i);
        self.by_resource.entry(job.resource()).or_default().push(i);
        for r in job.referenced_resources() {
            self.by_reference.entry(r).or_default().push(i);
        }
        for d in &job.dependency {
            self.by_dependency.entry(d.clone()).or_default().push(i);
        }
        self.jobs.push(Some(job));
        self.live += 1;
    }

    /// Removes a job (when it finished and was cleaned up).
    pub fn remove(&mut self, id: &str) -> Option<Job> {
        let i = self.by_id.remove(id)?;
        let job = self.jobs.get_mut(i)?.take()?;
        self.live -= 1;
        // Nothing can depend on a removed job any more: its dependents entry is dropped
        // (a job is only ever pushed after the jobs it depends on).
        self.by_dependency.remove(id);
        if self.live == 0 {
            // Quiet: the slots and index entries of finished jobs are dropped, so a long run
            // does not grow without bound.
            *self = Self::default();
        }
        Some(job)
    }

    /// The in-flight jobs that list `id` among their dependencies, in the order they were
    /// added. Touches only those jobs, however many are in flight.
    pub fn dependents<'s>(&'s self, id: &str) -> impl Iterator<Item = &'s Job> + 's {
        self.by_dependency
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|i| self.jobs.get(*i).and_then(Option::as_ref))
    }

    /// Looks a job up by id.
    pub fn get(&self, id: &str) -> Option<&Job> {
        self.jobs.get(*self.by_id.get(id)?)?.as_ref()
    }

    /// True when the job is still in flight.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The jobs, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Job> {
        self.jobs.iter().flatten()
    }

    /// Number of jobs in flight.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn indexed<'s>(
        &'s self,
        index: &'s HashMap<ResourceRef, Vec<usize>>,
        r: &ResourceRef,
    ) -> impl Iterator<Item = usize> + 's {
        index
            .get(r)
            .into_iter()
            .flatten()
            .copied()
            .filter(|i| self.jobs.get(*i).is_some_and(Option::is_some))
    }
}

impl FromIterator<Job> for InFlight {
    fn from_iter<I: IntoIterator<Item = Job>>(iter: I) -> Self {
        let mut s = InFlight::new();
        for j in iter {
            s.push(j);
        }
        s
    }
}

/// The dependency rule (`shared/spec/jobs.md` §5) for the first job of a chain for resource `x`:
/// every in-flight job J such that some job K of the chain has J's handler and either K's params
/// name J's resource (forward) or J's params name `x` (backward); plus, as recommended there, any
/// in-flight job of `x` itself (per-resource ordering; never fires on the recordings).
/// Returns the ids (each once, in in-flight order) and the journal's list of ids (one entry per
/// matching occurrence, duplicates included).
fn dependencies(
    x: &ResourceRef,
    chain: &[Job],
    in_flight: &InFlight,
) -> (Vec<String>, Vec<String>) {
    let mut occurrences: HashMap<usize, usize> = HashMap::default();
    for k in chain {
        for p in &k.params {
            for r in &p.resources {
                for i in in_flight.indexed(&in_flight.by_resource, r) {
                    if in_flight.jobs[i]
                        .as_ref()
                        .is_some_and(|j| j.handler == k.handler)
                    {
                        *occurrences.entry(i).or_default() += 1;
                    }
                }
            }
        }
    }
    for i in in_flight.indexed(&in_flight.by_reference, x) {
        if let Some(j) = &in_flight.jobs[i] {
            if chain.iter().any(|k| k.handler == j.handler) {
                let n = j
                    .params
                    .iter()
                    .flat_map(|p| &p.resources)
                    .filter(|r| *r == x)
                    .count();
                *occurrences.entry(i).or_default() += n;
            }
        }
    }
    for i in in_flight.indexed(&in_flight.by_resource, x) {
        occurrences.entry(i).or_insert(1);
    }
    let mut matched: Vec<(usize, usize)> = occurrences.into_iter().collect();
    matched.sort_unstable();
    let mut ids = Vec::with_capacity(matched.len());
    let mut journal = Vec::new();
    for (i, n) in matched {
        if let Some(j) = &in_flight.jobs[i] {
            ids.push(j.id.clone());
            journal.extend(std::iter::repeat_n(j.id.clone(), n.max(1)));
        }
    }
    (ids, journal)
}

/// What the dependency rule reads of an in-flight job: everything but the body and the param
/// values (a world expansion keeps every job in flight; copying bodies and values into the
/// set doubled its memory and time).
fn dependency_view(j: &Job) -> Job {
    Job {
        action: j.action,
        handler: j.handler.clone(),
        resource_type: j.resource_type.clone(),
        resource_id: j.resource_id.clone(),
        version: j.version,
        job_name: String::new(),
        id: j.id.clone(),
        on_failure: j.on_failure,
        is_first: j.is_first,
        is_last: j.is_last,
        dependency: Vec::new(),
        params: j
            .params
            .iter()
            .map(|p| JobParam {
                param: String::new(),
                kind: p.kind,
                value: Value::Null,
                resources: p.resources.clone(),
            })
            .collect(),
        resource_input: Value::Null,
    }
}

/// The outcome of one resource of a world expansion.
#[derive(Debug, Clone)]
pub struct ResourceOutcome {
    /// The resource.
    pub resource: ResourceRef,
    /// Its config version.
    pub version: u64,
    /// How its change was classified.
    pub action: EventAction,
    /// Per handler, which template was chosen.
    pub decisions: Vec<HandlerDecision>,
    /// The chain, or why there is none.
    pub result: Result<Vec<Job>, ExpandError>,
}

/// Expands every resource of a world as if each had just been submitted, in
/// [`crate::World::processing_order`]: a resource marked for deletion is a `logical_delete`,
/// any other a `create`. No job finishes in between, so every earlier job is in flight when a
/// later chain is written, which shows the full dependency structure. Mappings read the world's
/// final configuration. A resource whose expansion fails is reported and skipped; the others go on.
pub fn expand_world(world: &crate::World, suffixes: &mut dyn SuffixSource) -> Vec<ResourceOutcome> {
    let mut in_flight = InFlight::new();
    let mut out = Vec::new();
    for key in world.processing_order() {
        let Some(r) = world.resources.get(&key.resource_type, &key.resource_id) else {
            continue;
        };
        let action = if r.marked_for_deletion {
            EventAction::LogicalDelete
        } else {
            EventAction::Create
        };
        let event = ChangeEvent {
            action,
            resource: r.clone(),
            previous: None,
        };
        let (decisions, result) = match expand(
            &world.catalog,
            &world.resources,
            &event,
            &in_flight,
            suffixes,
        ) {
            Ok(e) => {
                e.jobs
                    .iter()
                    .map(dependency_view)
                    .for_each(|j| in_flight.push(j));
                (e.decisions, Ok(e.jobs))
            }
            Err(err) => (
                decide(&world.catalog, r, &world.resources).unwrap_or_default(),
                Err(err),
            ),
        };
        out.push(ResourceOutcome {
            resource: key,
            version: r.version,
            action,
            decisions,
            result,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, deps: &[&str]) -> Job {
        Job {
            action: JobAction::Create,
            handler: "heat_worker".into(),
            resource_type: "t".into(),
            resource_id: id.into(),
            version: 1,
            job_name: format!("t:{id}:1"),
            id: id.into(),
            on_failure: OnFailure::Fail,
            is_first: true,
            is_last: true,
            dependency: deps.iter().map(|d| d.to_string()).collect(),
            params: Vec::new(),
            resource_input: Value::Null,
        }
    }

    /// Releasing the dependents of a finished job touches those jobs only (issue 11: the
    /// manager used to rescan every waiting job on each finish).
    #[test]
    fn dependents_are_indexed_and_only_they_are_touched() {
        let mut f = InFlight::new();
        f.push(job("a", &[]));
        f.push(job("b", &["a"]));
        f.push(job("c", &["a", "b"]));
        for i in 0..1000 {
            f.push(job(&format!("x{i}"), &["other"]));
        }
        let ids =
            |f: &InFlight, id: &str| f.dependents(id).map(|j| j.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&f, "a"), vec!["b", "c"]);
        assert_eq!(ids(&f, "b"), vec!["c"]);
        assert!(ids(&f, "c").is_empty());
        assert_eq!(ids(&f, "other").len(), 1000);
        // a removed dependent is no longer listed
        f.remove("b");
        assert_eq!(ids(&f, "a"), vec!["c"]);
        // once nothing is in flight, the set starts over (no unbounded growth)
        f.remove("a");
        f.remove("c");
        for i in 0..1000 {
            f.remove(&format!("x{i}"));
        }
        assert!(f.is_empty());
        assert_eq!(f.jobs.len(), 0);
        assert!(f.by_dependency.is_empty());
    }

    #[test]
    fn chains_fold_the_repetition() {
        let a = ResourceRef::new("a", "1");
        let b = ResourceRef::new("b", "2");
        assert_eq!(
            fold_chain(&[a.clone(), b.clone(), a.clone(), b.clone()]),
            (vec![a.clone(), b.clone()], 2)
        );
        assert_eq!(fold_chain(&[a.clone(), b.clone()]), (vec![a, b], 1));
        assert_eq!(fold_chain(&[]), (vec![], 1));
    }
}
