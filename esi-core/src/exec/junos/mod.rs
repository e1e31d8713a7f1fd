//! `OS::Contrail::NetconfNamedConfigs` → Junos configuration (EXEC.md kind
//! `netconf`, devices.md §1–§3).
//!
//! Composition rules:
//!
//! * each `configs` entry is `{config, path, additional_commands?}`; the
//!   path is written outermost first, per element: `tag` → `<tag> {`,
//!   `named_tag` → `<tag> <name> {`, `name` → `<name> {`;
//! * all entries of one resource merge into **one** tree: shared path
//!   prefixes share blocks, blocks appear in order of first appearance, an
//!   entry's `config` text goes verbatim into its innermost block after
//!   anything already there (identical full paths therefore concatenate);
//! * an empty (whitespace-only) `config` turns the last path element into a
//!   leaf statement (`interface lt-0/0/0.11025;`);
//! * names are trimmed and internal whitespace collapsed (decision D7);
//! * an empty path is rejected (decision D8);
//! * `additional_commands` are CLI lines run after the load, before the
//!   commit (decision D1).
//!
//! The XML form ([`ComposedConfig::xml`]) follows `xml_type`: `tag` →
//! `<tag>…</tag>`, `named_tag` → `<tag><name>NAME</name>…</tag>`. It was
//! never on the wire; the curly-brace payloads are carried as text content
//! of a `<configuration-text>` element inside the innermost element.

pub mod set_lines;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret::Secret;

/// Errors of reading or composing NetconfNamedConfigs properties.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JunosError {
    /// The properties do not have the expected shape.
    #[error("resource {resource}: property {field}: {reason}")]
    MalformedProperty {
        /// Resource label (stack/resource name).
        resource: String,
        /// Property (e.g. `configs[2].path[1].name`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// An entry with an empty path.
    #[error("resource {resource}: configs[{index}] has an empty path")]
    EmptyPath {
        /// Resource label.
        resource: String,
        /// Entry index.
        index: usize,
    },
}

/// How a path element is written in Junos text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigType {
    /// `<tag> {`.
    Tag,
    /// `<tag> <name> {`.
    NamedTag,
    /// `<name> {` (keyword-less list entry).
    Name,
}

/// How a path element is written in Junos XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XmlType {
    /// `<tag>…</tag>`.
    Tag,
    /// `<tag><name>NAME</name>…</tag>`.
    NamedTag,
}

/// One element of a config path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathElement {
    /// Junos keyword / XML element name.
    pub tag: String,
    /// Trimmed, whitespace-collapsed name (for `named_tag` / `name`).
    pub name: Option<String>,
    /// Text form.
    pub config_type: ConfigType,
    /// XML form.
    pub xml_type: XmlType,
}

impl PathElement {
    /// The text header (`interfaces`, `unit 1025`, `ae0`).
    pub fn header(&self) -> String {
        let name = self.name.clone().unwrap_or_default();
        match self.config_type {
            ConfigType::Tag => self.tag.clone(),
            ConfigType::NamedTag => format!("{} {}", self.tag, name),
            ConfigType::Name => name,
        }
    }
}

/// One `configs` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Junos text placed inside the innermost element.
    pub config: String,
    /// Hierarchy, outermost first (never empty).
    pub path: Vec<PathElement>,
    /// CLI lines run after the load.
    pub additional_commands: Vec<String>,
}

/// Where a resource's configuration goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceTarget {
    /// NETCONF/SSH host.
    pub device_ip: String,
    /// SSH port.
    pub port: u16,
    /// SSH user.
    pub username: String,
}

/// The evaluated properties of one NetconfNamedConfigs resource.
#[derive(Debug, Clone, PartialEq)]
pub struct NetconfProperties {
    /// Target device.
    pub device: DeviceTarget,
    /// SSH password.
    pub password: Secret<String>,
    /// Seconds: total retry budget of one transaction (`3000` recorded).
    pub lock_timeout: Option<u64>,
    /// `merge` (only recorded value) or absent.
    pub on_update: Option<String>,
    /// The entries, in order.
    pub configs: Vec<ConfigEntry>,
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn clean_name(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn commands_of(v: &Value) -> Vec<String> {
    let lines: Vec<String> = match v {
        Value::String(s) => s.lines().map(str::to_string).collect(),
        Value::Array(items) => items.iter().filter_map(text_of).collect(),
        _ => Vec::new(),
    };
    lines
        .into_iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

impl NetconfProperties {
    /// Reads the properties as Heat evaluated them; `resource` labels errors.
    pub fn from_value(resource: &str, v: &Value) -> Result<Self, JunosError> {
        let bad = |field: &str, reason: &str| JunosError::MalformedProperty {
            resource: resource.to_string(),
            field: field.to_string(),
            reason: reason.to_string(),
        };
        let get_str = |field: &str| {
            v.get(field)
                .and_then(text_of)
                .ok_or_else(|| bad(field, "missing or not a string"))
        };
        let port = match v.get("port") {
            Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
            Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
            None => Some(830),
            _ => None,
        }
        .ok_or_else(|| bad("port", "not a port number"))?;
        let lock_timeout = match v.get("lock_timeout") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(
                n.as_u64()
                    .ok_or_else(|| bad("lock_timeout", "not a count"))?,
            ),
            Some(Value::String(s)) => Some(
                s.trim()
                    .parse()
                    .map_err(|_| bad("lock_timeout", "not a count"))?,
            ),
            Some(_) => return Err(bad("lock_timeout", "not a count")),
        };
        let Some(Value::Array(raw)) = v.get("configs") else {
            return Err(bad("configs", "missing or not a list"));
        };
        let mut configs = Vec::with_capacity(raw.len());
        for (i, entry) in raw.iter().enumerate() {
            let f = |s: &str| format!("configs[{i}].{s}");
            let config = match entry.get("config") {
                None | Some(Value::Null) => String::new(),
                Some(c) => text_of(c).ok_or_else(|| bad(&f("config"), "not text"))?,
            };
            let Some(Value::Array(path_raw)) = entry.get("path") else {
                return Err(bad(&f("path"), "missing or not a list"));
            };
            if path_raw.is_empty() {
                return Err(JunosError::EmptyPath {
                    resource: resource.to_string(),
                    index: i,
                });
            }
            let mut path = Vec::with_capacity(path_raw.len());
            for (j, el) in path_raw.iter().enumerate() {
                let ff = |s: &str| f(&format!("path[{j}].{s}"));
                let config_type: ConfigType = el
                    .get("config_type")
                    .cloned()
                    .and_then(|c| serde_json::from_value(c).ok())
                    .ok_or_else(|| bad(&ff("config_type"), "not tag/named_tag/name"))?;
                let xml_type: XmlType = match el.get("xml_type") {
                    None => match config_type {
                        ConfigType::Tag => XmlType::Tag,
                        _ => XmlType::NamedTag,
                    },
                    Some(x) => serde_json::from_value(x.clone())
                        .map_err(|_| bad(&ff("xml_type"), "not tag/named_tag"))?,
                };
                let tag = el
                    .get("tag")
                    .and_then(text_of)
                    .ok_or_else(|| bad(&ff("tag"), "missing"))?;
                let name = el.get("name").and_then(text_of).map(|n| clean_name(&n));
                let needs_name = config_type != ConfigType::Tag || xml_type == XmlType::NamedTag;
                if needs_name && name.as_deref().is_none_or(str::is_empty) {
                    return Err(bad(&ff("name"), "missing for a named element"));
                }
                path.push(PathElement {
                    tag: tag.trim().to_string(),
                    name,
                    config_type,
                    xml_type,
                });
            }
            configs.push(ConfigEntry {
                config,
                path,
                additional_commands: entry
                    .get("additional_commands")
                    .map(commands_of)
                    .unwrap_or_default(),
            });
        }
        Ok(NetconfProperties {
            device: DeviceTarget {
                device_ip: get_str("device_ip")?,
                port,
                username: get_str("username")?,
            },
            password: Secret::new(v.get("password").and_then(text_of).unwrap_or_default()),
            lock_timeout,
            on_update: v.get("on_update").and_then(text_of),
            configs,
        })
    }

    /// Composes the configuration this resource commits.
    pub fn compose(&self) -> ComposedConfig {
        let mut tree = Tree::default();
        for entry in &self.configs {
            tree.add(entry);
        }
        ComposedConfig {
            device: self.device.clone(),
            text: tree.text(),
            xml: tree.xml(),
            additional_commands: self
                .configs
                .iter()
                .flat_map(|c| c.additional_commands.iter().cloned())
                .collect(),
        }
    }
}

/// The configuration of one resource, ready for one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedConfig {
    /// Target device.
    pub device: DeviceTarget,
    /// Junos text (`load-configuration action="merge" format="text"`).
    pub text: String,
    /// Junos XML skeleton (`<configuration>…</configuration>`).
    pub xml: String,
    /// CLI lines run after the load, before the commit.
    pub additional_commands: Vec<String>,
}

impl ComposedConfig {
    /// The normalised set lines of [`ComposedConfig::text`].
    pub fn set_lines(&self) -> Vec<String> {
        set_lines::set_lines(&self.text)
    }
}

#[derive(Debug, Clone)]
enum Item {
    Block(usize),
    Text(String),
    Leaf(usize),
}

#[derive(Debug, Clone)]
struct Node {
    element: Option<PathElement>,
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            nodes: vec![Node {
                element: None,
                items: Vec::new(),
            }],
        }
    }
}

impl Tree {
    fn child(&mut self, parent: usize, el: &PathElement) -> usize {
        let header = el.header();
        for item in &self.nodes[parent].items {
            if let Item::Block(i) = item {
                if self.nodes[*i].element.as_ref().map(PathElement::header) == Some(header.clone())
                {
                    return *i;
                }
            }
        }
        self.nodes.push(Node {
            element: Some(el.clone()),
            items: Vec::new(),
        });
        let idx = self.nodes.len() - 1;
        self.nodes[parent].items.push(Item::Block(idx));
        idx
    }

    fn add(&mut self, entry: &ConfigEntry) {
        let Some((last, inner)) = entry.path.split_last() else {
            return;
        };
        let mut cur = 0;
        for el in inner {
            cur = self.child(cur, el);
        }
        if entry.config.trim().is_empty() {
            self.nodes.push(Node {
                element: Some(last.clone()),
                items: Vec::new(),
            });
            let idx = self.nodes.len() - 1;
            self.nodes[cur].items.push(Item::Leaf(idx));
        } else {
            cur = self.child(cur, last);
            self.nodes[cur].items.push(Item::Text(entry.config.clone()));
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        self.write_text(0, &mut out);
        out
    }

    /// The header text of node `i` (empty for the root).
    fn header(&self, i: usize) -> String {
        self.nodes[i]
            .element
            .as_ref()
            .map(PathElement::header)
            .unwrap_or_default()
    }

    fn write_text(&self, node: usize, out: &mut String) {
        for item in &self.nodes[node].items {
            match item {
                Item::Block(i) => {
                    out.push_str(&self.header(*i));
                    out.push_str(" {\n");
                    self.write_text(*i, out);
                    out.push_str(" }\n");
                }
                Item::Text(t) => {
                    out.push_str(t);
                    if !t.ends_with('\n') {
                        out.push('\n');
                    }
                }
                Item::Leaf(i) => {
                    out.push_str(&self.header(*i));
                    out.push_str(";\n");
                }
            }
        }
    }

    fn xml(&self) -> String {
        let mut out = String::from("<configuration>");
        self.write_xml(0, &mut out);
        out.push_str("</configuration>");
        out
    }

    fn write_xml(&self, node: usize, out: &mut String) {
        for item in &self.nodes[node].items {
            match item {
                Item::Block(i) | Item::Leaf(i) => {
                    let Some(el) = &self.nodes[*i].element else {
                        continue;
                    };
                    let tag = xml_escape(&el.tag);
                    out.push_str(&format!("<{tag}>"));
                    if el.xml_type == XmlType::NamedTag {
                        out.push_str(&format!(
                            "<name>{}</name>",
                            xml_escape(el.name.as_deref().unwrap_or_default())
                        ));
                    }
                    self.write_xml(*i, out);
                    out.push_str(&format!("</{tag}>"));
                }
                Item::Text(t) => {
                    out.push_str("<configuration-text>");
                    out.push_str(&xml_escape(t));
                    out.push_str("</configuration-text>");
                }
            }
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One commit of a resource on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCommit {
    /// Label of the resource (e.g. `<stack>/<resource name>`).
    pub resource: String,
    /// The composed configuration.
    pub config: ComposedConfig,
}

/// Everything one router receives, commits in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    /// The router.
    pub device: DeviceTarget,
    /// Commits in the order given.
    pub commits: Vec<DeviceCommit>,
}

/// Groups resources by target device (devices in order of first
/// appearance, commits in input order) so a plan can show everything one
/// router receives.
pub fn group_by_device<'a, I>(resources: I) -> Vec<DevicePlan>
where
    I: IntoIterator<Item = (&'a str, &'a NetconfProperties)>,
{
    let mut plans: Vec<DevicePlan> = Vec::new();
    for (label, props) in resources {
        let commit = DeviceCommit {
            resource: label.to_string(),
            config: props.compose(),
        };
        match plans.iter_mut().find(|p| p.device == props.device) {
            Some(p) => p.commits.push(commit),
            None => plans.push(DevicePlan {
                device: props.device.clone(),
                commits: vec![commit],
            }),
        }
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(configs: Value) -> NetconfProperties {
        NetconfProperties::from_value(
            "r",
            &json!({"device_ip": "192.0.2.1", "port": 830, "username": "u", "password": "pw",
                    "lock_timeout": 10, "configs": configs}),
        )
        .unwrap()
    }

    fn el(ct: &str, tag: &str, name: Option<&str>) -> Value {
        let xt = if ct == "tag" { "tag" } else { "named_tag" };
        match name {
            Some(n) => json!({"config_type": ct, "xml_type": xt, "tag": tag, "name": n}),
            None => json!({"config_type": ct, "xml_type": xt, "tag": tag}),
        }
    }

    #[test]
    fn merges_paths_and_writes_headers() {
        let p = props(json!([
            {"config": "mtu 1500;\n", "path": [el("tag", "interfaces", None), el("name", "interface", Some("xe-1/0/0")), el("named_tag", "unit", Some("7"))]},
            {"config": "description d;", "path": [el("tag", "interfaces", None), el("name", "interface", Some("xe-1/0/0")), el("named_tag", "unit", Some("7"))]},
            {"config": "vlan-id 8;\n", "path": [el("tag", "interfaces", None), el("name", "interface", Some("xe-1/0/1")), el("named_tag", "unit", Some("8"))]}
        ]));
        let c = p.compose();
        assert_eq!(
            c.text,
            "interfaces {\nxe-1/0/0 {\nunit 7 {\nmtu 1500;\ndescription d;\n }\n }\nxe-1/0/1 {\nunit 8 {\nvlan-id 8;\n }\n }\n }\n"
        );
        assert_eq!(
            c.set_lines(),
            vec![
                "interfaces xe-1/0/0 unit 7 mtu 1500",
                "interfaces xe-1/0/0 unit 7 description d",
                "interfaces xe-1/0/1 unit 8 vlan-id 8"
            ]
        );
        assert!(c.xml.starts_with(
            "<configuration><interfaces><interface><name>xe-1/0/0</name><unit><name>7</name>"
        ));
    }

    #[test]
    fn empty_config_is_a_leaf_and_names_are_trimmed() {
        let p = props(json!([
            {"config": "  \n", "path": [el("tag", "policy-options", None), el("named_tag", "prefix-list", Some(" PL1\n"))]},
            {"config": "", "path": [el("tag", "family", None), el("named_tag", "address", Some("198.51.100.1/24\n"))]}
        ]));
        assert_eq!(
            p.compose().set_lines(),
            vec![
                "policy-options prefix-list PL1",
                "family address 198.51.100.1/24"
            ]
        );
        assert!(p.compose().text.contains("prefix-list PL1;\n"));
    }

    #[test]
    fn numeric_names_commands_and_errors() {
        let p = props(
            json!([{"config": "x;", "path": [el("named_tag", "unit", None).as_object().map(|m| { let mut m = m.clone(); m.insert("name".into(), json!(11)); Value::Object(m) }).unwrap()],
                               "additional_commands": "insert term a before term b\n\n"}]),
        );
        let c = p.compose();
        assert_eq!(c.set_lines(), vec!["unit 11 x"]);
        assert_eq!(c.additional_commands, vec!["insert term a before term b"]);
        let err = NetconfProperties::from_value(
            "r",
            &json!({"device_ip": "h", "username": "u", "configs": [{"config": "", "path": []}]}),
        );
        assert!(matches!(err, Err(JunosError::EmptyPath { index: 0, .. })));
        assert!(format!("{:?}", p.password).contains("***"));
    }

    #[test]
    fn grouping_by_device() {
        let a = props(json!([{"config": "a;", "path": [el("tag", "x", None)]}]));
        let mut b = a.clone();
        b.device.device_ip = "192.0.2.2".into();
        let plans = group_by_device([("s/a", &a), ("s/b", &b), ("s/c", &a)]);
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].commits.len(), 2);
        assert_eq!(plans[0].commits[1].resource, "s/c");
    }
}
