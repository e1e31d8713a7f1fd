//! `--device-resources esi`: device resources without Heat's plug-ins.
//!
//! Each resource whose type has an esi plug-in is sent to Heat as an `OS::Heat::Value` whose
//! `value` is the original properties (intrinsics included), and an output
//! `esi_device__<name>` reads the resolved value back. After the stack operation esi drives the
//! resources through its own plug-ins with [`esi_core::heat::drive`] — the same code LocalHeat
//! runs — keeping each resource's plug-in state between operations; the added outputs are
//! removed from the outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use esi_core::exec::yaml::parse_yaml;
use esi_core::heat::drive::{
    converge_resource, delete_all, failure_reason, DriveFailure, DrivenResource, Driver,
};
use esi_core::heat::hot::{references, resolve, HotTemplate, IntrinsicError, Scope};
use esi_core::heat::ids::SeededIds;
use esi_core::heat::plugins::{GenericPlugin, ResourceContext, ResourcePlugin};
use esi_core::heat::StackOutcome;
use serde_json::{json, Map, Value};

/// Prefix of the outputs added for device resources.
pub const DEVICE_OUTPUT_PREFIX: &str = "esi_device__";
/// The stand-in type the device resources are sent as.
pub const STAND_IN_TYPE: &str = "OS::Heat::Value";

/// Prefix of the text that stands in for an intrinsic function esi resolves itself (one that
/// reads an esi-driven resource): `esi-deferred:<the expression as JSON>`. Heat keeps such
/// text as it is; esi resolves it after driving the resources it reads.
pub const DEFERRED_PREFIX: &str = "esi-deferred:";

/// Heat's intrinsic function names (any HOT version): a single-key mapping with one of these
/// keys is a function call.
const HEAT_FUNCTIONS: [&str; 29] = [
    "get_attr",
    "get_file",
    "get_param",
    "get_resource",
    "list_join",
    "resource_facade",
    "str_replace",
    "str_replace_strict",
    "str_replace_vstrict",
    "digest",
    "repeat",
    "map_merge",
    "map_replace",
    "str_split",
    "yaql",
    "if",
    "equals",
    "not",
    "and",
    "or",
    "contains",
    "filter",
    "make_url",
    "list_concat",
    "list_concat_unique",
    "Fn::Select",
    "Fn::Join",
    "Fn::Base64",
    "Fn::GetAZs",
];

fn is_function(m: &Map<String, Value>) -> bool {
    m.len() == 1 && m.keys().all(|k| HEAT_FUNCTIONS.contains(&k.as_str()))
}

/// `v` with every outermost function call that reads one of `devices` (through
/// `get_resource`/`get_attr`) replaced by its [`DEFERRED_PREFIX`] text.
fn defer(v: &Value, devices: &BTreeSet<String>) -> Value {
    match v {
        Value::Object(m) if is_function(m) => {
            if references(v).1.iter().any(|r| devices.contains(r)) {
                Value::String(format!("{DEFERRED_PREFIX}{v}"))
            } else {
                v.clone()
            }
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), defer(x, devices)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|x| defer(x, devices)).collect()),
        other => other.clone(),
    }
}

fn has_deferred(v: &Value) -> bool {
    match v {
        Value::String(s) => s.starts_with(DEFERRED_PREFIX),
        Value::Array(a) => a.iter().any(has_deferred),
        Value::Object(m) => m.values().any(has_deferred),
        _ => false,
    }
}

/// `v` with its deferred expressions resolved against `scope` (`what` names errors).
fn undefer(what: &str, v: &Value, scope: &dyn Scope) -> Result<Value, IntrinsicError> {
    match v {
        Value::String(s) => match s.strip_prefix(DEFERRED_PREFIX) {
            Some(expr) => {
                let expr: Value = serde_json::from_str(expr).map_err(|e| IntrinsicError {
                    resource: what.to_string(),
                    function: "esi-deferred".into(),
                    reason: format!("unreadable expression: {e}"),
                })?;
                resolve(what, &expr, scope)
            }
            None => Ok(v.clone()),
        },
        Value::Array(a) => a
            .iter()
            .map(|x| undefer(what, x, scope))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                out.insert(k.clone(), undefer(what, x, scope)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// What deferred expressions see: the stack's parameters and the esi-driven resources driven
/// so far (Heat's own resources are not visible to esi).
struct EsiScope<'a> {
    parameters: &'a Map<String, Value>,
    done: &'a [DrivenResource],
}

impl Scope for EsiScope<'_> {
    fn parameter(&self, name: &str) -> Option<Value> {
        self.parameters.get(name).cloned()
    }

    fn reference(&self, name: &str) -> Option<Value> {
        self.done
            .iter()
            .find(|r| r.name == name && r.healthy())
            .map(|r| Value::String(r.state.physical_id.clone()))
    }

    fn attribute(&self, name: &str, attr: &str) -> Option<Value> {
        let r = self.done.iter().find(|r| r.name == name && r.healthy())?;
        match r.state.attributes.get(attr) {
            Some(v) => Some(v.clone()),
            None if r.state.open_attributes => Some(Value::Null),
            None => None,
        }
    }
}

/// The template esi sends to Heat in `--device-resources esi` mode for the rendered template
/// `text` of stack `stack`: each resource whose type `is_device` accepts becomes an
/// `OS::Heat::Value` holding its properties, with an output `esi_device__<name>` reading them
/// back; every function call (in those properties and in the outputs) that reads such a
/// resource is kept as [`DEFERRED_PREFIX`] text for esi to resolve. A Heat resource that reads
/// an esi-driven one is refused (Heat could not resolve it).
pub fn stand_in_template(
    stack: &str,
    text: &str,
    is_device: &dyn Fn(&str) -> bool,
) -> Result<Value, String> {
    Rewritten::new(stack, text, &Map::new(), is_device).map(|r| r.template)
}

/// A template with its device resources replaced by stand-ins.
#[derive(Debug, Clone)]
pub(crate) struct Rewritten {
    /// The template to send (a JSON object; Heat accepts inline JSON templates).
    pub template: Value,
    /// `(name, type)` of the device resources, in creation order.
    pub devices: Vec<(String, String)>,
    /// The stack's typed parameters (with `OS::stack_name`), for deferred expressions.
    pub parameters: Map<String, Value>,
}

impl Rewritten {
    /// Rewrites `text` (the rendered HOT template of stack `stack`, sent with `sent`).
    pub(crate) fn new(
        stack: &str,
        text: &str,
        sent: &Map<String, Value>,
        is_device: &dyn Fn(&str) -> bool,
    ) -> Result<Self, String> {
        let mut doc = parse_yaml(text).map_err(|e| format!("template of {stack}: {e}"))?;
        let Some(root) = doc.as_object_mut() else {
            return Err(format!("template of {stack}: not a mapping"));
        };
        let type_of = |def: &Value| def.get("type").and_then(Value::as_str).map(str::to_string);
        let names: BTreeSet<String> = match root.get("resources") {
            Some(Value::Object(resources)) => resources
                .iter()
                .filter(|(_, d)| type_of(d).is_some_and(|t| is_device(&t)))
                .map(|(n, _)| n.clone())
                .collect(),
            _ => BTreeSet::new(),
        };
        let mut devices = Vec::new();
        let mut added = Map::new();
        if let Some(Value::Object(resources)) = root.get_mut("resources") {
            for (name, def) in resources.iter_mut() {
                let Some(ty) = type_of(def) else {
                    continue;
                };
                let Some(d) = def.as_object_mut() else {
                    continue;
                };
                if !names.contains(name) {
                    let read: Vec<String> = d
                        .get("properties")
                        .map(|p| references(p).1)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|r| names.contains(r))
                        .collect();
                    if !read.is_empty() {
                        return Err(format!(
                            "template of {stack}: resources.{name} ({ty}) is created by Heat \
                             but reads {} driven by esi (--device-resources esi): only \
                             esi-driven resources and outputs may read them",
                            read.join(", ")
                        ));
                    }
                    continue;
                }
                let props = d.remove("properties").unwrap_or_else(|| json!({}));
                d.insert("type".into(), STAND_IN_TYPE.into());
                d.insert(
                    "properties".into(),
                    json!({ "value": defer(&props, &names) }),
                );
                added.insert(
                    format!("{DEVICE_OUTPUT_PREFIX}{name}"),
                    json!({"description": ty, "value": {"get_attr": [name, "value"]}}),
                );
                devices.push((name.clone(), ty));
            }
        }
        if let Some(Value::Object(outputs)) = root.get_mut("outputs") {
            for def in outputs.values_mut() {
                if let Some(v) = def.get_mut("value") {
                    *v = defer(v, &names);
                }
            }
        }
        if !added.is_empty() {
            let outputs = root
                .entry("outputs")
                .or_insert_with(|| Value::Object(Map::new()));
            if !outputs.is_object() {
                *outputs = Value::Object(Map::new());
            }
            if let Value::Object(o) = outputs {
                o.extend(added);
            }
        }
        // creation order as Heat (and LocalHeat) would follow it; typed parameters
        let mut parameters = Map::new();
        if let Ok(t) = HotTemplate::parse(text) {
            if let Ok(order) = t.creation_order() {
                devices.sort_by_key(|(n, _)| order.iter().position(|o| o == n));
            }
            if let Ok(p) = t.typed_parameters(sent, false) {
                parameters = p;
            }
        }
        parameters.insert("OS::stack_name".into(), stack.into());
        Ok(Rewritten {
            template: doc,
            devices,
            parameters,
        })
    }
}

/// Removes the outputs added for device resources.
pub(crate) fn strip_device_outputs(outputs: &mut Vec<Value>) {
    outputs.retain(|o| {
        !o.get("output_key")
            .and_then(Value::as_str)
            .is_some_and(|k| k.starts_with(DEVICE_OUTPUT_PREFIX))
    });
}

/// The resolved properties of the device resources, from the added outputs: name →
/// (type as recorded in the description, value or Heat's output error).
fn device_values(outputs: &[Value]) -> BTreeMap<String, (String, Result<Value, String>)> {
    outputs
        .iter()
        .filter_map(|o| {
            let key = o.get("output_key")?.as_str()?;
            let name = key.strip_prefix(DEVICE_OUTPUT_PREFIX)?;
            let ty = o
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let value = match o.get("output_error") {
                Some(e) if !e.is_null() => Err(e
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.to_string())),
                _ => Ok(o.get("output_value").cloned().unwrap_or(Value::Null)),
            };
            Some((name.to_string(), (ty, value)))
        })
        .collect()
}

/// Resolves the deferred outputs (Heat holds their [`DEFERRED_PREFIX`] text) against `scope`;
/// one that cannot be resolved gets a `null` value and an `output_error`, as in Heat.
fn resolve_outputs(outputs: &mut [Value], scope: &dyn Scope) {
    for o in outputs.iter_mut() {
        let Some(v) = o.get("output_value").filter(|v| has_deferred(v)).cloned() else {
            continue;
        };
        let key = o
            .get("output_key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(m) = o.as_object_mut() else {
            continue;
        };
        match undefer(&format!("outputs.{key}"), &v, scope) {
            Ok(v) => {
                m.insert("output_value".into(), v);
            }
            Err(e) => {
                m.insert("output_value".into(), Value::Null);
                m.insert("output_error".into(), e.to_string().into());
            }
        }
    }
}

/// esi's plug-ins and what they keep per stack.
pub(crate) struct DeviceDriver {
    plugins: BTreeMap<String, Arc<dyn ResourcePlugin>>,
    generic: Arc<dyn ResourcePlugin>,
    /// Further types driven by the generic plug-in (`OS::Contrail::*`: a trailing `*` matches
    /// any rest).
    patterns: Vec<String>,
    ids: SeededIds,
    counters: Mutex<BTreeMap<(String, String), u64>>,
    records: Mutex<BTreeMap<String, Vec<DrivenResource>>>,
}

impl Default for DeviceDriver {
    fn default() -> Self {
        DeviceDriver {
            plugins: BTreeMap::new(),
            generic: Arc::new(GenericPlugin),
            patterns: Vec::new(),
            ids: SeededIds::new(0),
            counters: Mutex::new(BTreeMap::new()),
            records: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Driver for DeviceDriver {
    fn plugin(&self, resource_type: &str) -> Arc<dyn ResourcePlugin> {
        self.plugins
            .get(resource_type)
            .cloned()
            .unwrap_or_else(|| Arc::clone(&self.generic))
    }

    fn context<'a>(
        &self,
        stack_name: &'a str,
        stack_id: &'a str,
        name: &'a str,
        resource_type: &'a str,
    ) -> ResourceContext<'a> {
        let n = {
            let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            let counter = c
                .entry((stack_name.to_string(), name.to_string()))
                .or_insert(0);
            *counter += 1;
            counter.to_string()
        };
        ResourceContext {
            stack_name,
            stack_id,
            resource_name: name,
            resource_type,
            new_id: self.ids.uuid(&["resource", stack_id, name, &n]),
        }
    }
}

impl DeviceDriver {
    pub(crate) fn add(&mut self, resource_type: String, plugin: Arc<dyn ResourcePlugin>) {
        self.plugins.insert(resource_type, plugin);
    }

    pub(crate) fn add_pattern(&mut self, pattern: String) {
        self.patterns.push(pattern);
    }

    /// The types with a plug-in, then the patterns of the generic ones.
    pub(crate) fn types(&self) -> Vec<String> {
        self.plugins
            .keys()
            .cloned()
            .chain(self.patterns.iter().cloned())
            .collect()
    }

    /// True when esi drives resources of type `ty`.
    pub(crate) fn drives(&self, ty: &str) -> bool {
        self.plugins.contains_key(ty)
            || self.patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => ty.starts_with(prefix),
                None => p == ty,
            })
    }

    /// Resolves the deferred outputs of stack `stack` (as `get` shows it) against the
    /// resources esi drove for it; without records (esi restarted) they stay unresolved.
    pub(crate) fn resolve_stored_outputs(&self, stack: &str, id: &str, outputs: &mut [Value]) {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let Some(done) = records.get(stack) else {
            return;
        };
        let mut parameters = Map::new();
        parameters.insert("OS::stack_name".into(), stack.into());
        parameters.insert("OS::stack_id".into(), id.into());
        let scope = EsiScope {
            parameters: &parameters,
            done,
        };
        resolve_outputs(outputs, &scope);
    }

    fn take(&self, stack: &str) -> Option<Vec<DrivenResource>> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(stack)
    }

    fn put(&self, stack: &str, records: Vec<DrivenResource>) {
        let mut r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.is_empty() {
            r.remove(stack);
        } else {
            r.insert(stack.to_string(), records);
        }
    }

    /// After Heat finished `outcome` for stack `name` (id `id`): drives the device resources
    /// to the values Heat resolved, returns the outcome to report.
    pub(crate) async fn converge(
        &self,
        name: &str,
        id: &str,
        rewritten: &Rewritten,
        mut outcome: StackOutcome,
    ) -> StackOutcome {
        let values = device_values(&outcome.outputs);
        strip_device_outputs(&mut outcome.outputs);
        if outcome.failed() {
            // Heat's failure; the devices keep what they had
            let scope = EsiScope {
                parameters: &rewritten.parameters,
                done: &[],
            };
            resolve_outputs(&mut outcome.outputs, &scope);
            return outcome;
        }
        let action = outcome
            .status
            .split('_')
            .next()
            .unwrap_or("CREATE")
            .to_string();
        let mut old = self.take(name).unwrap_or_default();
        let mut done = Vec::new();
        let mut failure = None;
        for (res, ty) in &rewritten.devices {
            let previous = old
                .iter()
                .position(|r| &r.name == res)
                .map(|i| old.remove(i));
            let resolved = values.get(res).map(|(_, v)| {
                v.clone().and_then(|v| {
                    let scope = EsiScope {
                        parameters: &rewritten.parameters,
                        done: &done,
                    };
                    undefer(res, &v, &scope).map_err(|e| e.to_string())
                })
            });
            let props = match &resolved {
                Some(Ok(v)) => v.clone(),
                Some(Err(e)) => {
                    done.extend(previous);
                    failure = Some(failure_reason(&action, res, e));
                    break;
                }
                None => {
                    done.extend(previous);
                    failure = Some(failure_reason(&action, res, &"Heat returned no value"));
                    break;
                }
            };
            match converge_resource(self, name, id, res, ty, props, previous).await {
                Ok(r) => done.push(r),
                Err(DriveFailure { record, reason }) => {
                    done.extend(record);
                    failure = Some(reason);
                    break;
                }
            }
        }
        if failure.is_none() {
            if let Err((left, reason)) = delete_all(self, name, id, std::mem::take(&mut old)).await
            {
                done.extend(left);
                failure = Some(reason);
            }
        }
        if failure.is_none() {
            let mut parameters = rewritten.parameters.clone();
            parameters.insert("OS::stack_id".into(), id.into());
            let scope = EsiScope {
                parameters: &parameters,
                done: &done,
            };
            resolve_outputs(&mut outcome.outputs, &scope);
        }
        done.extend(old);
        self.put(name, done);
        if let Some(reason) = failure {
            tracing::warn!(stack = name, %reason, "device resource failed");
            outcome.status = format!("{action}_FAILED");
            outcome.reason = reason;
            outcome.outputs = Vec::new();
        }
        outcome
    }

    /// Before Heat deletes stack `name`: deletes its device resources (newest first). Without
    /// records (esi restarted), the resources are rebuilt from the values Heat holds
    /// (`heat_outputs`) — re-applied, then deleted. `Some(outcome)` when a deletion failed.
    pub(crate) async fn remove(
        &self,
        name: &str,
        id: &str,
        heat_outputs: &[Value],
    ) -> Option<StackOutcome> {
        let records = match self.take(name) {
            Some(r) => r,
            None => {
                let mut adopted = Vec::new();
                for (res, (ty, value)) in device_values(heat_outputs) {
                    let Ok(props) = value else { continue };
                    if !self.drives(&ty) {
                        continue;
                    }
                    // best effort: deferred values that read resources adopted earlier
                    let props = {
                        let scope = EsiScope {
                            parameters: &Map::new(),
                            done: &adopted,
                        };
                        undefer(&res, &props, &scope).unwrap_or(props)
                    };
                    match converge_resource(self, name, id, &res, &ty, props, None).await {
                        Ok(r) => adopted.push(r),
                        Err(DriveFailure { reason, .. }) => {
                            tracing::warn!(stack = name, %reason, "could not re-apply a device resource before deleting it");
                        }
                    }
                }
                adopted
            }
        };
        match delete_all(self, name, id, records).await {
            Ok(()) => None,
            Err((left, reason)) => {
                self.put(name, left);
                Some(StackOutcome {
                    status: "DELETE_FAILED".into(),
                    reason,
                    outputs: Vec::new(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_resources_become_values_with_an_output() {
        let text = "heat_template_version: 2013-05-23\nparameters:\n  ip: {type: string}\nresources:\n  other:\n    type: OS::Heat::None\n  cfg:\n    type: OS::Contrail::NetconfNamedConfigs\n    depends_on: other\n    properties:\n      device_ip: {get_param: ip}\noutputs:\n  id:\n    value: {get_resource: other}\n";
        let types = |t: &str| t == "OS::Contrail::NetconfNamedConfigs";
        let r = Rewritten::new("s", text, &Map::new(), &types).unwrap();
        assert_eq!(
            r.devices,
            vec![(
                "cfg".to_string(),
                "OS::Contrail::NetconfNamedConfigs".to_string()
            )]
        );
        let cfg = &r.template["resources"]["cfg"];
        assert_eq!(cfg["type"], STAND_IN_TYPE);
        assert_eq!(cfg["depends_on"], "other");
        assert_eq!(
            cfg["properties"]["value"]["device_ip"],
            json!({"get_param": "ip"})
        );
        assert_eq!(r.template["resources"]["other"]["type"], "OS::Heat::None");
        assert_eq!(
            r.template["outputs"]["esi_device__cfg"]["value"],
            json!({"get_attr": ["cfg", "value"]})
        );
        assert!(r.template["outputs"]["id"].is_object());
        assert_eq!(r.template["heat_template_version"], "2013-05-23");

        let mut outs = vec![
            json!({"output_key": "id", "output_value": "x", "description": "No description given"}),
            json!({"output_key": "esi_device__cfg", "output_value": {"device_ip": "1.2.3.4"}, "description": "OS::Contrail::NetconfNamedConfigs"}),
        ];
        let v = device_values(&outs);
        assert_eq!(v["cfg"].1, Ok(json!({"device_ip": "1.2.3.4"})));
        strip_device_outputs(&mut outs);
        assert_eq!(outs.len(), 1);
        assert!(Rewritten::new("s", "[1, 2", &Map::new(), &types).is_err());
    }

    #[test]
    fn reads_of_esi_driven_resources_are_deferred_and_resolved_by_esi() {
        let text = "heat_template_version: 2013-05-23\nparameters:\n  uuid: {type: string}\nresources:\n  vmi:\n    type: OS::Contrail::VirtualMachineInterface\n    properties: {uuid: {get_param: uuid}}\n  mon:\n    type: ESI::Monitoring::MonitoringTarget\n    properties:\n      resource_id: {get_param: uuid}\n      properties: {fq_name: {get_attr: [vmi, fq_name]}}\noutputs:\n  id: {value: {get_resource: vmi}}\n  joined: {value: {list_join: ['/', [{get_param: uuid}, {get_resource: mon}]]}}\n  plain: {value: {get_param: uuid}}\n";
        let types = |t: &str| t.starts_with("OS::Contrail::") || t.starts_with("ESI::");
        let Value::Object(sent) = json!({"uuid": "u-1"}) else {
            unreachable!()
        };
        let r = Rewritten::new("s", text, &sent, &types).unwrap();
        let t = &r.template;
        assert_eq!(
            t["resources"]["mon"]["properties"]["value"]["properties"]["fq_name"],
            json!(format!(
                "{DEFERRED_PREFIX}{}",
                json!({"get_attr": ["vmi", "fq_name"]})
            ))
        );
        // what Heat can resolve stays for Heat
        assert_eq!(
            t["resources"]["mon"]["properties"]["value"]["resource_id"],
            json!({"get_param": "uuid"})
        );
        assert_eq!(t["outputs"]["plain"]["value"], json!({"get_param": "uuid"}));
        // the outermost call that reads an esi-driven resource is deferred as a whole
        let joined = t["outputs"]["joined"]["value"].as_str().unwrap();
        assert!(
            joined.starts_with(&format!("{DEFERRED_PREFIX}{{\"list_join\"")),
            "{joined}"
        );
        assert_eq!(
            r.devices.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
            ["vmi", "mon"]
        );
        assert_eq!(r.parameters["uuid"], "u-1");

        // esi resolves them with what it drove
        let done = vec![DrivenResource {
            name: "vmi".into(),
            resource_type: "OS::Contrail::VirtualMachineInterface".into(),
            properties: json!({}),
            state: esi_core::heat::plugins::ResourceState {
                physical_id: "u-1".into(),
                attributes: [("fq_name".to_string(), json!(["d", "p", "u-1"]))]
                    .into_iter()
                    .collect(),
                open_attributes: false,
                data: Value::Null,
            },
            status: "CREATE_COMPLETE".into(),
        }];
        let scope = EsiScope {
            parameters: &r.parameters,
            done: &done,
        };
        let props = undefer(
            "mon",
            &t["resources"]["mon"]["properties"]["value"]["properties"],
            &scope,
        )
        .unwrap();
        assert_eq!(props, json!({"fq_name": ["d", "p", "u-1"]}));
        let mut outs = vec![
            json!({"output_key": "id", "output_value": t["outputs"]["id"]["value"], "description": "x"}),
            json!({"output_key": "joined", "output_value": t["outputs"]["joined"]["value"], "description": "x"}),
        ];
        resolve_outputs(&mut outs, &scope);
        assert_eq!(outs[0]["output_value"], "u-1");
        // mon was not driven: Heat's way, a null value with the error
        assert_eq!(outs[1]["output_value"], Value::Null);
        assert!(
            outs[1]["output_error"].as_str().unwrap().contains("mon"),
            "{}",
            outs[1]
        );

        // a Heat resource may not read an esi-driven one
        let bad = "heat_template_version: 2013-05-23\nresources:\n  vmi: {type: OS::Contrail::VirtualMachineInterface}\n  v:\n    type: OS::Heat::Value\n    properties: {value: {get_resource: vmi}}\n";
        let e = Rewritten::new("s", bad, &Map::new(), &types).unwrap_err();
        assert!(e.contains("resources.v") && e.contains("vmi"), "{e}");
    }
}
