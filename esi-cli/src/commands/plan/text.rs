//! The text form of a plan: grouped by resource, aligned columns, a device section at the end.
//! Colours (plain ANSI) only when asked for (stdout is a terminal).

use crate::commands::chain_text;
use esi_core::exec::junos::DeviceTarget;
use esi_core::expand::HandlerDecision;
use esi_core::plan::{
    ConfigOperation, DevicePlan, JobPlan, ParamPlan, Plan, ResourcePlan, StackPlan, TargetPlan,
};
use esi_core::secret::MASK;
use esi_core::ParamType;
use serde_json::Value;
use std::fmt::Write as _;

/// Longest value printed in a param column before it is shortened (the JSON output has it all).
const VALUE_WIDTH: usize = 72;

/// ANSI styling, or none.
#[derive(Clone, Copy)]
struct Style {
    on: bool,
}

impl Style {
    fn paint(self, code: &str, s: &str) -> String {
        if self.on && !s.is_empty() {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }
    fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }
    fn red(self, s: &str) -> String {
        self.paint("31", s)
    }
    fn green(self, s: &str) -> String {
        self.paint("32", s)
    }
    fn yellow(self, s: &str) -> String {
        self.paint("33", s)
    }
    fn cyan(self, s: &str) -> String {
        self.paint("36", s)
    }
    /// Colour of an action or operation word.
    fn action(self, s: &str) -> String {
        match s {
            "create" | "load" | "register" => self.green(s),
            "modify" | "update" => self.yellow(s),
            _ => self.red(s),
        }
    }
}

/// The whole plan as text.
pub fn render(plan: &Plan, colour: bool) -> String {
    let st = Style { on: colour };
    let mut out = String::new();
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "{} {}: {} resources, {} jobs, {} stacks, {} devices ({} configurations), {} monitoring targets, {}",
        st.bold("plan of world"),
        st.bold(if plan.world.is_empty() { "(unnamed)" } else { &plan.world }),
        s.resources,
        s.jobs,
        s.stacks,
        s.devices,
        s.device_configs,
        s.targets,
        if s.errors == 0 {
            st.green("0 errors")
        } else {
            st.red(&format!("{} errors", s.errors))
        }
    );
    let n = plan.resources.len();
    for (i, r) in plan.resources.iter().enumerate() {
        write_resource(&mut out, st, r, i + 1, n);
    }
    if !plan.devices.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            st.bold("═══ devices: everything each router receives, in order")
        );
        for d in &plan.devices {
            write_device(&mut out, st, d);
        }
    }
    out
}

fn write_resource(out: &mut String, st: Style, r: &ResourcePlan, i: usize, n: usize) {
    let name = r
        .name
        .as_deref()
        .map(|n| format!("  {n}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\n{} {}{}  v{}  {}",
        st.dim(&format!("─── {i}/{n}")),
        st.bold(&r.resource.to_string()),
        st.bold(&name),
        r.version,
        st.action(r.action.as_str())
    );
    for d in &r.decisions {
        let (handler, what) = match d {
            HandlerDecision::NoPath { handler } => {
                (handler, "no template path for this type".into())
            }
            HandlerDecision::NoTemplate { handler } => {
                (handler, "template path yields none".into())
            }
            HandlerDecision::UnknownTemplate { handler, template } => (
                handler,
                format!("template `{template}` does not exist (handler skipped)"),
            ),
            HandlerDecision::Template { handler, template } => {
                (handler, format!("template `{}`", st.cyan(template)))
            }
        };
        let _ = writeln!(out, "    {handler}: {what}");
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "    {} {e}", st.red("ERROR"));
    } else if r.jobs.is_empty() {
        let _ = writeln!(out, "    {}", st.dim("no job: nothing to do"));
    }
    for j in &r.jobs {
        write_job(out, st, j);
    }
}

fn write_job(out: &mut String, st: Style, j: &JobPlan) {
    let mut flags = Vec::new();
    if j.is_first {
        flags.push("first");
    }
    if j.is_last {
        flags.push("last");
    }
    let _ = writeln!(
        out,
        "    {} {}  {}  [{}]  on_failure={}",
        st.bold("job"),
        j.id,
        st.action(j.action.as_str()),
        flags.join(","),
        j.on_failure.as_str()
    );
    if j.dependencies.is_empty() {
        let _ = writeln!(out, "      depends on  {}", st.dim("nothing"));
    }
    for d in &j.dependencies {
        let _ = writeln!(out, "      depends on  {d}");
    }
    for e in &j.errors {
        let _ = writeln!(out, "      {} {e}", st.red("ERROR"));
    }
    if !j.params.is_empty() {
        let _ = writeln!(out, "      {}", st.cyan("params"));
        write_params(out, st, &j.params);
    }
    if let Some(s) = &j.stack {
        write_stack(out, st, s);
    }
    if !j.devices.is_empty() {
        let _ = writeln!(
            out,
            "      {} {}",
            st.cyan("devices"),
            st.dim("(configuration text in the device section)")
        );
        let w = j
            .devices
            .iter()
            .map(|d| d.stack_resource.len())
            .max()
            .unwrap_or(0);
        for d in &j.devices {
            let _ = writeln!(
                out,
                "        {:w$}  {}  {}  {} statements",
                d.stack_resource,
                st.action(pad(d.operation.as_str(), 6).as_str()),
                device_label(&d.device),
                d.statements
            );
        }
    }
    if !j.targets.is_empty() {
        let _ = writeln!(out, "      {}", st.cyan("monitoring targets"));
        for t in &j.targets {
            write_target(out, st, t);
        }
    }
}

fn write_params(out: &mut String, st: Style, params: &[ParamPlan]) {
    let w = params.iter().map(|p| p.param.len()).max().unwrap_or(0);
    let mut sorted: Vec<&ParamPlan> = params.iter().collect();
    sorted.sort_by(|a, b| a.param.cmp(&b.param));
    for p in sorted {
        let value = match p.kind {
            ParamType::OutputKey => describe_output(&p.value),
            ParamType::List => match &p.value {
                Value::Array(items) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|i| {
                            let v = i.get("value").unwrap_or(&Value::Null);
                            match i.get("type").and_then(Value::as_str) {
                                Some("output_key") => describe_output(v),
                                _ => inline(v),
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                other => inline(other),
            },
            ParamType::Value => inline(&p.value),
        };
        let value = shorten(&value, VALUE_WIDTH);
        let chain = chain_text(&p.chain, p.repeated);
        let _ = writeln!(
            out,
            "        {:w$}  {:11}  {}{}",
            p.param,
            p.kind.as_str(),
            if p.masked { st.yellow(&value) } else { value },
            if chain.is_empty() {
                String::new()
            } else {
                st.dim(&format!("   via {chain}"))
            }
        );
    }
}

fn write_stack(out: &mut String, st: Style, s: &StackPlan) {
    let mut head = format!(
        "      {} {}  {}",
        st.cyan("stack"),
        st.bold(&s.stack_name),
        st.action(s.operation.as_str())
    );
    if let Some(t) = &s.template_id {
        let _ = write!(head, "  template {t}");
    }
    if let Some(t) = s.timeout_mins {
        let _ = write!(head, "  timeout {t} min");
    }
    if s.disable_rollback {
        head.push_str("  rollback disabled");
    }
    let _ = writeln!(out, "{head}");
    if !s.parameters.is_empty() {
        let _ = writeln!(out, "        {}", st.cyan("parameters"));
        let w = s.parameters.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for p in &s.parameters {
            let value = inline(&p.value);
            let mut note = String::new();
            if p.hidden {
                note.push_str("   (hidden)");
            } else if let Some(h) = &p.heat {
                if *h != plain(&p.value) {
                    note = format!("   (heat shows {})", quote_text(h));
                }
            } else {
                note.push_str("   (not declared by the template)");
            }
            let _ = writeln!(
                out,
                "          {:w$}  {}{}",
                p.name,
                if p.masked { st.yellow(&value) } else { value },
                st.dim(&note)
            );
        }
    }
    if !s.jinja.is_empty() {
        let _ = writeln!(out, "        {}", st.cyan("jinja variables"));
        let w = s.jinja.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in &s.jinja {
            let _ = writeln!(out, "          {:w$}  {}", k, inline(v));
        }
    }
    if let Some(t) = &s.template {
        let _ = writeln!(out, "        {}", st.cyan("rendered template"));
        for line in t.lines() {
            let _ = writeln!(out, "          {}", gutter(st, line));
        }
    }
}

fn write_target(out: &mut String, st: Style, t: &TargetPlan) {
    let r = &t.request;
    let field = |k: &str| r.get(k).map(plain).unwrap_or_default();
    let _ = writeln!(
        out,
        "        {}  {}  type {}  {}/{}  field {}",
        t.stack_resource,
        st.action(t.operation.as_str()),
        field("type"),
        field("resource_type"),
        field("resource_id"),
        field("field_name"),
    );
    for key in ["properties", "syncer_properties"] {
        if let Some(v) = r.get(key) {
            let _ = writeln!(out, "          {key}: {}", inline(v));
        }
    }
}

fn write_device(out: &mut String, st: Style, d: &DevicePlan) {
    let known = if d.known_as.is_empty() {
        String::new()
    } else {
        format!("  {}", d.known_as.join(", "))
    };
    let _ = writeln!(
        out,
        "\n{} {}{}  {} configurations",
        st.dim("───"),
        st.bold(&device_label(&d.device)),
        known,
        d.configs.len()
    );
    for (i, c) in d.configs.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {}. {}  {}  {}  {}",
            i + 1,
            st.action(c.operation.as_str()),
            st.bold(&c.resource.to_string()),
            c.stack_resource,
            st.dim(&format!("job {}", c.job))
        );
        let body = match c.operation {
            ConfigOperation::Load => indent_junos(&c.text),
            ConfigOperation::Delete => c.text.lines().map(str::to_string).collect(),
        };
        for line in body {
            let _ = writeln!(out, "       {}", gutter(st, &line));
        }
        for cmd in &c.additional_commands {
            let _ = writeln!(out, "       {} {cmd}", st.dim("then:"));
        }
    }
}

/// A quoted line behind a `│` gutter (no trailing blank for an empty line).
fn gutter(st: Style, line: &str) -> String {
    let line = line.trim_end();
    if line.is_empty() {
        st.dim("│")
    } else {
        format!("{} {line}", st.dim("│"))
    }
}

/// `user@host:port`.
fn device_label(d: &DeviceTarget) -> String {
    format!("{}@{}:{}", d.username, d.device_ip, d.port)
}

/// Re-indents Junos curly-brace text by block depth (4 spaces a level), one statement a line,
/// blank lines dropped; braces inside double quotes do not count. The text sent to the router
/// is unchanged (see `--output json`); this is only for reading.
pub fn indent_junos(text: &str) -> Vec<String> {
    let mut depth: usize = 0;
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let (mut opens, mut closes_first, mut closes, mut quoted, mut seen_other) =
            (0usize, 0usize, 0usize, false, false);
        for ch in line.chars() {
            match ch {
                '"' => {
                    quoted = !quoted;
                    seen_other = true;
                }
                '{' if !quoted => {
                    opens += 1;
                    seen_other = true;
                }
                '}' if !quoted => {
                    if !seen_other && opens == 0 {
                        closes_first += 1;
                    } else if opens > 0 {
                        opens -= 1;
                    } else {
                        closes += 1;
                    }
                }
                c if !c.is_whitespace() => seen_other = true,
                _ => {}
            }
        }
        depth = depth.saturating_sub(closes_first);
        out.push(format!("{}{line}", "    ".repeat(depth)));
        depth = depth.saturating_sub(closes) + opens;
    }
    out
}

fn pad(s: &str, w: usize) -> String {
    format!("{s:w$}")
}

/// A value on one line: placeholders and masks as they are, other strings quoted, the rest as
/// compact JSON.
fn inline(v: &Value) -> String {
    match v {
        Value::String(s) if s == MASK || is_placeholder(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as text: strings without quotes, the rest as compact JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_placeholder(s: &str) -> bool {
    s.starts_with("(known after apply: ") && s.ends_with(')')
}

fn quote_text(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn describe_output(v: &Value) -> String {
    match (
        v.get("resource_type").and_then(Value::as_str),
        v.get("resource_id").and_then(Value::as_str),
        v.get("output_key").and_then(Value::as_str),
    ) {
        (Some(t), Some(i), Some(k)) => format!("output `{k}` of {t}/{i}"),
        _ => inline(v),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        format!("{}...", s.chars().take(max - 3).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junos_text_is_indented_by_depth() {
        let text = "interfaces {\nae0 {\nunit 1 {\ndescription \"a { b\";\nfamily inet {\n    filter {\n        input F;\n    }\n}\n }\n }\n }\n";
        assert_eq!(
            indent_junos(text),
            vec![
                "interfaces {",
                "    ae0 {",
                "        unit 1 {",
                "            description \"a { b\";",
                "            family inet {",
                "                filter {",
                "                    input F;",
                "                }",
                "            }",
                "        }",
                "    }",
                "}",
            ]
        );
    }

    #[test]
    fn colours_only_when_asked() {
        let world = esi_core::World::from_json(&serde_json::json!({
            "name": "w",
            "schemas": {"a": {"template_path": "Ca"}},
            "heat_templates": {"a": {"parameter_mappings": {"x": "Px"},
                                     "template_file": "heat_template_version: 2013-05-23\n"}},
            "resources": {"a": {"a1": {"version": 1, "body": {"id": "a1", "x": 1}}}}
        }))
        .unwrap_or_default();
        let plan = esi_core::plan::plan_world(
            &world,
            &mut esi_core::SeededSuffixes::new(0),
            esi_core::plan::PlanOptions::default(),
        );
        let plain = render(&plan, false);
        assert!(!plain.contains('\x1b'));
        assert!(plain.contains("stack a_a1  create  template a"), "{plain}");
        let coloured = render(&plan, true);
        assert!(coloured.contains("\x1b[1ma/a1\x1b[0m"), "{coloured}");
        assert!(coloured.contains("\x1b[32mcreate\x1b[0m"), "{coloured}");
    }
}
