//! `esi expand WORLD`: the jobs a world's resources produce, in processing order.

use crate::commands::chain_text;
use crate::worlddir::load_world;
use crate::Output;
use anyhow::Result;
use esi_core::expand::{fold_chain, HandlerDecision};
use esi_core::secret::{
    is_secret_name, redact, redact_params, template_secret_params, Scrubber, MASK,
};
use esi_core::{expand_world, Job, ParamType, ResourceOutcome, SeededSuffixes, World};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Expands every resource of the world and prints the result.
pub fn run(world_path: &Path, output: Output, seed: u64) -> Result<ExitCode> {
    let world = load_world(world_path)?;
    let mut suffixes = SeededSuffixes::new(seed);
    let outcomes = expand_world(&world, &mut suffixes);
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    match output {
        Output::Json => write_json(&world, &outcomes)?,
        Output::Text => crate::emit(&to_text(&world, &outcomes))?,
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Per template, the params whose values are secret (hidden Heat parameters, values of
/// secret-bearing Junos statements): computed once per template.
type SecretParams = HashMap<String, BTreeSet<String>>;

fn secret_params(world: &World) -> SecretParams {
    world
        .catalog
        .templates
        .iter()
        .map(|(id, t)| (id.clone(), template_secret_params(&t.template_file)))
        .collect()
}

/// The secret params of the templates picked for a resource.
fn hidden_of(secret: &SecretParams, o: &ResourceOutcome) -> BTreeSet<String> {
    o.decisions
        .iter()
        .filter_map(|d| match d {
            HandlerDecision::Template { template, .. } => secret.get(template),
            _ => None,
        })
        .flatten()
        .cloned()
        .collect()
}

/// Every secret value of the world: secret-named body members and the values of secret or
/// hidden params, to scrub from every text.
fn scrubber_of(world: &World, secret: &SecretParams, outcomes: &[ResourceOutcome]) -> Scrubber {
    let mut s = Scrubber::new();
    for r in world.resources.iter() {
        s.add_secret_members(&r.body);
    }
    for o in outcomes {
        let hidden = hidden_of(secret, o);
        for j in o.result.iter().flatten() {
            for p in &j.params {
                if is_secret_name(&p.param) || hidden.contains(&p.param) {
                    s.add_param_value(p.kind, &p.value);
                }
            }
        }
    }
    s
}

/// What masking the JSON output needs, computed once for the world: the secret params per
/// template and every secret value (to scrub copies of them anywhere in a document).
struct Masking {
    secret: SecretParams,
    scrubber: Scrubber,
}

impl Masking {
    fn new(world: &World, outcomes: &[ResourceOutcome]) -> Self {
        let secret = secret_params(world);
        let scrubber = scrubber_of(world, &secret, outcomes);
        Self { secret, scrubber }
    }

    /// One resource's JSON document, masked by the one redaction policy.
    fn resource_json(&self, o: &ResourceOutcome) -> Value {
        let mut v = json!({
            "resource_type": o.resource.resource_type,
            "resource_id": o.resource.resource_id,
            "version": o.version,
            "action": o.action.as_str(),
            "decisions": o.decisions,
            "jobs": match &o.result {
                Ok(jobs) => jobs.iter().map(|j| json!({"key": esi_core::keys::job(&j.id), "value": j.to_record()})).collect(),
                Err(_) => Vec::new(),
            },
            "error": o.result.as_ref().err().map(|e| e.to_string()),
        });
        let mut local = Scrubber::new();
        redact_params(&mut v, &hidden_of(&self.secret, o), &mut local);
        self.scrubber.value(&mut v);
        local.value(&mut v);
        v
    }
}

/// `{"resources": [...]}`, streamed: each resource is built, masked and written in turn, so
/// memory holds one resource's document at a time, never the whole tree or the whole text.
struct Document<'a>(&'a Masking, &'a [ResourceOutcome]);
struct Resources<'a>(&'a Masking, &'a [ResourceOutcome]);

impl serde::Serialize for Document<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("resources", &Resources(self.0, self.1))?;
        m.end()
    }
}

impl serde::Serialize for Resources<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.1.iter().map(|o| Streamed(self.0, o)))
    }
}

/// A borrowed view of one resource's JSON document, in the shape `resource_json` builds, without
/// copying the bodies and param values: masking is applied while it is serialised.
enum Node<'a> {
    /// A value of the outcome, borrowed.
    Val(&'a Value),
    /// A small value made for the document.
    Own(Value),
    /// A string of the outcome, borrowed.
    Str(&'a str),
    /// An object with fixed member names, in document order.
    Obj(Vec<(&'static str, Node<'a>)>),
    /// An array.
    Arr(Vec<Node<'a>>),
}

impl Node<'_> {
    fn is_null(&self) -> bool {
        matches!(self, Node::Val(Value::Null) | Node::Own(Value::Null))
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            Node::Val(v) => v.as_str(),
            Node::Own(v) => v.as_str(),
            _ => None,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Node::Val(v) => (*v).clone(),
            Node::Own(v) => v.clone(),
            Node::Str(s) => Value::String((*s).to_string()),
            Node::Obj(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, n)| ((*k).to_string(), n.to_value()))
                    .collect(),
            ),
            Node::Arr(items) => Value::Array(items.iter().map(Node::to_value).collect()),
        }
    }
}

fn to_value_or_null<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// The document of one resource as a [`Node`] tree: the same members, in the same order, as
/// `resource_json` (`Job::to_record` included).
fn resource_node(o: &ResourceOutcome) -> Node<'_> {
    let jobs = match &o.result {
        Ok(jobs) => jobs.iter().map(job_node).collect(),
        Err(_) => Vec::new(),
    };
    Node::Obj(vec![
        ("resource_type", Node::Str(&o.resource.resource_type)),
        ("resource_id", Node::Str(&o.resource.resource_id)),
        ("version", Node::Own(to_value_or_null(&o.version))),
        ("action", Node::Str(o.action.as_str())),
        ("decisions", Node::Own(to_value_or_null(&o.decisions))),
        ("jobs", Node::Arr(jobs)),
        (
            "error",
            Node::Own(match &o.result {
                Err(e) => Value::String(e.to_string()),
                Ok(_) => Value::Null,
            }),
        ),
    ])
}

fn job_node(j: &Job) -> Node<'_> {
    let params = j
        .params
        .iter()
        .map(|p| {
            Node::Obj(vec![
                ("param", Node::Str(&p.param)),
                ("type", Node::Own(to_value_or_null(&p.kind))),
                ("value", Node::Val(&p.value)),
                (
                    "resources",
                    Node::Arr(
                        p.resources
                            .iter()
                            .map(|r| {
                                Node::Obj(vec![
                                    ("resource_type", Node::Str(&r.resource_type)),
                                    ("resource_id", Node::Str(&r.resource_id)),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ])
        })
        .collect();
    let record = Node::Obj(vec![
        ("action", Node::Own(to_value_or_null(&j.action))),
        ("handler", Node::Str(&j.handler)),
        ("resource_type", Node::Str(&j.resource_type)),
        ("resource_id", Node::Str(&j.resource_id)),
        ("version", Node::Own(to_value_or_null(&j.version))),
        ("job_name", Node::Str(&j.job_name)),
        ("id", Node::Str(&j.id)),
        ("on_failure", Node::Own(to_value_or_null(&j.on_failure))),
        ("is_first", Node::Own(Value::Bool(j.is_first))),
        ("is_last", Node::Own(Value::Bool(j.is_last))),
        (
            "dependency",
            Node::Arr(j.dependency.iter().map(|d| Node::Str(d)).collect()),
        ),
        ("params", Node::Arr(params)),
        ("resource_input", Node::Val(&j.resource_input)),
    ]);
    Node::Obj(vec![
        ("key", Node::Own(Value::String(esi_core::keys::job(&j.id)))),
        (
            "value",
            Node::Arr(vec![
                Node::Str(&j.handler),
                record,
                Node::Own(Value::from(0)),
            ]),
        ),
    ])
}

/// Whether a member is masked by `redact_params`: a secret name, or the `value` of a param
/// whose name is secret or hidden; `null` stays.
fn masks(key: &str, param_is_secret: bool, child_null: bool) -> bool {
    (is_secret_name(key) || (param_is_secret && key == "value")) && !child_null
}

fn secret_param(name: Option<&str>, hidden: &BTreeSet<String>) -> bool {
    name.is_some_and(|p| is_secret_name(p) || hidden.contains(p))
}

/// One pass, reading only, doing what `redact_params` does to `local`: the values it masks are
/// added. Also tells whether every member name that the scrubbers would see stays as it is
/// (no known secret in it): if one does not, the caller takes the value-tree path.
struct Collect<'a> {
    hidden: &'a BTreeSet<String>,
    global: &'a Scrubber,
    local: Scrubber,
    keys: Vec<&'a str>,
}

impl<'a> Collect<'a> {
    fn node(&mut self, n: &'a Node<'a>) {
        match n {
            Node::Val(v) => self.value(v),
            Node::Own(v) => self.value(v),
            Node::Str(_) => {}
            Node::Arr(items) => items.iter().for_each(|i| self.node(i)),
            Node::Obj(fields) => {
                let pis = secret_param(
                    fields
                        .iter()
                        .find(|(k, _)| *k == "param")
                        .and_then(|(_, n)| n.as_str()),
                    self.hidden,
                );
                for (k, child) in fields {
                    self.keys.push(k);
                    if masks(k, pis, child.is_null()) {
                        match child {
                            Node::Val(v) => self.local.add(v),
                            Node::Own(v) => self.local.add(v),
                            other => self.local.add(&other.to_value()),
                        }
                    } else {
                        self.node(child);
                    }
                }
            }
        }
    }

    fn value(&mut self, v: &'a Value) {
        match v {
            Value::Object(o) => {
                let pis = secret_param(o.get("param").and_then(Value::as_str), self.hidden);
                for (k, child) in o {
                    self.keys.push(k);
                    if masks(k, pis, child.is_null()) {
                        self.local.add(child);
                    } else {
                        self.value(child);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|c| self.value(c)),
            _ => {}
        }
    }

    /// True when no member name holds a secret known to either scrubber.
    fn keys_clean(&self) -> bool {
        self.keys
            .iter()
            .all(|k| self.global.text(k) == *k && self.local.text(k) == *k)
    }
}

/// The masking context of one resource while it is serialised.
struct Ctx<'s> {
    hidden: &'s BTreeSet<String>,
    global: &'s Scrubber,
    local: &'s Scrubber,
    mask: String,
}

impl Ctx<'_> {
    fn text(&self, s: &str) -> String {
        self.local.text(&self.global.text(s))
    }
}

struct MaskedNode<'a, 's>(&'a Node<'a>, &'a Ctx<'s>);
struct MaskedValue<'a, 's>(&'a Value, &'a Ctx<'s>);

impl serde::Serialize for MaskedNode<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        let ctx = self.1;
        match self.0 {
            Node::Val(v) => MaskedValue(v, ctx).serialize(s),
            Node::Own(v) => MaskedValue(v, ctx).serialize(s),
            Node::Str(t) => s.serialize_str(&ctx.text(t)),
            Node::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(&MaskedNode(i, ctx))?;
                }
                seq.end()
            }
            Node::Obj(fields) => {
                let pis = secret_param(
                    fields
                        .iter()
                        .find(|(k, _)| *k == "param")
                        .and_then(|(_, n)| n.as_str()),
                    ctx.hidden,
                );
                let mut m = s.serialize_map(Some(fields.len()))?;
                for (k, child) in fields {
                    if masks(k, pis, child.is_null()) {
                        m.serialize_entry(k, &ctx.mask)?;
                    } else {
                        m.serialize_entry(k, &MaskedNode(child, ctx))?;
                    }
                }
                m.end()
            }
        }
    }
}

impl serde::Serialize for MaskedValue<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        let ctx = self.1;
        match self.0 {
            Value::Object(o) => {
                let pis = secret_param(o.get("param").and_then(Value::as_str), ctx.hidden);
                let mut m = s.serialize_map(Some(o.len()))?;
                for (k, child) in o {
                    if masks(k, pis, child.is_null()) {
                        m.serialize_entry(k, &ctx.mask)?;
                    } else {
                        m.serialize_entry(k, &MaskedValue(child, ctx))?;
                    }
                }
                m.end()
            }
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for i in a {
                    seq.serialize_element(&MaskedValue(i, ctx))?;
                }
                seq.end()
            }
            Value::String(t) => s.serialize_str(&ctx.text(t)),
            Value::Number(_) => {
                let mut v = self.0.clone();
                ctx.global.value(&mut v);
                ctx.local.value(&mut v);
                v.serialize(s)
            }
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Null => s.serialize_unit(),
        }
    }
}

/// One resource of the streamed document: masked while serialised when no member name holds a
/// known secret (always, in practice), else through the value tree (`resource_json`).
struct Streamed<'a>(&'a Masking, &'a ResourceOutcome);

impl serde::Serialize for Streamed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (masking, o) = (self.0, self.1);
        let hidden = hidden_of(&masking.secret, o);
        let node = resource_node(o);
        let mut c = Collect {
            hidden: &hidden,
            global: &masking.scrubber,
            local: Scrubber::new(),
            keys: Vec::new(),
        };
        c.node(&node);
        if !c.keys_clean() {
            return masking.resource_json(o).serialize(s);
        }
        let local = c.local;
        let ctx = Ctx {
            hidden: &hidden,
            global: &masking.scrubber,
            local: &local,
            mask: local.text(&masking.scrubber.text(MASK)),
        };
        MaskedNode(&node, &ctx).serialize(s)
    }
}

/// Writes the JSON document to stdout, pretty-printed as it is produced. A closed pipe ends the
/// output quietly.
fn write_json(world: &World, outcomes: &[ResourceOutcome]) -> Result<()> {
    use std::io::Write;
    let masking = Masking::new(world, outcomes);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let written = serde_json::to_writer_pretty(&mut out, &Document(&masking, outcomes))
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The whole JSON document as a value (tests compare it with the streamed text).
#[cfg(test)]
fn to_json(world: &World, outcomes: &[ResourceOutcome]) -> Value {
    let masking = Masking::new(world, outcomes);
    json!({"resources": outcomes.iter().map(|o| masking.resource_json(o)).collect::<Vec<_>>()})
}

/// The text tree: resource → template → jobs → params with their source chain.
pub fn to_text(world: &World, outcomes: &[ResourceOutcome]) -> String {
    let world_name = world.name.as_str();
    let secret = secret_params(world);
    let scrubber = scrubber_of(world, &secret, outcomes);
    let mut s = String::new();
    let jobs: usize = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .map(Vec::len)
        .sum();
    let errors = outcomes.iter().filter(|o| o.result.is_err()).count();
    let _ = writeln!(
        s,
        "world {}: {} resources, {} jobs, {} errors",
        if world_name.is_empty() {
            "(unnamed)"
        } else {
            world_name
        },
        outcomes.len(),
        jobs,
        errors
    );
    for o in outcomes {
        let _ = writeln!(s, "\n{}  v{}  {}", o.resource, o.version, o.action.as_str());
        for d in &o.decisions {
            let line = match d {
                HandlerDecision::NoPath { handler } => {
                    format!("{handler}: no template path for this type")
                }
                HandlerDecision::NoTemplate { handler } => {
                    format!("{handler}: template path yields none")
                }
                HandlerDecision::UnknownTemplate { handler, template } => {
                    format!("{handler}: template `{template}` does not exist (skipped)")
                }
                HandlerDecision::Template { handler, template } => {
                    format!("{handler}: template `{template}`")
                }
            };
            let _ = writeln!(s, "  {line}");
        }
        match &o.result {
            Err(e) => {
                let _ = writeln!(s, "  ERROR {}", scrubber.text(&e.to_string()));
            }
            Ok(jobs) if jobs.is_empty() => {
                let _ = writeln!(s, "  (recorded only: READ_COMPLETE, no job)");
            }
            Ok(jobs) => {
                let hidden = hidden_of(&secret, o);
                for j in jobs {
                    write_job(&mut s, j, &hidden, &scrubber);
                }
            }
        }
    }
    s
}

fn write_job(s: &mut String, j: &Job, hidden: &BTreeSet<String>, scrubber: &Scrubber) {
    let mut flags = Vec::new();
    if j.is_first {
        flags.push("first");
    }
    if j.is_last {
        flags.push("last");
    }
    let _ = writeln!(
        s,
        "  job {}  [{}] on_failure={}",
        j.id,
        flags.join(","),
        j.on_failure.as_str()
    );
    if j.dependency.is_empty() {
        let _ = writeln!(s, "    depends on: nothing");
    } else {
        for d in &j.dependency {
            let _ = writeln!(s, "    depends on: {d}");
        }
    }
    let width = j.params.iter().map(|p| p.param.len()).max().unwrap_or(0);
    let mut params: Vec<_> = j.params.iter().collect();
    params.sort_by(|a, b| a.param.cmp(&b.param));
    for p in params {
        let value = if is_secret_name(&p.param) || hidden.contains(&p.param) {
            MASK.to_string()
        } else {
            match p.kind {
                ParamType::OutputKey => describe_output(&p.value),
                ParamType::List => match &p.value {
                    Value::Array(items) => format!(
                        "[{}]",
                        items
                            .iter()
                            .map(|i| describe_output(i.get("value").unwrap_or(&Value::Null)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    other => other.to_string(),
                },
                ParamType::Value => {
                    let mut v = p.value.clone();
                    redact(&mut v);
                    scrubber.value(&mut v);
                    shorten(&v.to_string())
                }
            }
        };
        let (chain, repeated) = fold_chain(&p.resources);
        let chain = chain_text(&chain, repeated);
        let _ = writeln!(
            s,
            "    {:width$}  {:10}  {}{}",
            p.param,
            p.kind.as_str(),
            value,
            if chain.is_empty() {
                String::new()
            } else {
                format!("   via {chain}")
            },
        );
    }
}

fn describe_output(v: &Value) -> String {
    match (
        v.get("resource_type"),
        v.get("resource_id"),
        v.get("output_key"),
    ) {
        (Some(Value::String(t)), Some(Value::String(i)), Some(Value::String(k))) => {
            format!("output `{k}` of {t}/{i}")
        }
        _ => shorten(&v.to_string()),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 72 {
        format!("{}...", s.chars().take(69).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streamed_document_equals_the_value_tree() {
        let world = esi_core::generate::world(60).expect("world");
        let outcomes = expand_world(&world, &mut SeededSuffixes::new(3));
        let masking = Masking::new(&world, &outcomes);
        let streamed = serde_json::to_string_pretty(&Document(&masking, &outcomes)).expect("json");
        let tree = serde_json::to_string_pretty(&to_json(&world, &outcomes)).expect("json");
        assert_eq!(streamed, tree);
    }

    #[test]
    fn the_streamed_example_equals_the_value_tree() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vpn-gateway");
        let world = load_world(&dir).expect("example world");
        let outcomes = expand_world(&world, &mut SeededSuffixes::new(7));
        let masking = Masking::new(&world, &outcomes);
        assert!(!masking.scrubber.is_empty(), "the example has secrets");
        let streamed = serde_json::to_string_pretty(&Document(&masking, &outcomes)).expect("json");
        let tree = serde_json::to_string_pretty(&to_json(&world, &outcomes)).expect("json");
        assert_eq!(streamed, tree);
    }

    #[test]
    fn a_member_name_holding_a_secret_takes_the_value_tree() {
        let body = json!({"admin_password": "longsecret1", "x": {"longsecret1": 1}});
        let node = Node::Val(&body);
        let hidden = BTreeSet::new();
        let global = Scrubber::new();
        let mut c = Collect {
            hidden: &hidden,
            global: &global,
            local: Scrubber::new(),
            keys: Vec::new(),
        };
        c.node(&node);
        assert_eq!(c.local.len(), 1);
        assert!(!c.keys_clean());
    }
}
