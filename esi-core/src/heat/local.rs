//! `LocalHeat`: the in-process [`Heat`] of the embedded default.
//!
//! It evaluates the rendered HOT text of a [`StackRequest`] ([`super::hot`]): parameters
//! typed as Heat types them (sent values over defaults), resources in dependency order
//! (`depends_on` plus implicit `get_resource`/`get_attr` references; ties in template order),
//! intrinsics, outputs. Resource types are driven by [`ResourcePlugin`]s keyed by type name;
//! types without a plug-in use [`GenericPlugin`].
//!
//! Behaviour (decisions for what Heat recordings do not show are marked *decision*):
//!
//! * stacks are kept by name; ids are seeded hashes of (stack name, how many times a stack of
//!   that name was created) and, for resources, (stack, resource, creation count);
//! * **create** of a new name → `CREATE_COMPLETE` / `Stack CREATE completed successfully`;
//!   create of an existing name → update (E4), except: *decision* an existing stack whose
//!   template and parameters are identical and whose status is `*_COMPLETE` is left alone and
//!   its current outcome returned (a retried job leaves the same stacks and documents), and a
//!   stack in `CREATE_FAILED` is created again (`CREATE_*`);
//! * **update** → `UPDATE_COMPLETE` / `Stack successfully updated`; update of a missing stack
//!   creates it (E4). Resources whose resolved properties did not change are not touched;
//!   changed ones go through the plug-in's update (or are replaced); resources that left the
//!   template are deleted in reverse order;
//! * **delete** → plug-in deletes in reverse creation order, `DELETE_COMPLETE` / `Stack
//!   DELETE completed successfully`, outputs `[]`; a missing stack is `DELETE_COMPLETE`; a
//!   deleted stack is no longer found by [`Heat::get`];
//! * a request Heat would refuse (YAML error, unknown resource or parameter reference, cycle,
//!   missing required parameter, value not of its type; in strict mode a parameter the
//!   template does not declare) is [`HeatError::Rejected`] and leaves no stack;
//! * a resource that fails makes the stack `<ACTION>_FAILED` with the reason `Resource <ACTION>
//!   failed: resources.<name>: <error>`; resources done before stay (rollback is disabled);
//!   *decision* the outputs of a failed stack are `[]`;
//! * outputs: `[{output_key, output_value, description}]` in template order (`No description
//!   given` when absent); an output that cannot be resolved gets `output_value: null` and an
//!   `output_error`, as Heat shows it;
//! * faults for tests ([`LocalHeat::inject`]): a named stack fails the next N operations
//!   (optionally only one kind) with a reason, answers `Unavailable`, or is delayed (with a
//!   `timeout_mins` shorter than the delay it fails with `<Action> timed out`).
//!
//! Concurrency: operations on one stack are serialised (an async lock per stack name); plug-in
//! calls happen without holding any `std` mutex.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::drive::{
    converge_resource, delete_all, failure_reason, DriveFailure, DrivenResource, Driver,
};
use super::hot::{resolve, HotTemplate, Scope};
use super::ids::SeededIds;
use super::plugins::{
    GenericPlugin, MonitoringPlugin, NetconfPlugin, ResourceContext, ResourcePlugin,
};
use super::{Heat, HeatError, StackOutcome};
use crate::collector::Collector;
use crate::device::DeviceRegistry;
use crate::exec::stack::{StackOperation, StackRequest};

/// The resource type of NETCONF configuration resources.
pub const NETCONF_TYPE: &str = "OS::Contrail::NetconfNamedConfigs";
/// The resource type of monitoring targets.
pub const MONITORING_TYPE: &str = "ESI::Monitoring::MonitoringTarget";

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// The operation ends `<ACTION>_FAILED` with this reason (no resource is touched).
    Fail(String),
    /// The call returns [`HeatError::Unavailable`] with this message (nothing happens).
    Unavailable(String),
    /// The operation waits this long first (then runs, or times out against `timeout_mins`).
    Delay(Duration),
}

/// A fault injected for one stack name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFault {
    /// What happens.
    pub kind: FaultKind,
    /// Only this kind of operation (`None`: any).
    pub operation: Option<StackOperation>,
    /// How many operations it affects (`u32::MAX` for "until cleared").
    pub times: u32,
}

impl StackFault {
    /// Fail the next `times` operations with `reason`.
    pub fn fail(times: u32, reason: impl Into<String>) -> Self {
        StackFault {
            kind: FaultKind::Fail(reason.into()),
            operation: None,
            times,
        }
    }

    /// Answer `Unavailable` to the next `times` calls.
    pub fn unavailable(times: u32) -> Self {
        StackFault {
            kind: FaultKind::Unavailable("injected: heat unavailable".into()),
            operation: None,
            times,
        }
    }

    /// Delay every operation by `delay` until cleared.
    pub fn delay(delay: Duration) -> Self {
        StackFault {
            kind: FaultKind::Delay(delay),
            operation: None,
            times: u32::MAX,
        }
    }

    /// Restricts the fault to one kind of operation.
    pub fn on(mut self, operation: StackOperation) -> Self {
        self.operation = Some(operation);
        self
    }
}

/// One operation LocalHeat performed (for assertions such as "each stack was created once").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeatEvent {
    /// Stack name.
    pub stack_name: String,
    /// The operation asked for.
    pub requested: StackOperation,
    /// What was done: `CREATE`, `UPDATE`, `DELETE`, or `NONE` (identical create, missing
    /// delete, rejected or unavailable request).
    pub action: String,
    /// The resulting status (`""` for rejected/unavailable).
    pub status: String,
}

/// A resource of a stack as LocalHeat shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSnapshot {
    /// Name in the template.
    pub name: String,
    /// Type.
    pub resource_type: String,
    /// Reference.
    pub physical_id: String,
    /// `CREATE_COMPLETE`, `UPDATE_FAILED`, …
    pub status: String,
    /// Attributes (secret-named members masked).
    pub attributes: Map<String, Value>,
}

/// A stack as LocalHeat shows it (`heat stack-show`).
#[derive(Debug, Clone, PartialEq)]
pub struct StackSnapshot {
    /// Stack id.
    pub id: String,
    /// Stack name.
    pub name: String,
    /// Status.
    pub status: String,
    /// Status reason.
    pub reason: String,
    /// Typed parameters; hidden and secret-named ones masked.
    pub parameters: Map<String, Value>,
    /// Resources in creation order.
    pub resources: Vec<ResourceSnapshot>,
    /// Outputs.
    pub outputs: Vec<Value>,
    /// `timeout_mins` of the last request.
    pub timeout_mins: Option<i64>,
}

type ResourceRecord = DrivenResource;

#[derive(Clone)]
struct StackRecord {
    id: String,
    name: String,
    status: String,
    reason: String,
    template_text: String,
    sent: Map<String, Value>,
    parameters: Map<String, Value>,
    hidden: BTreeSet<String>,
    resources: Vec<ResourceRecord>,
    outputs: Vec<Value>,
    timeout_mins: Option<i64>,
}

impl StackRecord {
    fn outcome(&self) -> StackOutcome {
        StackOutcome {
            status: self.status.clone(),
            reason: self.reason.clone(),
            outputs: self.outputs.clone(),
        }
    }
}

#[derive(Default)]
struct State {
    stacks: BTreeMap<String, StackRecord>,
    stack_creations: BTreeMap<String, u64>,
    resource_creations: BTreeMap<(String, String), u64>,
    faults: BTreeMap<String, Vec<StackFault>>,
    history: Vec<HeatEvent>,
    locks: BTreeMap<String, Arc<tokio::sync::Mutex<()>>>,
}

/// The in-process Heat engine.
pub struct LocalHeat {
    ids: SeededIds,
    plugins: BTreeMap<String, Arc<dyn ResourcePlugin>>,
    generic: Arc<dyn ResourcePlugin>,
    strict_parameters: bool,
    state: Mutex<State>,
}

impl fmt::Debug for LocalHeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalHeat")
            .field("seed", &self.ids.seed())
            .field("plugins", &self.plugins.keys().collect::<Vec<_>>())
            .field("stacks", &self.lock().stacks.len())
            .finish_non_exhaustive()
    }
}

struct LocalScope<'a> {
    parameters: &'a Map<String, Value>,
    done: &'a [ResourceRecord],
}

impl Scope for LocalScope<'_> {
    fn parameter(&self, name: &str) -> Option<Value> {
        self.parameters.get(name).cloned()
    }

    fn reference(&self, name: &str) -> Option<Value> {
        self.done
            .iter()
            .find(|r| r.name == name && !r.status.ends_with("_FAILED"))
            .map(|r| Value::String(r.state.physical_id.clone()))
    }

    fn attribute(&self, name: &str, attr: &str) -> Option<Value> {
        let r = self
            .done
            .iter()
            .find(|r| r.name == name && !r.status.ends_with("_FAILED"))?;
        match r.state.attributes.get(attr) {
            Some(v) => Some(v.clone()),
            None if r.state.open_attributes => Some(Value::Null),
            None => None,
        }
    }
}

fn action_word(action: &str) -> &'static str {
    match action {
        "CREATE" => "Create",
        "UPDATE" => "Update",
        _ => "Delete",
    }
}

fn rejected(stack: &str, reason: impl fmt::Display) -> HeatError {
    HeatError::Rejected {
        stack: stack.to_string(),
        reason: reason.to_string(),
    }
}

impl LocalHeat {
    /// An engine with ids seeded by `seed` and no plug-ins (every type is generic).
    pub fn new(seed: u64) -> Self {
        LocalHeat {
            ids: SeededIds::new(seed),
            plugins: BTreeMap::new(),
            generic: Arc::new(GenericPlugin),
            strict_parameters: false,
            state: Mutex::new(State::default()),
        }
    }

    /// The embedded default: NetconfNamedConfigs committed through `devices`,
    /// MonitoringTargets registered with `collector`.
    pub fn embedded(
        seed: u64,
        devices: Arc<dyn DeviceRegistry>,
        collector: Arc<Collector>,
    ) -> Self {
        Self::new(seed)
            .with_plugin(NETCONF_TYPE, Arc::new(NetconfPlugin::new(devices)))
            .with_plugin(MONITORING_TYPE, Arc::new(MonitoringPlugin::new(collector)))
    }

    /// Drives `resource_type` with `plugin`.
    pub fn with_plugin(
        mut self,
        resource_type: impl Into<String>,
        plugin: Arc<dyn ResourcePlugin>,
    ) -> Self {
        self.plugins.insert(resource_type.into(), plugin);
        self
    }

    /// Rejects parameters the template does not declare, as OpenStack Heat does. Default:
    /// accepted and ignored, so templates without a `parameters:` section (generated worlds)
    /// run. `get_param` always needs a declared parameter (template validation).
    pub fn strict_parameters(mut self, strict: bool) -> Self {
        self.strict_parameters = strict;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Injects a fault for stack `name` (faults of one stack apply in the order injected).
    pub fn inject(&self, name: &str, fault: StackFault) {
        self.lock()
            .faults
            .entry(name.to_string())
            .or_default()
            .push(fault);
    }

    /// Makes the next `times` operations on stack `name` fail with `reason`.
    pub fn fail_stack(&self, name: &str, times: u32, reason: &str) {
        self.inject(name, StackFault::fail(times, reason));
    }

    /// Delays every operation on stack `name` by `delay` until cleared.
    pub fn delay_stack(&self, name: &str, delay: Duration) {
        self.inject(name, StackFault::delay(delay));
    }

    /// Removes the faults of stack `name`.
    pub fn clear_faults(&self, name: &str) {
        self.lock().faults.remove(name);
    }

    /// The values of every hidden or secret-named parameter of every stack, unmasked: only
    /// meant to feed an output scrubber ([`crate::plan::Scrubber`]), never to be printed.
    pub fn secret_parameter_values(&self) -> Vec<Value> {
        let st = self.lock();
        st.stacks
            .values()
            .flat_map(|s| {
                s.parameters
                    .iter()
                    .filter(|(k, _)| s.hidden.contains(*k) || crate::secret::is_secret_name(k))
                    .map(|(_, v)| v.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The stack named `name`.
    pub fn stack(&self, name: &str) -> Option<StackSnapshot> {
        let st = self.lock();
        let s = st.stacks.get(name)?;
        let mut parameters = s.parameters.clone();
        for (k, v) in parameters.iter_mut() {
            if s.hidden.contains(k) || crate::secret::is_secret_name(k) {
                *v = Value::String(crate::secret::MASK.into());
            }
        }
        Some(StackSnapshot {
            id: s.id.clone(),
            name: s.name.clone(),
            status: s.status.clone(),
            reason: s.reason.clone(),
            parameters,
            resources: s
                .resources
                .iter()
                .map(|r| {
                    let mut attrs = Value::Object(r.state.attributes.clone());
                    crate::secret::redact(&mut attrs);
                    ResourceSnapshot {
                        name: r.name.clone(),
                        resource_type: r.resource_type.clone(),
                        physical_id: r.state.physical_id.clone(),
                        status: r.status.clone(),
                        attributes: attrs.as_object().cloned().unwrap_or_default(),
                    }
                })
                .collect(),
            outputs: s.outputs.clone(),
            timeout_mins: s.timeout_mins,
        })
    }

    /// Names of the existing stacks (sorted).
    pub fn stack_names(&self) -> Vec<String> {
        self.lock().stacks.keys().cloned().collect()
    }

    /// Every operation so far, in order.
    pub fn history(&self) -> Vec<HeatEvent> {
        self.lock().history.clone()
    }

    /// How many times stack `name` was actually created (`CREATE` actions that completed).
    pub fn creations(&self, name: &str) -> usize {
        self.lock()
            .history
            .iter()
            .filter(|e| {
                e.stack_name == name && e.action == "CREATE" && e.status == "CREATE_COMPLETE"
            })
            .count()
    }

    fn plugin(&self, resource_type: &str) -> Arc<dyn ResourcePlugin> {
        self.plugins
            .get(resource_type)
            .cloned()
            .unwrap_or_else(|| Arc::clone(&self.generic))
    }

    fn stack_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(self.lock().locks.entry(name.to_string()).or_default())
    }

    fn take_fault(&self, name: &str, op: StackOperation) -> Option<FaultKind> {
        let mut st = self.lock();
        let faults = st.faults.get_mut(name)?;
        let i = faults
            .iter()
            .position(|f| f.times > 0 && f.operation.is_none_or(|o| o == op))?;
        let f = &mut faults[i];
        if f.times != u32::MAX {
            f.times -= 1;
        }
        let kind = f.kind.clone();
        faults.retain(|f| f.times > 0);
        Some(kind)
    }

    fn record(&self, name: &str, requested: StackOperation, action: &str, status: &str) {
        self.lock().history.push(HeatEvent {
            stack_name: name.to_string(),
            requested,
            action: action.to_string(),
            status: status.to_string(),
        });
    }

    fn new_id(&self, kind: &str, a: &str, b: &str, counter: &mut u64) -> String {
        let n = counter.to_string();
        *counter += 1;
        self.ids.uuid(&[kind, a, b, &n])
    }

    /// Applies fault and delay; `Err(outcome-or-error)` ends the operation.
    async fn faults_before(
        &self,
        name: &str,
        op: StackOperation,
        timeout_mins: Option<i64>,
    ) -> Result<Option<String>, HeatError> {
        match self.take_fault(name, op) {
            None => Ok(None),
            Some(FaultKind::Unavailable(msg)) => {
                self.record(name, op, "NONE", "");
                Err(HeatError::Unavailable(msg))
            }
            Some(FaultKind::Fail(reason)) => Ok(Some(reason)),
            Some(FaultKind::Delay(d)) => {
                tokio::time::sleep(d).await;
                let limit = timeout_mins
                    .and_then(|m| u64::try_from(m).ok())
                    .map(|m| Duration::from_secs(m * 60));
                match limit {
                    Some(limit) if d >= limit => Ok(Some(String::new())),
                    _ => Ok(None),
                }
            }
        }
    }

    async fn apply(
        &self,
        request: &StackRequest,
        op: StackOperation,
    ) -> Result<StackOutcome, HeatError> {
        let name = request.stack_name.as_str();
        let lock = self.stack_lock(name);
        let _guard = lock.lock().await;
        let fault = self.faults_before(name, op, request.timeout_mins).await?;
        let text = request
            .template_text
            .as_deref()
            .ok_or_else(|| rejected(name, "no template"))?;
        let tpl = match HotTemplate::parse(text) {
            Ok(t) => t,
            Err(e) => {
                self.record(name, op, "NONE", "");
                return Err(rejected(name, e));
            }
        };
        let order = tpl.creation_order().map_err(|e| {
            self.record(name, op, "NONE", "");
            rejected(name, e)
        })?;
        let mut params = tpl
            .typed_parameters(&request.request_parameters, self.strict_parameters)
            .map_err(|e| {
                self.record(name, op, "NONE", "");
                rejected(name, e)
            })?;
        let existing = self.lock().stacks.get(name).cloned();
        let action = match &existing {
            None => "CREATE",
            Some(s) if op == StackOperation::Create && s.status == "CREATE_FAILED" => "CREATE",
            Some(s)
                if op == StackOperation::Create
                    && s.status.ends_with("_COMPLETE")
                    && s.template_text == text
                    && s.sent == request.request_parameters
                    && fault.is_none() =>
            {
                self.record(name, op, "NONE", &s.status);
                return Ok(s.outcome());
            }
            Some(_) => "UPDATE",
        };
        let stack_id = match &existing {
            Some(s) => s.id.clone(),
            None => {
                let mut st = self.lock();
                let counter = st.stack_creations.entry(name.to_string()).or_insert(0);
                let n = counter.to_string();
                *counter += 1;
                self.ids.uuid(&["stack", name, &n])
            }
        };
        let mut record = StackRecord {
            id: stack_id.clone(),
            name: name.to_string(),
            status: String::new(),
            reason: String::new(),
            template_text: text.to_string(),
            sent: request.request_parameters.clone(),
            parameters: Map::new(),
            hidden: tpl
                .parameters
                .iter()
                .filter(|p| p.hidden)
                .map(|p| p.name.clone())
                .collect(),
            resources: existing
                .as_ref()
                .map(|s| s.resources.clone())
                .unwrap_or_default(),
            outputs: Vec::new(),
            timeout_mins: request.timeout_mins,
        };
        if let Some(reason) = fault {
            let reason = if reason.is_empty() {
                format!("{} timed out", action_word(action))
            } else {
                reason
            };
            if let Some(s) = &existing {
                record.template_text = s.template_text.clone();
                record.sent = s.sent.clone();
                record.parameters = s.parameters.clone();
            }
            record.status = format!("{action}_FAILED");
            record.reason = reason;
            return Ok(self.store(record, op, action));
        }
        let tenant = params
            .get("tenant_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        params.insert("OS::stack_name".into(), name.into());
        params.insert("OS::stack_id".into(), stack_id.clone().into());
        params.insert("OS::project_id".into(), tenant.into());
        let (resources, failure) = self.converge(&record, &tpl, &order, &params, action).await;
        for k in ["OS::stack_name", "OS::stack_id", "OS::project_id"] {
            params.shift_remove(k);
        }
        record.resources = resources;
        match failure {
            Some(reason) => {
                record.status = format!("{action}_FAILED");
                record.reason = reason;
            }
            None => {
                let mut scope_params = params.clone();
                scope_params.insert("OS::stack_name".into(), name.into());
                scope_params.insert("OS::stack_id".into(), stack_id.clone().into());
                let scope = LocalScope {
                    parameters: &scope_params,
                    done: &record.resources,
                };
                record.outputs = tpl
                    .outputs
                    .iter()
                    .map(|o| match resolve(&format!("outputs.{}", o.key), &o.value, &scope) {
                        Ok(v) => json!({"output_key": o.key, "output_value": v, "description": o.description}),
                        Err(e) => json!({"output_key": o.key, "output_value": null, "description": o.description, "output_error": e.to_string()}),
                    })
                    .collect();
                record.status = format!("{action}_COMPLETE");
                record.reason = if action == "CREATE" {
                    "Stack CREATE completed successfully".into()
                } else {
                    "Stack successfully updated".into()
                };
            }
        }
        record.parameters = params;
        Ok(self.store(record, op, action))
    }

    fn store(&self, record: StackRecord, op: StackOperation, action: &str) -> StackOutcome {
        let outcome = record.outcome();
        tracing::debug!(stack = %record.name, status = %record.status, "stack operation finished");
        let mut st = self.lock();
        st.history.push(HeatEvent {
            stack_name: record.name.clone(),
            requested: op,
            action: action.to_string(),
            status: record.status.clone(),
        });
        st.stacks.insert(record.name.clone(), record);
        outcome
    }

    /// Creates/updates/replaces/deletes resources towards the template; returns the resulting
    /// resources and the failure reason, if any.
    async fn converge(
        &self,
        stack: &StackRecord,
        tpl: &HotTemplate,
        order: &[String],
        params: &Map<String, Value>,
        action: &str,
    ) -> (Vec<ResourceRecord>, Option<String>) {
        let mut old: Vec<ResourceRecord> = stack.resources.clone();
        let mut done: Vec<ResourceRecord> = Vec::new();
        for name in order {
            let Some(def) = tpl.resource(name) else {
                continue;
            };
            let scope = LocalScope {
                parameters: params,
                done: &done,
            };
            let props = match resolve(name, &def.properties, &scope) {
                Ok(p) => p,
                Err(e) => {
                    done.extend(old);
                    return (done, Some(failure_reason(action, name, &e)));
                }
            };
            let previous = old
                .iter()
                .position(|r| &r.name == name)
                .map(|i| old.remove(i));
            match converge_resource(
                self,
                &stack.name,
                &stack.id,
                name,
                &def.resource_type,
                props,
                previous,
            )
            .await
            {
                Ok(r) => done.push(r),
                Err(DriveFailure { record, reason }) => {
                    done.extend(record);
                    done.extend(old);
                    return (done, Some(reason));
                }
            }
        }
        // resources that left the template, newest first
        if let Err((left, reason)) = delete_all(self, &stack.name, &stack.id, old).await {
            done.extend(left);
            return (done, Some(reason));
        }
        (done, None)
    }

    async fn remove(&self, name: &str) -> Result<StackOutcome, HeatError> {
        let op = StackOperation::Delete;
        let lock = self.stack_lock(name);
        let _guard = lock.lock().await;
        let fault = self.faults_before(name, op, None).await?;
        let existing = self.lock().stacks.get(name).cloned();
        let Some(mut record) = existing else {
            self.record(name, op, "NONE", "DELETE_COMPLETE");
            return Ok(StackOutcome {
                status: "DELETE_COMPLETE".into(),
                reason: "Stack DELETE completed successfully".into(),
                outputs: Vec::new(),
            });
        };
        if let Some(reason) = fault {
            record.status = "DELETE_FAILED".into();
            record.reason = if reason.is_empty() {
                "Delete timed out".into()
            } else {
                reason
            };
            return Ok(self.store(record, op, "DELETE"));
        }
        let resources = std::mem::take(&mut record.resources);
        if let Err((left, reason)) = delete_all(self, &record.name, &record.id, resources).await {
            record.resources = left;
            record.status = "DELETE_FAILED".into();
            record.reason = reason;
            record.outputs = Vec::new();
            return Ok(self.store(record, op, "DELETE"));
        }
        let mut st = self.lock();
        st.stacks.remove(name);
        st.history.push(HeatEvent {
            stack_name: name.to_string(),
            requested: op,
            action: "DELETE".into(),
            status: "DELETE_COMPLETE".into(),
        });
        Ok(StackOutcome {
            status: "DELETE_COMPLETE".into(),
            reason: "Stack DELETE completed successfully".into(),
            outputs: Vec::new(),
        })
    }
}

impl Driver for LocalHeat {
    fn plugin(&self, resource_type: &str) -> Arc<dyn ResourcePlugin> {
        LocalHeat::plugin(self, resource_type)
    }

    fn context<'a>(
        &self,
        stack_name: &'a str,
        stack_id: &'a str,
        name: &'a str,
        resource_type: &'a str,
    ) -> ResourceContext<'a> {
        let mut st = self.lock();
        let counter = st
            .resource_creations
            .entry((stack_name.to_string(), name.to_string()))
            .or_insert(0);
        let new_id = self.new_id("resource", stack_name, name, counter);
        ResourceContext {
            stack_name,
            stack_id,
            resource_name: name,
            resource_type,
            new_id,
        }
    }
}

#[async_trait]
impl Heat for LocalHeat {
    async fn create(&self, request: &StackRequest) -> Result<StackOutcome, HeatError> {
        if request.operation == StackOperation::Delete {
            return self.remove(&request.stack_name).await;
        }
        self.apply(request, StackOperation::Create).await
    }

    async fn update(&self, request: &StackRequest) -> Result<StackOutcome, HeatError> {
        if request.operation == StackOperation::Delete {
            return self.remove(&request.stack_name).await;
        }
        self.apply(request, StackOperation::Update).await
    }

    async fn delete(&self, stack_name: &str) -> Result<StackOutcome, HeatError> {
        self.remove(stack_name).await
    }

    async fn get(&self, stack_name: &str) -> Result<Option<StackOutcome>, HeatError> {
        Ok(self.lock().stacks.get(stack_name).map(StackRecord::outcome))
    }
}
