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
use esi_core::heat::hot::HotTemplate;
use esi_core::heat::ids::SeededIds;
use esi_core::heat::plugins::{GenericPlugin, ResourceContext, ResourcePlugin};
use esi_core::heat::StackOutcome;
use serde_json::{json, Map, Value};

/// Prefix of the outputs added for device resources.
pub const DEVICE_OUTPUT_PREFIX: &str = "esi_device__";
/// The stand-in type the device resources are sent as.
pub const STAND_IN_TYPE: &str = "OS::Heat::Value";

/// A template with its device resources replaced by stand-ins.
#[derive(Debug, Clone)]
pub(crate) struct Rewritten {
    /// The template to send (a JSON object; Heat accepts inline JSON templates).
    pub template: Value,
    /// `(name, type)` of the device resources, in creation order.
    pub devices: Vec<(String, String)>,
}

impl Rewritten {
    /// Rewrites `text` (the rendered HOT template of stack `stack`).
    pub(crate) fn new(stack: &str, text: &str, types: &BTreeSet<String>) -> Result<Self, String> {
        let mut doc = parse_yaml(text).map_err(|e| format!("template of {stack}: {e}"))?;
        let Some(root) = doc.as_object_mut() else {
            return Err(format!("template of {stack}: not a mapping"));
        };
        let mut devices = Vec::new();
        let mut added = Map::new();
        if let Some(Value::Object(resources)) = root.get_mut("resources") {
            for (name, def) in resources.iter_mut() {
                let Some(d) = def.as_object_mut() else {
                    continue;
                };
                let Some(ty) = d.get("type").and_then(Value::as_str).map(str::to_string) else {
                    continue;
                };
                if !types.contains(&ty) {
                    continue;
                }
                let props = d.remove("properties").unwrap_or_else(|| json!({}));
                d.insert("type".into(), STAND_IN_TYPE.into());
                d.insert("properties".into(), json!({ "value": props }));
                added.insert(
                    format!("{DEVICE_OUTPUT_PREFIX}{name}"),
                    json!({"description": ty, "value": {"get_attr": [name, "value"]}}),
                );
                devices.push((name.clone(), ty));
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
        // creation order as Heat (and LocalHeat) would follow it
        if let Ok(order) = HotTemplate::parse(text).and_then(|t| t.creation_order()) {
            devices.sort_by_key(|(n, _)| order.iter().position(|o| o == n));
        }
        Ok(Rewritten {
            template: doc,
            devices,
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

/// esi's plug-ins and what they keep per stack.
pub(crate) struct DeviceDriver {
    plugins: BTreeMap<String, Arc<dyn ResourcePlugin>>,
    generic: Arc<dyn ResourcePlugin>,
    ids: SeededIds,
    counters: Mutex<BTreeMap<(String, String), u64>>,
    records: Mutex<BTreeMap<String, Vec<DrivenResource>>>,
}

impl Default for DeviceDriver {
    fn default() -> Self {
        DeviceDriver {
            plugins: BTreeMap::new(),
            generic: Arc::new(GenericPlugin),
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

    pub(crate) fn types(&self) -> BTreeSet<String> {
        self.plugins.keys().cloned().collect()
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
            return outcome; // Heat's failure; the devices keep what they had
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
            let props = match values.get(res) {
                Some((_, Ok(v))) => v.clone(),
                Some((_, Err(e))) => {
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
                    if !self.plugins.contains_key(&ty) {
                        continue;
                    }
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
        let types: BTreeSet<String> = ["OS::Contrail::NetconfNamedConfigs".to_string()].into();
        let r = Rewritten::new("s", text, &types).unwrap();
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
        assert!(Rewritten::new("s", "[1, 2", &types).is_err());
    }
}
