//! Shared helpers of the server tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use esi_core::exec::stack::{StackOperation, StackRequest};
use esi_heat::HeatConfig;
use serde_json::{Map, Value};

/// The variable, or a failure naming how to start the server.
pub fn need(var: &str, how: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{var} is not set: start the server first ({how}) and export what it prints"),
    }
}

pub const HEAT: &str = "bash .ci/services/30-heat.sh start";
pub const KEYSTONE: &str = "bash .ci/services/31-keystone-heat.sh start";

/// A noauth configuration for the `30-heat.sh` Heat, with quick back-offs for tests.
pub fn noauth() -> HeatConfig {
    let mut c = HeatConfig::noauth(need("HEAT_URL", HEAT));
    c.poll.initial = Duration::from_millis(100);
    c.retry.initial = Duration::from_millis(100);
    c
}

/// The `31-keystone-heat.sh` variables as `OS_*` (they are exported with a `KS_` prefix).
pub fn keystone_vars(k: &str) -> Option<String> {
    if matches!(
        k,
        "HEAT_URL"
            | "OS_PROJECT_ID"
            | "OS_APPLICATION_CREDENTIAL_ID"
            | "OS_APPLICATION_CREDENTIAL_SECRET"
    ) {
        // Heat from the catalog; password login with the project by name (see
        // `keystone_vars_by_id`); the application credential only where a test asks for it
        return None;
    }
    need("KS_OS_AUTH_URL", KEYSTONE);
    std::env::var(format!("KS_{k}")).ok()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A stack name unique to this run.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() % 10_000_000)
        .unwrap_or(0);
    format!("{prefix}_{}_{t}_{n}", std::process::id())
}

pub fn request(name: &str, op: StackOperation, text: &str, params: Value) -> StackRequest {
    StackRequest {
        stack_name: name.into(),
        operation: op,
        template_id: Some("t".into()),
        timeout_mins: Some(5),
        disable_rollback: true,
        request_parameters: match params {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        jinja_params: Map::new(),
        template_text: Some(text.into()),
    }
}

/// A template with two values and two outputs.
pub const VALUES: &str = "heat_template_version: 2013-05-23
parameters:
  vlan: {type: number}
  name: {type: string, default: uplink}
resources:
  vlan_value:
    type: OS::Heat::Value
    properties: {value: {get_param: vlan}}
  label:
    type: OS::Heat::Value
    properties:
      value:
        str_replace:
          template: unit-NAME
          params: {NAME: {get_param: name}}
outputs:
  vlan:
    description: the vlan
    value: {get_attr: [vlan_value, value]}
  label:
    value: {get_attr: [label, value]}
";

/// The output `key` of an outcome.
pub fn output(outputs: &[Value], key: &str) -> Value {
    outputs
        .iter()
        .find(|o| o["output_key"] == key)
        .map(|o| o["output_value"].clone())
        .unwrap_or(Value::Null)
}

/// Like [`keystone_vars`], with the project given by id.
pub fn keystone_vars_by_id(k: &str) -> Option<String> {
    match k {
        "OS_PROJECT_ID" => Some(need("KS_OS_PROJECT_ID", KEYSTONE)),
        "OS_PROJECT_NAME" => None,
        _ => keystone_vars(k),
    }
}
