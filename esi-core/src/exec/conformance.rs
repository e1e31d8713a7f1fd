//! Checks one execution-side conformance case (kinds `stack`, `state`,
//! `netconf`, `monitor`) by the comparison rules of `conformance/EXEC.md`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::heat_view::{self, CompareMode};
use super::job::Job;
use super::junos::NetconfProperties;
use super::monitor::{self, MonitoringTarget, StackContext, TargetEvent};
use super::stack::{build_stack_request, HeatTemplate};
use super::state::{state_writes, StackResult};
use super::template_path::TemplatePath;
use super::yaml::parse_yaml;

/// Outcome of one execution-side case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecVerdict {
    /// Everything compared equal.
    Pass,
    /// A short human-readable diff (or why the case could not be run).
    Fail(String),
}

/// The case kinds this module checks.
pub const EXEC_KINDS: [&str; 4] = ["stack", "state", "netconf", "monitor"];

/// Runs one case of kind stack|state|netconf|monitor. `strict` enables
/// byte-exact text checks (`template_text`, `/state` `heat_outputs`).
pub fn check_exec_case(case: &Value, strict: bool) -> ExecVerdict {
    let result = match case.get("kind").and_then(Value::as_str) {
        Some("stack") => check_stack(case, strict),
        Some("state") => check_state(case, strict),
        Some("netconf") => check_netconf(case),
        Some("monitor") => check_monitor(case),
        Some(other) => Err(format!("not an execution case kind: {other}")),
        None => Err("case has no string \"kind\"".into()),
    };
    match result {
        Ok(diffs) if diffs.is_empty() => ExecVerdict::Pass,
        Ok(diffs) => ExecVerdict::Fail(diffs.join("; ")),
        Err(e) => ExecVerdict::Fail(e),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

fn part<'a>(case: &'a Value, section: &str, field: &str) -> Result<&'a Value, String> {
    case.get(section)
        .and_then(|s| s.get(field))
        .ok_or_else(|| format!("malformed case: missing {section}.{field}"))
}

fn diff_value(diffs: &mut Vec<String>, field: &str, expected: &Value, actual: &Value) {
    if expected != actual {
        diffs.push(format!(
            "{field}: expected {}, got {}",
            short(expected),
            short(actual)
        ));
    }
}

/// First differing path between two JSON values, for readable diffs.
/// The first difference between an `expected` and an `actual` JSON value by the corpus rules
/// (members of objects both ways, lists element by element, scalars equal), named by its path
/// under `path`; `None` when they agree. For other crates checking recorded shapes (e.g. the
/// CollectorAgent API against the `monitor` response cases).
pub fn json_difference(path: &str, expected: &Value, actual: &Value) -> Option<String> {
    first_difference(path, expected, actual)
}

fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => {
                        if let Some(d) = first_difference(&p, u, v) {
                            return Some(d);
                        }
                    }
                    (Some(u), None) => return Some(format!("{p}: expected {}, missing", short(u))),
                    (None, Some(v)) => return Some(format!("{p}: unexpected {}", short(v))),
                    (None, None) => {}
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(&format!("{path}[{i}]"), u, v)),
        _ if a == b => None,
        _ => Some(format!("{path}: expected {}, got {}", short(a), short(b))),
    }
}

fn check_stack(case: &Value, strict: bool) -> Result<Vec<String>, String> {
    let input = case.get("input").ok_or("malformed case: missing input")?;
    let expected = case
        .get("expected")
        .and_then(Value::as_object)
        .ok_or("malformed case: missing expected object")?;
    let job = Job::from_value(part(case, "input", "job")?)
        .map_err(|e| format!("malformed case: input.job: {e}"))?;
    let path = match input.get("template_mapping") {
        None | Some(Value::Null) => None,
        Some(p) => Some(TemplatePath::parse(p).map_err(|e| e.to_string())?),
    };
    let template: Option<HeatTemplate> = match input.get("template") {
        None | Some(Value::Null) => None,
        Some(t) => Some(
            serde_json::from_value(t.clone())
                .map_err(|e| format!("malformed case: input.template: {e}"))?,
        ),
    };
    let outputs = match input.get("outputs") {
        Some(Value::Object(m)) => m.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err("malformed case: input.outputs is not an object".into()),
    };
    let req = match build_stack_request(&job, path.as_ref(), template.as_ref(), &outputs) {
        Ok(r) => r,
        Err(e) => return Ok(vec![format!("cannot build the request: {e}")]),
    };
    let actual = req.to_json();
    let mut diffs = Vec::new();
    let text = req.template_text.clone().unwrap_or_default();
    let mut parsed_template: Option<Value> = None;
    for (field, exp) in expected {
        match field.as_str() {
            "stack_name" | "operation" | "template_id" | "timeout_mins" | "disable_rollback"
            | "request_parameters" | "jinja_params" => diff_value(
                &mut diffs,
                field,
                exp,
                actual.get(field).unwrap_or(&Value::Null),
            ),
            "template" => match parse_yaml(&text) {
                Ok(t) => {
                    if let Some(d) = first_difference("template", exp, &t) {
                        diffs.push(d);
                    }
                    parsed_template = Some(t);
                }
                Err(e) => diffs.push(format!("template: rendered text is not YAML: {e}")),
            },
            "template_text" if strict && exp.as_str() != Some(text.as_str()) => {
                let at = exp
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .zip(text.chars())
                    .take_while(|(a, b)| a == b)
                    .count();
                diffs.push(format!("template_text differs at char {at}"));
            }
            _ => {}
        }
    }
    if let Some(Value::Object(exp_params)) = expected.get("parameters") {
        let tpl = match parsed_template {
            Some(t) => t,
            None => parse_yaml(&text).map_err(|e| format!("template: {e}"))?,
        };
        let modes = expected
            .get("parameters_compare")
            .and_then(Value::as_object);
        match heat_view::heat_view(&tpl, &req.request_parameters) {
            Err(e) => diffs.push(format!("parameters: {e}")),
            Ok(view) => {
                let names: BTreeSet<&String> = view.iter().map(|(n, _)| n).collect();
                let exp_names: BTreeSet<&String> = exp_params.keys().collect();
                if names != exp_names {
                    diffs.push(format!(
                        "parameters: names differ: expected-only {:?}, actual-only {:?}",
                        exp_names.difference(&names).collect::<Vec<_>>(),
                        names.difference(&exp_names).collect::<Vec<_>>()
                    ));
                }
                for (name, shown) in &view {
                    let Some(exp) = exp_params.get(name) else {
                        continue;
                    };
                    let mode = modes
                        .and_then(|m| m.get(name))
                        .and_then(Value::as_str)
                        .and_then(CompareMode::parse)
                        .unwrap_or(CompareMode::Exact);
                    let exp_text = exp.as_str().map(str::to_string).unwrap_or(exp.to_string());
                    if !mode.equal(&exp_text, &shown.text) {
                        diffs.push(format!(
                            "parameters.{name} ({mode:?}): expected {exp_text:?}, got {:?}",
                            shown.text
                        ));
                    }
                }
            }
        }
    }
    Ok(diffs)
}

/// Parses `state.heat_outputs` text of `/state/…` documents so that values
/// compare as JSON; returns the documents with the field replaced.
fn parse_heat_outputs(key: &str, v: &Value) -> Value {
    if !key.starts_with("/state/") {
        return v.clone();
    }
    let mut v = v.clone();
    if let Some(text) = v.pointer("/state/heat_outputs").and_then(Value::as_str) {
        if let Ok(parsed) = serde_json::from_str::<Value>(text) {
            v["state"]["heat_outputs"] = parsed;
        }
    }
    v
}

fn check_state(case: &Value, strict: bool) -> Result<Vec<String>, String> {
    let job = Job::from_value(part(case, "input", "job")?)
        .map_err(|e| format!("malformed case: input.job: {e}"))?;
    let result: StackResult = serde_json::from_value(part(case, "input", "result")?.clone())
        .map_err(|e| format!("malformed case: input.result: {e}"))?;
    let exp_writes = part(case, "expected", "writes")?
        .as_array()
        .ok_or("malformed case: expected.writes is not a list")?;
    let writes = match state_writes(&job, &result) {
        Ok(w) => w,
        Err(e) => return Ok(vec![e.to_string()]),
    };
    let mut diffs = Vec::new();
    let exp_seq: Vec<(String, String)> = exp_writes
        .iter()
        .map(|w| {
            (
                w.get("op")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                w.get("key")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
            )
        })
        .collect();
    let act_seq: Vec<(String, String)> = writes
        .iter()
        .map(|w| (w.op_name().to_string(), w.key().to_string()))
        .collect();
    if exp_seq != act_seq {
        diffs.push(format!("writes: expected {exp_seq:?}, got {act_seq:?}"));
        return Ok(diffs);
    }
    for (i, (exp, act)) in exp_writes.iter().zip(&writes).enumerate() {
        let key = act.key();
        let exp_v = exp.get("value");
        let act_v = act.value();
        match (exp_v, act_v) {
            (None, None) => {}
            (Some(e), Some(a)) => {
                if let Some(d) = first_difference(
                    &format!("writes[{i}]"),
                    &parse_heat_outputs(key, e),
                    &parse_heat_outputs(key, a),
                ) {
                    diffs.push(d);
                }
                if strict {
                    let (et, at) = (
                        e.pointer("/state/heat_outputs"),
                        a.pointer("/state/heat_outputs"),
                    );
                    if et != at {
                        diffs.push(format!("writes[{i}] heat_outputs text differs (strict)"));
                    }
                }
            }
            (e, a) => diffs.push(format!(
                "writes[{i}] value: expected {}, got {}",
                e.map(short).unwrap_or("none".into()),
                a.map(short).unwrap_or("none".into())
            )),
        }
    }
    if let Some(Value::Object(docs)) = case.pointer("/expected/documents") {
        let mut actual_docs: Map<String, Value> = Map::new();
        for w in &writes {
            if let Some(v) = w.value() {
                if v.as_object().is_some_and(|m| !m.is_empty()) {
                    actual_docs.insert(w.key().to_string(), v.clone());
                }
            }
        }
        for (k, exp) in docs {
            match actual_docs.get(k) {
                Some(a) => {
                    if let Some(d) = first_difference(
                        &format!("documents[{k}]"),
                        &parse_heat_outputs(k, exp),
                        &parse_heat_outputs(k, a),
                    ) {
                        diffs.push(d);
                    }
                }
                None => diffs.push(format!("documents: {k} not written")),
            }
        }
    }
    Ok(diffs)
}

fn check_netconf(case: &Value) -> Result<Vec<String>, String> {
    let props = part(case, "input", "properties")?;
    let label = format!(
        "{}/{}",
        case.pointer("/input/stack_name")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        case.pointer("/input/resource_name")
            .and_then(Value::as_str)
            .unwrap_or("?")
    );
    let props = match NetconfProperties::from_value(&label, props) {
        Ok(p) => p,
        Err(e) => return Ok(vec![e.to_string()]),
    };
    let composed = props.compose();
    let mut diffs = Vec::new();
    let exp_lines: BTreeSet<String> = part(case, "expected", "set_lines")?
        .as_array()
        .ok_or("malformed case: expected.set_lines is not a list")?
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_string())
        .collect();
    let act_lines: BTreeSet<String> = composed.set_lines().into_iter().collect();
    if exp_lines != act_lines {
        diffs.push(format!(
            "set_lines: missing {:?}, extra {:?}",
            exp_lines.difference(&act_lines).collect::<Vec<_>>(),
            act_lines.difference(&exp_lines).collect::<Vec<_>>()
        ));
    }
    if let Some(exp_cmds) = case.pointer("/expected/commands") {
        diff_value(
            &mut diffs,
            "commands",
            exp_cmds,
            &Value::from(composed.additional_commands.clone()),
        );
    }
    if let Some(Value::Object(dev)) = case.pointer("/expected/device") {
        let actual = serde_json::to_value(&composed.device).map_err(|e| e.to_string())?;
        for (k, v) in dev {
            diff_value(
                &mut diffs,
                &format!("device.{k}"),
                v,
                actual.get(k).unwrap_or(&Value::Null),
            );
        }
    }
    Ok(diffs)
}

fn check_monitor(case: &Value) -> Result<Vec<String>, String> {
    let mut diffs = Vec::new();
    match case.get("subkind").and_then(Value::as_str) {
        Some("request") => {
            let name = case
                .pointer("/input/resource_name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let props = part(case, "input", "resource_properties")?;
            let empty = Map::new();
            let params = case
                .pointer("/input/parameters")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let resources = case
                .pointer("/input/resources")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let expected = part(case, "expected", "request_body")?;
            match monitor::target_request(
                name,
                props,
                StackContext {
                    parameters: params,
                    resources,
                },
            ) {
                Ok(body) => {
                    if let Some(d) = first_difference("request_body", expected, &body) {
                        diffs.push(d);
                    }
                }
                Err(e) => diffs.push(e.to_string()),
            }
        }
        Some("response") => {
            let body = part(case, "input", "request_body")?;
            let s = |f: &str| -> Result<String, String> {
                part(case, "input", f)?
                    .as_str()
                    .map(str::to_string)
                    .ok_or(format!("malformed case: input.{f} is not text"))
            };
            let resp =
                monitor::target_response(body, &s("id")?, &s("created_at")?, &s("monitorer")?);
            if let Some(d) =
                first_difference("response", part(case, "expected", "response")?, &resp)
            {
                diffs.push(d);
            }
        }
        Some("sync") => {
            let target = MonitoringTarget::from_value(part(case, "input", "target")?)
                .map_err(|e| format!("malformed case: input.target: {e}"))?;
            let events = part(case, "input", "events")?
                .as_array()
                .ok_or("malformed case: input.events is not a list")?
                .iter()
                .map(TargetEvent::from_value)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("malformed case: input.events: {e}"))?;
            let before = case
                .pointer("/input/etcd_before")
                .cloned()
                .filter(|v| !v.is_null());
            let writes = match monitor::sync_writes(&target, before, &events) {
                Ok(w) => w,
                Err(e) => return Ok(vec![e.to_string()]),
            };
            let actual: Vec<Value> = writes
                .iter()
                .map(|w| {
                    let mut v = w.to_json();
                    if let Some(m) = v.as_object_mut() {
                        m.remove("time");
                    }
                    v
                })
                .collect();
            let expected: Vec<Value> = part(case, "expected", "writes")?
                .as_array()
                .ok_or("malformed case: expected.writes is not a list")?
                .iter()
                .map(|w| {
                    let mut w = w.clone();
                    if let Some(m) = w.as_object_mut() {
                        m.remove("time");
                    }
                    w
                })
                .collect();
            if let Some(d) = first_difference(
                "writes",
                &Value::from(expected.clone()),
                &Value::from(actual.clone()),
            ) {
                diffs.push(d);
            } else if expected.len() != actual.len() {
                diffs.push(format!(
                    "writes: expected {} writes, got {}",
                    expected.len(),
                    actual.len()
                ));
            }
        }
        Some(other) => return Err(format!("unknown monitor subkind {other}")),
        None => return Err("malformed case: monitor case without subkind".into()),
    }
    Ok(diffs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn malformed_cases_fail_cleanly() {
        assert!(matches!(
            check_exec_case(&json!({}), false),
            ExecVerdict::Fail(_)
        ));
        assert!(matches!(
            check_exec_case(&json!({"kind": "stack"}), false),
            ExecVerdict::Fail(_)
        ));
        assert!(matches!(
            check_exec_case(&json!({"kind": "state", "input": {"job": 1}}), true),
            ExecVerdict::Fail(_)
        ));
        assert!(matches!(
            check_exec_case(
                &json!({"kind": "netconf", "input": {"properties": {}}, "expected": {"set_lines": []}}),
                false
            ),
            ExecVerdict::Fail(_)
        ));
        assert!(matches!(
            check_exec_case(
                &json!({"kind": "monitor", "subkind": "sync", "input": {"target": {}}}),
                false
            ),
            ExecVerdict::Fail(_)
        ));
        assert!(matches!(
            check_exec_case(&json!({"kind": "jobs"}), false),
            ExecVerdict::Fail(_)
        ));
    }

    #[test]
    fn a_small_state_case_passes() {
        let case = json!({"kind": "state", "input": {
            "job": {"resource_type": "t", "resource_id": "1", "action": "create", "version": 1, "resource_input": {"tenant_id": "x"}},
            "result": {"status": "CREATE_COMPLETE", "outputs": [], "reason": "ok"}},
            "expected": {"writes": [
                {"op": "set", "key": "/esi-worker/job_state/v2.0/ts/1", "value": {}},
                {"op": "set", "key": "/esi-worker/heat_stacks/v2.0/ts/1", "value": {"stack_id": "t_1", "tenant_id": "x", "stack_status": "CREATE_COMPLETE", "output": [], "status_reason": "ok", "id": "t:1"}},
                {"op": "compareAndSwap", "key": "/esi-worker/job_state/v2.0/ts/1", "value": {"heat_outputs": [], "orchestration_state": "CREATE_COMPLETE"}},
                {"op": "set", "key": "/state/v2.0/ts/1", "value": {"state": {"worker_state": "CREATE_COMPLETED", "heat_outputs": "[]", "orchestration_state": "CREATE_COMPLETE"}, "version": 1, "error": ""}},
                {"op": "compareAndDelete", "key": "/esi-worker/job_state/v2.0/ts/1"}]}});
        assert_eq!(check_exec_case(&case, true), ExecVerdict::Pass);
    }
}
