//! `esi plan`: what every change of a world would do, before anything touches the network.
//!
//! The plan runs the same simulation as [`crate::expand::expand_world`] (every resource submitted
//! in [`crate::World::processing_order`], as `create`, or `logical_delete` when marked for
//! deletion; earlier jobs still in flight) and then, for every job, what the workers would do
//! with it:
//!
//! * the Heat request ([`crate::exec::stack::build_stack_request`]): stack name, operation,
//!   template, timeout, parameters and the rendered template;
//! * per `OS::Contrail::NetconfNamedConfigs` resource of the rendered stack, the Junos
//!   configuration it would load ([`crate::exec::junos`]), grouped per device in
//!   [`Plan::devices`] so a reader sees everything one router receives, in order;
//! * per `ESI::Monitoring::MonitoringTarget`, the collector's target request
//!   ([`crate::exec::monitor::target_request`]).
//!
//! Values that only exist once an earlier stack ran (`output_key` params, Heat `get_resource` /
//! `get_attr`) are shown as `(known after apply: <type>/<id> output <key>)`
//! ([`PlaceholderOutputs`]).
//!
//! Secrets never leave the plan unmasked: params and Heat parameters whose name is a secret name
//! ([`crate::secret::is_secret_name`]) or that the template declares `hidden: true` print as
//! [`MASK`]; object members with secret names are masked wherever they occur
//! ([`crate::secret::redact`]); and every secret value found (in resource bodies, in secret
//! params) is scrubbed from every text of the plan — rendered templates, Junos text, monitoring
//! requests and error messages — by [`Scrubber`].
//!
//! Pure: no I/O. A job whose stack cannot be built is reported on its resource
//! ([`JobPlan::errors`]) and the plan goes on.

pub mod changes;

use crate::catalog::HEAT_WORKER;
use crate::exec::heat_view::{template_parameters, HeatParamSchema, HeatViewError};
use crate::exec::job::Job as ExecJob;
use crate::exec::junos::{DeviceTarget, JunosError, NetconfProperties};
use crate::exec::monitor::{target_request, MonitorError, StackContext};
use crate::exec::render::render_template;
use crate::exec::stack::{
    build_stack_request, HeatOutput, HeatTemplate as ExecTemplate, OutputStore, StackError,
    StackOperation, StackRequest,
};
use crate::exec::template_path::TemplatePath;
use crate::exec::yaml::parse_yaml;
use crate::expand::{expand_world, EventAction, HandlerDecision, SuffixSource};
use crate::model::{Job, JobAction, JobParam, OnFailure, ParamType, ResourceRef};
use crate::secret::{is_secret_name, redact, MASK};
use crate::World;
use serde::Serialize;
use serde_json::{Map, Value};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use thiserror::Error;

/// The Heat resource type whose properties are pushed to a router over NETCONF.
pub const NETCONF_RESOURCE_TYPE: &str = "OS::Contrail::NetconfNamedConfigs";

/// The Heat resource type that registers a monitoring target with the collector.
pub const MONITORING_RESOURCE_TYPE: &str = "ESI::Monitoring::MonitoringTarget";

/// Secret values shorter than this are masked where their place is known (a secret param, a
/// hidden Heat parameter, a secret-named member) but not scrubbed from free text: replacing every
/// `"on"` or `"830"` in a rendered template would make it unreadable.
pub const MIN_SCRUBBED_LEN: usize = 4;

/// `(known after apply: <type>/<id> output <key>)`: the text shown for a stack output that only
/// exists once the stack of `<type>/<id>` ran.
pub fn known_after_apply(resource_type: &str, resource_id: &str, output_key: &str) -> String {
    format!("(known after apply: {resource_type}/{resource_id} output {output_key})")
}

/// The text shown for an attribute (or the id, `attribute == None`) of a resource inside a
/// stack that does not exist yet: `(known after apply: <type>/<id> resource <name>[ attribute <a>])`.
pub fn known_after_apply_resource(
    owner: &ResourceRef,
    stack_resource: &str,
    attribute: Option<&str>,
) -> String {
    match attribute {
        Some(a) => format!("(known after apply: {owner} resource {stack_resource} attribute {a})"),
        None => format!("(known after apply: {owner} resource {stack_resource})"),
    }
}

/// Why part of a job's plan could not be built. Every variant names the resource and, where one
/// is involved, the job, template and field.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlanError {
    /// The job record could not be read back as the worker reads it.
    #[error("{resource}: job {job}: unreadable job record: {reason}")]
    JobRecord {
        /// The changed resource.
        resource: ResourceRef,
        /// Job id.
        job: String,
        /// What is wrong.
        reason: String,
    },
    /// The Heat request could not be built (render error, missing template, bad param …).
    #[error("{resource}: {source}")]
    Stack {
        /// The changed resource.
        resource: ResourceRef,
        /// Why.
        #[source]
        source: Box<StackError>,
    },
    /// The rendered template is not YAML.
    #[error("{resource}: template `{template}`: the rendered template is not YAML: {reason}")]
    RenderedYaml {
        /// The changed resource.
        resource: ResourceRef,
        /// Template id.
        template: String,
        /// The parser's message.
        reason: String,
    },
    /// The rendered template's `parameters:` section is malformed.
    #[error("{resource}: template `{template}`: {source}")]
    Parameters {
        /// The changed resource.
        resource: ResourceRef,
        /// Template id.
        template: String,
        /// Why.
        #[source]
        source: HeatViewError,
    },
    /// A stack resource of the rendered template is malformed.
    #[error("{resource}: template `{template}`: stack resource `{stack_resource}`: {reason}")]
    StackResource {
        /// The changed resource.
        resource: ResourceRef,
        /// Template id.
        template: String,
        /// Name of the resource inside the stack.
        stack_resource: String,
        /// What is wrong.
        reason: String,
    },
    /// A Heat intrinsic function in a stack resource's properties cannot be resolved.
    #[error("{resource}: template `{template}`: stack resource `{stack_resource}`: {reason}")]
    Intrinsic {
        /// The changed resource.
        resource: ResourceRef,
        /// Template id.
        template: String,
        /// Name of the resource inside the stack.
        stack_resource: String,
        /// What cannot be resolved.
        reason: String,
    },
    /// A NetconfNamedConfigs resource cannot be composed.
    #[error("{resource}: template `{template}`: {source}")]
    Netconf {
        /// The changed resource.
        resource: ResourceRef,
        /// Template id.
        template: String,
        /// Why.
        #[source]
        source: Box<JunosError>,
    },
    /// A MonitoringTarget request cannot be built.
    #[error("{resource}: template `{template}`: {source}")]
    Monitor {
        /// The changed resource.
        resource: ResourceRef,
        /// Template id.
        template: String,
        /// Why.
        #[source]
        source: Box<MonitorError>,
    },
}

// ---------------------------------------------------------------------------------------------
// Outputs that do not exist yet
// ---------------------------------------------------------------------------------------------

/// An [`OutputStore`] for planning: every output a job asks for is either taken from the
/// `known` store (outputs of stacks that already exist) or, when absent there, yields the
/// placeholder text [`known_after_apply`]. Built per job, from the `output_key` params the job
/// carries (list sub-params included), so rendering never fails for a missing output.
pub struct PlaceholderOutputs<'a> {
    known: Option<&'a dyn OutputStore>,
    requested: BTreeMap<(String, String), BTreeSet<String>>,
}

impl<'a> PlaceholderOutputs<'a> {
    /// The outputs `job` requests; `known` holds stacks that already exist (none in a plan of a
    /// fresh world).
    pub fn for_params(params: &[JobParam], known: Option<&'a dyn OutputStore>) -> Self {
        let mut requested: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for p in params {
            collect_output_refs(p.kind, &p.value, &mut requested);
        }
        Self { known, requested }
    }

    /// True when the job requests no output at all.
    pub fn is_empty(&self) -> bool {
        self.requested.is_empty()
    }
}

fn collect_output_refs(
    kind: ParamType,
    value: &Value,
    out: &mut BTreeMap<(String, String), BTreeSet<String>>,
) {
    match kind {
        ParamType::Value => {}
        ParamType::OutputKey => {
            let s = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
            if let (Some(key), Some(t), Some(i)) =
                (s("output_key"), s("resource_type"), s("resource_id"))
            {
                out.entry((t, i)).or_default().insert(key);
            }
        }
        ParamType::List => {
            for item in value.as_array().into_iter().flatten() {
                let kind = item
                    .get("type")
                    .cloned()
                    .and_then(|t| serde_json::from_value::<ParamType>(t).ok())
                    .unwrap_or(ParamType::Value);
                collect_output_refs(kind, item.get("value").unwrap_or(&Value::Null), out);
            }
        }
    }
}

impl OutputStore for PlaceholderOutputs<'_> {
    fn outputs(&self, resource_type: &str, resource_id: &str) -> Option<Vec<HeatOutput>> {
        let mut list = self
            .known
            .and_then(|k| k.outputs(resource_type, resource_id))
            .unwrap_or_default();
        let keys = self
            .requested
            .get(&(resource_type.to_string(), resource_id.to_string()));
        for key in keys.into_iter().flatten() {
            let present = list
                .iter()
                .any(|o| o.get("output_key").and_then(Value::as_str) == Some(key.as_str()));
            if !present {
                let mut m = Map::new();
                m.insert("output_key".into(), Value::String(key.clone()));
                m.insert(
                    "output_value".into(),
                    Value::String(known_after_apply(resource_type, resource_id, key)),
                );
                list.push(Value::Object(m));
            }
        }
        Some(list)
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// Removes known secret values from texts and JSON values (longest value first), replacing each
/// occurrence with [`MASK`]. Values shorter than [`MIN_SCRUBBED_LEN`] are ignored.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Longest first, then in text order: the order of replacement.
    secrets: BTreeSet<(Reverse<usize>, String)>,
    /// All secrets in one automaton, built on first use after a change: tells in one pass over
    /// a text whether any secret occurs in it (most texts hold none), instead of one search per
    /// secret (which made scrubbing a world's output quadratic in the world).
    finder: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

impl Scrubber {
    /// An empty scrubber.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret value: strings and numbers as their text; lists and objects element-wise.
    pub fn add(&mut self, v: &Value) {
        match v {
            Value::String(s) => {
                if s.chars().count() >= MIN_SCRUBBED_LEN && s != MASK {
                    self.insert(s.clone());
                }
            }
            Value::Number(n) => {
                let s = n.to_string();
                if s.len() >= MIN_SCRUBBED_LEN {
                    self.insert(s);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.add(i)),
            Value::Object(m) => m.values().for_each(|i| self.add(i)),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn insert(&mut self, secret: String) {
        if self.secrets.insert((Reverse(secret.len()), secret)) {
            self.finder = std::sync::OnceLock::new();
        }
    }

    /// True when some known secret occurs in `text` (one pass over the text).
    fn occurs_in(&self, text: &str) -> bool {
        const FEW: usize = 8;
        if self.secrets.len() <= FEW {
            return self.secrets.iter().any(|(_, s)| text.contains(s.as_str()));
        }
        let finder = self.finder.get_or_init(|| {
            aho_corasick::AhoCorasick::new(self.secrets.iter().map(|(_, s)| s.as_str())).ok()
        });
        match finder {
            Some(f) => f.is_match(text),
            None => self.secrets.iter().any(|(_, s)| text.contains(s.as_str())),
        }
    }

    /// Adds the value of a job param (for a `list` param, the values of its sub-params).
    pub fn add_param_value(&mut self, kind: ParamType, value: &Value) {
        match kind {
            ParamType::List => value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item.get("value"))
                .for_each(|v| self.add(v)),
            _ => self.add(value),
        }
    }

    /// Adds, recursively, the values of every object member whose name is a secret name.
    pub fn add_secret_members(&mut self, v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    if is_secret_name(k) {
                        self.add(child);
                    } else {
                        self.add_secret_members(child);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.add_secret_members(i)),
            _ => {}
        }
    }

    /// Number of secret values known.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// True when no secret value is known.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every known secret value replaced by [`MASK`].
    pub fn text(&self, text: &str) -> String {
        if !self.occurs_in(text) {
            return text.to_string();
        }
        let mut out = text.to_string();
        for (_, s) in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// Scrubs every string (and object key) of a JSON value in place.
    pub fn value(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if self.occurs_in(s) {
                    *s = self.text(s);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            Value::Object(m) if !m.keys().any(|k| self.occurs_in(k)) => {
                m.values_mut().for_each(|child| self.value(child));
            }
            Value::Object(m) => {
                let old = std::mem::take(m);
                for (k, mut child) in old {
                    self.value(&mut child);
                    m.insert(self.text(&k), child);
                }
            }
            Value::Number(n) => {
                let text = n.to_string();
                if self.secrets.contains(&(Reverse(text.len()), text)) {
                    *v = Value::String(MASK.into());
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }
}

/// A JSON value with secret-named members masked ([`redact`]).
fn redacted(v: &Value) -> Value {
    let mut v = v.clone();
    redact(&mut v);
    v
}

/// [`MASK`] for a non-null value, `null` stays `null`.
fn masked(v: &Value) -> Value {
    if v.is_null() {
        Value::Null
    } else {
        Value::String(MASK.into())
    }
}

// ---------------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------------

/// Version of the plan document ([`Plan::format`]); bumped on any incompatible change of its
/// JSON shape.
pub const PLAN_FORMAT: u32 = 1;

/// The plan of a world.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// [`PLAN_FORMAT`].
    pub format: u32,
    /// World name.
    pub world: String,
    /// Totals.
    pub summary: Summary,
    /// Every resource, in processing order.
    pub resources: Vec<ResourcePlan>,
    /// Every device the stacks configure (in order of first appearance), with the
    /// configurations it receives in processing order.
    pub devices: Vec<DevicePlan>,
}

/// Totals of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Resources.
    pub resources: usize,
    /// Jobs.
    pub jobs: usize,
    /// Stack operations (create, update, delete).
    pub stacks: usize,
    /// Devices configured.
    pub devices: usize,
    /// Device configurations (one per NetconfNamedConfigs resource and job).
    pub device_configs: usize,
    /// Monitoring targets.
    pub targets: usize,
    /// Resources or jobs with an error.
    pub errors: usize,
}

/// What happens for one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourcePlan {
    /// The resource.
    #[serde(flatten)]
    pub resource: ResourceRef,
    /// Display name (the body's `name`), if any.
    pub name: Option<String>,
    /// Config version.
    pub version: u64,
    /// How the change is submitted (`create`, or `logical_delete` when marked for deletion).
    pub action: EventAction,
    /// Per handler, the template chosen or why none.
    pub decisions: Vec<HandlerDecision>,
    /// The expansion error, when the change could not be expanded.
    pub error: Option<String>,
    /// The jobs of the chain.
    pub jobs: Vec<JobPlan>,
}

impl ResourcePlan {
    /// Number of errors on this resource and its jobs.
    pub fn error_count(&self) -> usize {
        usize::from(self.error.is_some()) + self.jobs.iter().map(|j| j.errors.len()).sum::<usize>()
    }
}

/// One job and what its worker would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobPlan {
    /// Job id.
    pub id: String,
    /// Action.
    pub action: JobAction,
    /// Handler (`heat_worker`).
    pub handler: String,
    /// First of its chain.
    pub is_first: bool,
    /// Last of its chain.
    pub is_last: bool,
    /// Failure policy.
    pub on_failure: OnFailure,
    /// Jobs this one waits for.
    pub dependencies: Vec<String>,
    /// The params, secrets masked.
    pub params: Vec<ParamPlan>,
    /// The Heat request, when one could be built (heat_worker jobs only).
    pub stack: Option<StackPlan>,
    /// The NetconfNamedConfigs resources of the stack and the device each addresses (the
    /// configuration texts are in [`Plan::devices`]).
    pub devices: Vec<DeviceUse>,
    /// The monitoring targets of the stack.
    pub targets: Vec<TargetPlan>,
    /// What could not be planned (typed error texts naming resource, template and field).
    pub errors: Vec<String>,
}

/// One param of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamPlan {
    /// Name.
    pub param: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// Value as the job carries it ([`MASK`] when secret).
    pub value: Value,
    /// The resource chain the value came from, the recorded repetition folded.
    pub chain: Vec<ResourceRef>,
    /// How many times the job record repeats the chain (the recorded quirk; 1 for creates).
    pub repeated: usize,
    /// The value is masked (secret name, or a `hidden` Heat parameter).
    pub masked: bool,
}

/// The Heat request of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackPlan {
    /// `<resource_type>_<resource_id>`.
    pub stack_name: String,
    /// create / update / delete.
    pub operation: StackOperation,
    /// Template id (none for deletes).
    pub template_id: Option<String>,
    /// `timeout_mins`.
    pub timeout_mins: Option<i64>,
    /// Always `true`.
    pub disable_rollback: bool,
    /// Heat parameters as sent, in job order.
    pub parameters: Vec<StackParam>,
    /// Jinja variables (secrets masked).
    pub jinja: Map<String, Value>,
    /// The rendered template (secrets scrubbed).
    pub template: Option<String>,
}

/// One Heat parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackParam {
    /// Name.
    pub name: String,
    /// The typed value sent ([`MASK`] when secret).
    pub value: Value,
    /// How Heat displays it (`******` for `hidden`); `None` when the template does not declare it.
    pub heat: Option<String>,
    /// Declared `hidden: true`.
    pub hidden: bool,
    /// The value is masked.
    pub masked: bool,
}

/// What a device-configuring stack resource does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigOperation {
    /// The configuration is loaded (merge) and committed.
    Load,
    /// The stack is deleted: the statements this resource added are removed.
    Delete,
}

impl ConfigOperation {
    /// `load` / `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigOperation::Load => "load",
            ConfigOperation::Delete => "delete",
        }
    }
}

/// A NetconfNamedConfigs resource of a job's stack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceUse {
    /// Resource name inside the stack (`netconf_primary`).
    pub stack_resource: String,
    /// The device.
    pub device: DeviceTarget,
    /// Load or delete.
    pub operation: ConfigOperation,
    /// Number of configuration statements (normalised set lines).
    pub statements: usize,
}

/// A monitoring target of a job's stack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetPlan {
    /// Resource name inside the stack.
    pub stack_resource: String,
    /// `register` (POST /targets) or `delete` (with the stack).
    pub operation: TargetOperation,
    /// The `POST /targets` body (secrets masked).
    pub request: Value,
}

/// What happens to a monitoring target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetOperation {
    /// `POST /targets`.
    Register,
    /// `DELETE /targets/<id>` when the stack is deleted.
    Delete,
}

impl TargetOperation {
    /// `register` / `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetOperation::Register => "register",
            TargetOperation::Delete => "delete",
        }
    }
}

/// Everything one router receives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DevicePlan {
    /// The device (host, port, user).
    pub device: DeviceTarget,
    /// World resources whose body names this device's address (`edge_router/… (edge-a)`).
    pub known_as: Vec<String>,
    /// The configurations, in processing order.
    pub configs: Vec<DeviceConfig>,
}

/// One configuration a device receives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceConfig {
    /// The world resource whose stack sends it.
    pub resource: ResourceRef,
    /// The job.
    pub job: String,
    /// Resource name inside the stack.
    pub stack_resource: String,
    /// Load or delete.
    pub operation: ConfigOperation,
    /// Junos text (for `load`), or the `delete` statements (for `delete`); secrets scrubbed.
    pub text: String,
    /// CLI lines run after the load, before the commit.
    pub additional_commands: Vec<String>,
}

/// Options of [`plan_world`].
#[derive(Clone, Copy, Default)]
pub struct PlanOptions<'a> {
    /// Outputs of stacks that already exist (`None`: nothing exists yet).
    pub known_outputs: Option<&'a dyn OutputStore>,
    /// Plan only this resource: the world is still expanded in processing order (its jobs'
    /// dependencies are those of the whole world), but only its stacks are rendered and only
    /// it is in the plan.
    pub only: Option<&'a ResourceRef>,
}

/// Plans every resource of a world (see the module documentation). `suffixes` gives the job id
/// suffixes, as for [`expand_world`].
pub fn plan_world(
    world: &World,
    suffixes: &mut dyn SuffixSource,
    options: PlanOptions<'_>,
) -> Plan {
    let mut scrubber = Scrubber::new();
    for r in world.resources.iter() {
        scrubber.add_secret_members(&r.body);
    }
    let mut resources = Vec::new();
    let mut device_configs: Vec<(DeviceTarget, DeviceConfig)> = Vec::new();
    for outcome in expand_world(world, suffixes) {
        let r = &outcome.resource;
        if options.only.is_some_and(|only| only != r) {
            continue;
        }
        let mut rp = ResourcePlan {
            resource: r.clone(),
            name: world
                .resources
                .get(&r.resource_type, &r.resource_id)
                .and_then(|res| res.body.get("name"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            version: outcome.version,
            action: outcome.action,
            decisions: outcome.decisions.clone(),
            error: None,
            jobs: Vec::new(),
        };
        match &outcome.result {
            Err(e) => rp.error = Some(e.to_string()),
            Ok(jobs) => {
                for job in jobs {
                    let planned = plan_job(world, job, options, &mut scrubber);
                    device_configs.extend(planned.configs);
                    rp.jobs.push(planned.job);
                }
            }
        }
        resources.push(rp);
    }

    let mut devices: Vec<DevicePlan> = Vec::new();
    let mut device_index: HashMap<DeviceTarget, usize> = HashMap::new();
    let order = (!device_configs.is_empty()).then(|| world.processing_order());
    for (target, config) in device_configs {
        match device_index.get(&target) {
            Some(&i) => devices[i].configs.push(config),
            None => {
                device_index.insert(target.clone(), devices.len());
                devices.push(DevicePlan {
                    known_as: known_as(
                        world,
                        order.as_deref().unwrap_or_default(),
                        &target.device_ip,
                    ),
                    device: target,
                    configs: vec![config],
                })
            }
        }
    }

    let mut plan = Plan {
        format: PLAN_FORMAT,
        world: world.name.clone(),
        summary: Summary::default(),
        resources,
        devices,
    };
    for c in plan.devices.iter().flat_map(|d| &d.configs) {
        for v in crate::secret::junos_secret_values(&c.text) {
            scrubber.add(&Value::String(v));
        }
    }
    plan.scrub(&scrubber);
    plan.summary = plan.compute_summary();
    plan
}

/// The world resources whose body carries `address` as a top-level string field, in
/// processing `order` (computed once per plan, not once per device).
fn known_as(world: &World, order: &[ResourceRef], address: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in order {
        let Some(r) = world.resources.get(&key.resource_type, &key.resource_id) else {
            continue;
        };
        let Some(body) = r.body.as_object() else {
            continue;
        };
        let matches = body
            .iter()
            .any(|(k, v)| k != "id" && v.as_str() == Some(address));
        if matches {
            match body.get("name").and_then(Value::as_str) {
                Some(n) => out.push(format!("{key} ({n})")),
                None => out.push(key.to_string()),
            }
        }
    }
    out
}

impl Plan {
    fn compute_summary(&self) -> Summary {
        let jobs = || self.resources.iter().flat_map(|r| &r.jobs);
        Summary {
            resources: self.resources.len(),
            jobs: jobs().count(),
            stacks: jobs().filter(|j| j.stack.is_some()).count(),
            devices: self.devices.len(),
            device_configs: self.devices.iter().map(|d| d.configs.len()).sum(),
            targets: jobs().map(|j| j.targets.len()).sum(),
            errors: self.resources.iter().map(ResourcePlan::error_count).sum(),
        }
    }

    /// The plan of one resource: that resource only, and the devices its stacks configure with
    /// its configurations only. `None` when the resource is not part of the plan.
    pub fn only(&self, resource: &ResourceRef) -> Option<Plan> {
        let rp = self.resources.iter().find(|r| &r.resource == resource)?;
        let devices = self
            .devices
            .iter()
            .filter_map(|d| {
                let configs: Vec<DeviceConfig> = d
                    .configs
                    .iter()
                    .filter(|c| &c.resource == resource)
                    .cloned()
                    .collect();
                (!configs.is_empty()).then(|| DevicePlan {
                    device: d.device.clone(),
                    known_as: d.known_as.clone(),
                    configs,
                })
            })
            .collect();
        let mut plan = Plan {
            format: self.format,
            world: self.world.clone(),
            summary: Summary::default(),
            resources: vec![rp.clone()],
            devices,
        };
        plan.summary = plan.compute_summary();
        Some(plan)
    }

    /// Total number of errors.
    pub fn error_count(&self) -> usize {
        self.summary.errors
    }

    /// Scrubs every text of the plan.
    fn scrub(&mut self, s: &Scrubber) {
        for c in self.devices.iter_mut().flat_map(|d| &mut d.configs) {
            c.text = crate::secret::mask_junos_text(&c.text);
            for l in &mut c.additional_commands {
                *l = crate::secret::mask_junos_text(l);
            }
        }
        if s.is_empty() {
            return;
        }
        for r in &mut self.resources {
            if let Some(e) = &mut r.error {
                *e = s.text(e);
            }
            for j in &mut r.jobs {
                for p in &mut j.params {
                    s.value(&mut p.value);
                }
                if let Some(st) = &mut j.stack {
                    for p in &mut st.parameters {
                        s.value(&mut p.value);
                        if let Some(h) = &mut p.heat {
                            *h = s.text(h);
                        }
                    }
                    for v in st.jinja.values_mut() {
                        s.value(v);
                    }
                    if let Some(t) = &mut st.template {
                        *t = s.text(t);
                    }
                }
                for t in &mut j.targets {
                    s.value(&mut t.request);
                }
                for e in &mut j.errors {
                    *e = s.text(e);
                }
            }
        }
        for d in &mut self.devices {
            for c in &mut d.configs {
                c.text = s.text(&c.text);
                for l in &mut c.additional_commands {
                    *l = s.text(l);
                }
            }
        }
    }
}

struct PlannedJob {
    job: JobPlan,
    configs: Vec<(DeviceTarget, DeviceConfig)>,
}

fn plan_job(
    world: &World,
    job: &Job,
    options: PlanOptions<'_>,
    scrubber: &mut Scrubber,
) -> PlannedJob {
    let resource = job.resource();
    let mut jp = JobPlan {
        id: job.id.clone(),
        action: job.action,
        handler: job.handler.clone(),
        is_first: job.is_first,
        is_last: job.is_last,
        on_failure: job.on_failure,
        dependencies: job.dependency.clone(),
        params: Vec::new(),
        stack: None,
        devices: Vec::new(),
        targets: Vec::new(),
        errors: Vec::new(),
    };
    let mut configs = Vec::new();

    // Secret params by name; hidden ones are added once the template is known.
    for p in &job.params {
        if is_secret_name(&p.param) {
            scrubber.add_param_value(p.kind, &p.value);
        }
        scrubber.add_secret_members(&p.value);
    }

    let mut hidden: BTreeSet<String> = BTreeSet::new();
    if job.handler == HEAT_WORKER {
        match stack_for(world, job, options) {
            Ok(BuiltStack { request, rendered }) => {
                // What the stack contains; for a delete, what the stack being deleted contains,
                // rendered from the current body as its create would have.
                let contents = if job.action.is_delete() {
                    let mut as_create = job.clone();
                    as_create.action = JobAction::Create;
                    match stack_for(world, &as_create, options) {
                        Ok(b) => b.rendered,
                        Err(e) => {
                            jp.errors.push(e.to_string());
                            None
                        }
                    }
                } else {
                    rendered
                };
                if let Some(c) = &contents {
                    hidden = c.hidden.clone();
                    for name in &hidden {
                        if let Some(v) = c.sent.get(name) {
                            scrubber.add(v);
                        }
                    }
                    let operation = if job.action.is_delete() {
                        ConfigOperation::Delete
                    } else {
                        ConfigOperation::Load
                    };
                    stack_contents(&resource, c, job, operation, &mut jp, &mut configs);
                }
                let declared = contents.as_ref().map(|c| c.declared.as_slice());
                jp.stack = Some(stack_plan(&request, declared.unwrap_or_default()));
            }
            Err(e) => jp.errors.push(e.to_string()),
        }
    }

    jp.params = job
        .params
        .iter()
        .map(|p| {
            let (chain, repeated) = crate::expand::fold_chain(&p.resources);
            let secret = is_secret_name(&p.param) || hidden.contains(&p.param);
            let value = match (secret, p.kind) {
                (false, _) => redacted(&p.value),
                (true, ParamType::List) => Value::Array(
                    p.value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|item| {
                            let mut item = item.clone();
                            if let Some(v) = item.get_mut("value") {
                                *v = masked(v);
                            }
                            item
                        })
                        .collect(),
                ),
                (true, _) => masked(&p.value),
            };
            ParamPlan {
                param: p.param.clone(),
                kind: p.kind,
                value,
                chain,
                repeated,
                masked: secret,
            }
        })
        .collect();
    PlannedJob { job: jp, configs }
}

/// The rendered stack of a create/modify job, parsed.
struct Rendered {
    template_id: String,
    /// The template's declared parameters.
    declared: Vec<HeatParamSchema>,
    /// The parsed template, placeholders replaced by YAML-safe tokens.
    parsed: Value,
    /// Typed parameter values as `get_param` yields them (tokens in place of placeholders).
    typed: Map<String, Value>,
    /// Parameters as sent (readable placeholders).
    sent: Map<String, Value>,
    /// Declared `hidden: true`.
    hidden: BTreeSet<String>,
    /// Token → readable placeholder.
    tokens: Vec<(String, String)>,
}

struct BuiltStack {
    request: StackRequest,
    rendered: Option<Rendered>,
}

fn stack_for(world: &World, job: &Job, options: PlanOptions<'_>) -> Result<BuiltStack, PlanError> {
    let resource = job.resource();
    let record = serde_json::to_value(job)
        .map_err(|e| e.to_string())
        .and_then(|v| ExecJob::from_value(&v).map_err(|e| e.to_string()))
        .map_err(|reason| PlanError::JobRecord {
            resource: resource.clone(),
            job: job.id.clone(),
            reason,
        })?;
    let path = world
        .catalog
        .schemas
        .get(&job.resource_type)
        .and_then(|s| s.template_paths.get(&job.handler))
        .cloned()
        .map(TemplatePath::from);
    let template_id = match (&path, job.action.is_delete()) {
        (Some(p), false) => p.template_id(&record.resource_input).ok().flatten(),
        _ => None,
    };
    let template = template_id
        .as_ref()
        .and_then(|id| world.catalog.templates.get(id))
        .map(|t| ExecTemplate {
            name: t.id.clone(),
            template_file: t.template_file.clone(),
            parameter_mappings: t.raw_mappings.clone(),
        });
    let outputs = PlaceholderOutputs::for_params(&job.params, options.known_outputs);
    let request = build_stack_request(&record, path.as_ref(), template.as_ref(), &outputs)
        .map_err(|source| PlanError::Stack {
            resource: resource.clone(),
            source: Box::new(source),
        })?;
    let rendered = match (&request.template_id, &template) {
        (Some(id), Some(t)) => Some(parse_rendered(&resource, &job.id, id, t, &request)?),
        _ => None,
    };
    Ok(BuiltStack { request, rendered })
}

/// Replaces every placeholder text inside the strings of `v` by its token.
fn tokenize(v: &Value, tokens: &[(String, String)]) -> Value {
    match v {
        Value::String(s) => {
            let mut out = s.clone();
            for (token, text) in tokens {
                if out.contains(text.as_str()) {
                    out = out.replace(text.as_str(), token);
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| tokenize(i, tokens)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), tokenize(v, tokens)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Replaces every token inside `text` by its readable placeholder.
fn untokenize_text(text: &str, tokens: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (token, readable) in tokens {
        if out.contains(token.as_str()) {
            out = out.replace(token.as_str(), readable);
        }
    }
    out
}

fn untokenize(v: &mut Value, tokens: &[(String, String)]) {
    match v {
        Value::String(s) => *s = untokenize_text(s, tokens),
        Value::Array(items) => items.iter_mut().for_each(|i| untokenize(i, tokens)),
        Value::Object(m) => m.values_mut().for_each(|i| untokenize(i, tokens)),
        _ => {}
    }
}

/// Every `(known after apply: …)` text inside the strings of `v`.
fn placeholders_in(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("(known after apply: ") {
                let tail = &rest[start..];
                match tail.find(')') {
                    Some(end) => {
                        out.insert(tail[..=end].to_string());
                        rest = &tail[end + 1..];
                    }
                    None => break,
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| placeholders_in(i, out)),
        Value::Object(m) => m.values().for_each(|i| placeholders_in(i, out)),
        _ => {}
    }
}

/// Renders the template again with YAML-safe tokens in place of the placeholders (a placeholder
/// such as `(known after apply: subnet/x output id)` is not a valid plain YAML scalar), parses
/// it and types the parameters the way `get_param` yields them.
fn parse_rendered(
    resource: &ResourceRef,
    job: &str,
    template_id: &str,
    template: &ExecTemplate,
    request: &StackRequest,
) -> Result<Rendered, PlanError> {
    let mut found = BTreeSet::new();
    placeholders_in(&Value::Object(request.jinja_params.clone()), &mut found);
    placeholders_in(
        &Value::Object(request.request_parameters.clone()),
        &mut found,
    );
    // Longest first, so that no placeholder is replaced inside a longer one.
    let mut found: Vec<String> = found.into_iter().collect();
    found.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    let tokens: Vec<(String, String)> = found
        .into_iter()
        .enumerate()
        .map(|(i, text)| (format!("__esi_known_after_apply_{i}__"), text))
        .collect();
    let text = if tokens.is_empty() {
        request.template_text.clone().unwrap_or_default()
    } else {
        let jinja = match tokenize(&Value::Object(request.jinja_params.clone()), &tokens) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        render_template(template_id, &template.template_file, &jinja).map_err(|e| {
            PlanError::Stack {
                resource: resource.clone(),
                source: Box::new(StackError::Render {
                    job: job.to_string(),
                    source: e,
                }),
            }
        })?
    };
    let parsed = parse_yaml(&text).map_err(|e| PlanError::RenderedYaml {
        resource: resource.clone(),
        template: template_id.to_string(),
        reason: e.to_string(),
    })?;
    let declared: Vec<HeatParamSchema> =
        template_parameters(&parsed).map_err(|source| PlanError::Parameters {
            resource: resource.clone(),
            template: template_id.to_string(),
            source,
        })?;
    let sent_tokens = match tokenize(&Value::Object(request.request_parameters.clone()), &tokens) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut typed = sent_tokens.clone();
    let mut hidden = BTreeSet::new();
    for p in &declared {
        typed.insert(p.name.clone(), p.typed_value(sent_tokens.get(&p.name)));
        if p.hidden {
            hidden.insert(p.name.clone());
        }
    }
    Ok(Rendered {
        template_id: template_id.to_string(),
        declared,
        parsed,
        typed,
        sent: request.request_parameters.clone(),
        hidden,
        tokens,
    })
}

/// Replaces `get_resource` / `get_attr` (whose values only exist once the stack ran) by
/// readable placeholders.
fn replace_stack_refs(v: &Value, owner: &ResourceRef) -> Value {
    match v {
        Value::Object(m) if m.len() == 1 => {
            if let Some(arg) = m.get("get_resource") {
                let name = arg.as_str().map_or_else(|| arg.to_string(), str::to_string);
                return Value::String(known_after_apply_resource(owner, &name, None));
            }
            if let Some(arg) = m.get("get_attr") {
                let parts: Vec<String> = arg
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                    .collect();
                let name = parts.first().cloned().unwrap_or_default();
                let attr = parts.get(1..).map(|a| a.join(".")).unwrap_or_default();
                return Value::String(known_after_apply_resource(
                    owner,
                    &name,
                    Some(attr.as_str()),
                ));
            }
            Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), replace_stack_refs(v, owner)))
                    .collect(),
            )
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), replace_stack_refs(v, owner)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| replace_stack_refs(i, owner)).collect())
        }
        other => other.clone(),
    }
}

/// The device configurations and monitoring targets of a rendered stack.
fn stack_contents(
    resource: &ResourceRef,
    rendered: &Rendered,
    job: &Job,
    operation: ConfigOperation,
    jp: &mut JobPlan,
    configs: &mut Vec<(DeviceTarget, DeviceConfig)>,
) {
    let template = rendered.template_id.as_str();
    let Some(stack_resources) = rendered.parsed.get("resources").and_then(Value::as_object) else {
        return;
    };
    let empty = Map::new();
    let ctx = StackContext {
        parameters: &rendered.typed,
        resources: &empty,
    };
    let stack_error = |name: &str, reason: &str| {
        PlanError::StackResource {
            resource: resource.clone(),
            template: template.to_string(),
            stack_resource: name.to_string(),
            reason: reason.to_string(),
        }
        .to_string()
    };
    for (name, def) in stack_resources {
        let Some(kind) = def.get("type").and_then(Value::as_str) else {
            jp.errors.push(stack_error(name, "no `type`"));
            continue;
        };
        if kind != NETCONF_RESOURCE_TYPE && kind != MONITORING_RESOURCE_TYPE {
            continue;
        }
        let properties =
            replace_stack_refs(def.get("properties").unwrap_or(&Value::Null), resource);
        let resolved = match crate::exec::monitor::resolve_intrinsics(name, &properties, ctx) {
            Ok(mut v) => {
                untokenize(&mut v, &rendered.tokens);
                v
            }
            Err(e) => {
                jp.errors.push(
                    PlanError::Intrinsic {
                        resource: resource.clone(),
                        template: template.to_string(),
                        stack_resource: name.clone(),
                        reason: e.to_string(),
                    }
                    .to_string(),
                );
                continue;
            }
        };
        if kind == NETCONF_RESOURCE_TYPE {
            let label = format!("{}_{}/{name}", job.resource_type, job.resource_id);
            match NetconfProperties::from_value(&label, &resolved) {
                Ok(props) => {
                    let composed = props.compose();
                    let lines = composed.set_lines();
                    let text = match operation {
                        ConfigOperation::Load => composed.text.clone(),
                        ConfigOperation::Delete => lines
                            .iter()
                            .map(|l| format!("delete {l}\n"))
                            .collect::<String>(),
                    };
                    jp.devices.push(DeviceUse {
                        stack_resource: name.clone(),
                        device: props.device.clone(),
                        operation,
                        statements: lines.len(),
                    });
                    configs.push((
                        props.device.clone(),
                        DeviceConfig {
                            resource: resource.clone(),
                            job: job.id.clone(),
                            stack_resource: name.clone(),
                            operation,
                            text,
                            additional_commands: match operation {
                                ConfigOperation::Load => composed.additional_commands.clone(),
                                ConfigOperation::Delete => Vec::new(),
                            },
                        },
                    ));
                }
                Err(source) => jp.errors.push(
                    PlanError::Netconf {
                        resource: resource.clone(),
                        template: template.to_string(),
                        source: Box::new(source),
                    }
                    .to_string(),
                ),
            }
        } else {
            match target_request(name, &resolved, ctx) {
                Ok(request) => jp.targets.push(TargetPlan {
                    stack_resource: name.clone(),
                    operation: match operation {
                        ConfigOperation::Load => TargetOperation::Register,
                        ConfigOperation::Delete => TargetOperation::Delete,
                    },
                    request: redacted(&request),
                }),
                Err(source) => jp.errors.push(
                    PlanError::Monitor {
                        resource: resource.clone(),
                        template: template.to_string(),
                        source: Box::new(source),
                    }
                    .to_string(),
                ),
            }
        }
    }
}

/// The displayed Heat request: secret parameters masked (by name, `hidden`), Heat's display of
/// each declared parameter.
fn stack_plan(request: &StackRequest, declared: &[HeatParamSchema]) -> StackPlan {
    let declared: BTreeMap<&str, &HeatParamSchema> =
        declared.iter().map(|p| (p.name.as_str(), p)).collect();
    let parameters = request
        .request_parameters
        .iter()
        .map(|(name, v)| {
            let decl = declared.get(name.as_str());
            let is_hidden = decl.is_some_and(|d| d.hidden);
            let secret = is_hidden || is_secret_name(name);
            StackParam {
                name: name.clone(),
                value: if secret { masked(v) } else { redacted(v) },
                heat: decl.map(|d| {
                    if secret {
                        MASK.to_string()
                    } else {
                        d.display(Some(v)).text
                    }
                }),
                hidden: is_hidden,
                masked: secret,
            }
        })
        .collect();
    let jinja = request
        .jinja_params
        .iter()
        .map(|(k, v)| {
            let v = if is_secret_name(k) {
                masked(v)
            } else {
                redacted(v)
            };
            (k.clone(), v)
        })
        .collect();
    StackPlan {
        stack_name: request.stack_name.clone(),
        operation: request.operation,
        template_id: request.template_id.clone(),
        timeout_mins: request.timeout_mins,
        disable_rollback: request.disable_rollback,
        parameters,
        jinja,
        template: request.template_text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::SeededSuffixes;
    use serde_json::json;

    fn p(param: &str, kind: ParamType, value: Value) -> JobParam {
        JobParam {
            param: param.into(),
            kind,
            value,
            resources: Vec::new(),
        }
    }

    #[test]
    fn placeholder_outputs_answer_every_requested_key() {
        let params = vec![
            p(
                "net",
                ParamType::OutputKey,
                json!({"output_key": "id", "resource_type": "network", "resource_id": "n1"}),
            ),
            p(
                "jinja_subnets",
                ParamType::List,
                json!([{"param": "jinja_subnets", "type": "output_key", "resources": [],
                        "value": {"output_key": "id", "resource_type": "subnet", "resource_id": "s1"}}]),
            ),
        ];
        let store = PlaceholderOutputs::for_params(&params, None);
        assert!(!store.is_empty());
        let net = store.outputs("network", "n1").unwrap_or_default();
        assert_eq!(
            net,
            vec![
                json!({"output_key": "id", "output_value": "(known after apply: network/n1 output id)"})
            ]
        );
        let sub = store.outputs("subnet", "s1").unwrap_or_default();
        assert_eq!(
            sub[0]["output_value"],
            "(known after apply: subnet/s1 output id)"
        );
        // A store that knows real outputs wins over the placeholder.
        let mut known: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        known.insert(
            "network/n1".into(),
            vec![json!({"output_key": "id", "output_value": "uuid-1"})],
        );
        let store = PlaceholderOutputs::for_params(&params, Some(&known));
        assert_eq!(
            store.outputs("network", "n1").unwrap_or_default(),
            vec![json!({"output_key": "id", "output_value": "uuid-1"})]
        );
    }

    #[test]
    fn scrubber_masks_longest_first_and_ignores_short_values() {
        let mut s = Scrubber::new();
        s.add(&json!("hunter2"));
        s.add(&json!("hunter2-long"));
        s.add(&json!("ab"));
        s.add_secret_members(&json!({"name": "r1", "creds": {"password": "pw-123456"}}));
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.text("a hunter2-long b hunter2 c pw-123456 ab"),
            "a ****** b ****** c ****** ab"
        );
        let mut v = json!({"x": ["hunter2"], "hunter2": 1});
        s.value(&mut v);
        assert_eq!(v, json!({"x": ["******"], "******": 1}));
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    const NETCONF_TEMPLATE: &str = r#"heat_template_version: 2013-05-23
parameters:
  device_ip: {type: string}
  device_password: {type: string, hidden: true}
  login_phrase: {type: string, hidden: true}
  group: {type: string}
  unit: {type: number}
resources:
{% for d in ["a", "b"] %}
  netconf_{{ d }}:
    type: OS::Contrail::NetconfNamedConfigs
    properties:
      device_ip: {{ d }}.{ get_param: device_ip }
      port: 830
      username: u
      password: { get_param: device_password }
      configs:
        - path:
            - {config_type: tag, xml_type: tag, tag: interfaces}
            - {config_type: named_tag, xml_type: named_tag, tag: unit, name: { get_param: unit }}
          config:
            str_replace:
              template: "apply-groups G;\ndescription \"K\";\n"
              params: {G: { get_param: group }, K: { get_param: login_phrase }}
  mon_{{ d }}:
    type: ESI::Monitoring::MonitoringTarget
    properties:
      type: snmp_device
      resource_type: boxes
      resource_id: {{ jinja_net }}
      properties: {password: { get_param: device_password }, ref: { get_attr: [netconf_a, x] }}
{% endfor %}
"#;

    fn world(devices_same: bool) -> World {
        let ip = if devices_same { "same" } else { "{{ d }}" };
        let template = NETCONF_TEMPLATE.replace(
            "{{ d }}.{ get_param: device_ip }",
            &format!("{ip}-{{{{ jinja_net }}}}"),
        );
        World::from_json(&json!({
            "name": "t",
            "schemas": {
                "net": {"template_path": "Cnet"},
                "box": {"template_path": "Cbox", "relations": {"net_id": "net"}}
            },
            "heat_templates": {
                "net": {"parameter_mappings": {"heat_timeout": "C3"},
                        "template_file": "heat_template_version: 2013-05-23\nresources: {}\noutputs: {id: {value: x}}\n"},
                "box": {"parameter_mappings": {
                    "heat_timeout": "C5",
                    "device_ip": "Pip",
                    "device_password": "Ppassword",
                    "login_phrase": "Pphrase",
                    "group": "Pgroup",
                    "unit": "Punit",
                    "jinja_net": {"output_key": "id", "path": ["net_id"]}
                }, "template_file": template}
            },
            "resources": {
                "net": {"n1": {"version": 1, "body": {"id": "n1"}}},
                "box": {"b1": {"version": 1, "body": {"id": "b1", "net_id": "n1", "ip": "192.0.2.1",
                    "password": "planted-password-1", "phrase": "planted-phrase-2",
                    "group": "GRP", "unit": 7}}}
            }
        }))
        .unwrap_or_default()
    }

    fn plan(devices_same: bool) -> Plan {
        plan_world(
            &world(devices_same),
            &mut SeededSuffixes::new(0),
            PlanOptions::default(),
        )
    }

    #[test]
    fn plans_stacks_devices_and_targets_with_placeholders() {
        let plan = plan(false);
        assert_eq!(plan.summary.errors, 0, "{plan:#?}");
        assert_eq!(plan.summary.resources, 2);
        let b = &plan.resources[1];
        assert_eq!(b.resource, ResourceRef::new("box", "b1"));
        let job = &b.jobs[0];
        assert_eq!(job.dependencies.len(), 1, "waits for the net job");
        let stack = job.stack.as_ref().expect("stack");
        assert_eq!(stack.timeout_mins, Some(5));
        assert_eq!(
            stack.jinja["jinja_net"],
            "(known after apply: net/n1 output id)"
        );
        // The placeholder (not a YAML-safe scalar) went through rendering and parsing.
        assert_eq!(plan.devices.len(), 2);
        assert_eq!(
            plan.devices[0].device.device_ip,
            "a-(known after apply: net/n1 output id)"
        );
        assert_eq!(job.targets.len(), 2);
        assert_eq!(
            job.targets[0].request["resource_id"],
            "(known after apply: net/n1 output id)"
        );
        assert_eq!(
            job.targets[0].request["properties"]["ref"],
            "(known after apply: box/b1 resource netconf_a attribute x)"
        );
        let text = &plan.devices[0].configs[0].text;
        assert!(text.contains("unit 7 {"), "{text}");
        assert!(text.contains("apply-groups GRP;"), "{text}");
    }

    #[test]
    fn devices_group_configs_of_all_stacks() {
        let plan = plan(true);
        assert_eq!(plan.devices.len(), 1);
        let d = &plan.devices[0];
        assert_eq!(d.configs.len(), 2);
        assert_eq!(d.configs[0].stack_resource, "netconf_a");
        assert_eq!(d.configs[1].stack_resource, "netconf_b");
        assert_eq!(plan.summary.device_configs, 2);
        let only = plan.only(&ResourceRef::new("net", "n1")).expect("net");
        assert!(only.devices.is_empty());
        assert_eq!(only.resources.len(), 1);
        let only = plan.only(&ResourceRef::new("box", "b1")).expect("box");
        assert_eq!(only.devices.len(), 1);
        assert!(plan.only(&ResourceRef::new("box", "nope")).is_none());
    }

    #[test]
    fn secrets_are_masked_everywhere() {
        let plan = plan(false);
        let text = format!(
            "{plan:?}\n{}",
            serde_json::to_string(&plan).unwrap_or_default()
        );
        for planted in ["planted-password-1", "planted-phrase-2"] {
            assert!(!text.contains(planted), "{planted} leaked");
        }
        let job = &plan.resources[1].jobs[0];
        let phrase = job.params.iter().find(|p| p.param == "login_phrase");
        assert!(
            phrase.is_some_and(|p| p.masked && p.value == MASK),
            "hidden param masked"
        );
        let stack = job.stack.as_ref().expect("stack");
        let pw = stack
            .parameters
            .iter()
            .find(|p| p.name == "device_password");
        assert!(pw.is_some_and(|p| p.hidden && p.heat.as_deref() == Some(MASK)));
        assert_eq!(job.targets[0].request["properties"]["password"], MASK);
        // The hidden phrase went into the Junos text through str_replace: scrubbed there.
        assert!(plan.devices[0].configs[0]
            .text
            .contains("description \"******\""));
    }

    #[test]
    fn a_resource_marked_for_deletion_deletes_its_stack_and_its_statements() {
        let mut w = world(false);
        let key = ResourceRef::new("box", "b1");
        let Some(mut r) = w.resources.get("box", "b1").cloned() else {
            panic!("box")
        };
        r.marked_for_deletion = true;
        w.resources.insert(r);
        let plan = plan_world(&w, &mut SeededSuffixes::new(0), PlanOptions::default());
        assert_eq!(plan.summary.errors, 0, "{plan:#?}");
        let rp = plan.only(&key).expect("box");
        let job = &rp.resources[0].jobs[0];
        assert_eq!(job.action, JobAction::LogicalDelete);
        let stack = job.stack.as_ref().expect("stack");
        assert_eq!(stack.operation, StackOperation::Delete);
        assert!(stack.parameters.is_empty() && stack.template.is_none());
        assert!(job
            .devices
            .iter()
            .all(|d| d.operation == ConfigOperation::Delete));
        assert!(job
            .targets
            .iter()
            .all(|t| t.operation == TargetOperation::Delete));
        let text = &rp.devices[0].configs[0].text;
        assert!(
            text.contains("delete interfaces unit 7 apply-groups GRP\n"),
            "{text}"
        );
        assert!(
            !format!("{plan:?}").contains("planted-"),
            "secrets of a delete"
        );
    }

    #[test]
    fn a_broken_template_is_reported_and_the_plan_goes_on() {
        let mut w = world(false);
        if let Some(t) = w.catalog.templates.get_mut("box") {
            t.template_file = "{% if %}".into();
        }
        let plan = plan_world(&w, &mut SeededSuffixes::new(0), PlanOptions::default());
        assert_eq!(plan.summary.errors, 1);
        let err = &plan.resources[1].jobs[0].errors[0];
        assert!(
            err.starts_with("box/b1: job create:heat_worker:box:b1"),
            "{err}"
        );
        assert!(err.contains("box"), "{err}");
        assert!(plan.resources[0].jobs[0].stack.is_some());
    }
}
