//! A Junos-like hierarchical configuration: parse curly-brace text, merge-load it, delete
//! statements by their set-form path, flatten and render.
//!
//! The tokenizer follows devices.md §2.5 (quoted strings, `[ … ]` lists, `{`, `}`, `;` and
//! newlines as terminators, `/* */`, `##` and `#` comments dropped). The tree keeps statements
//! in order of first appearance. Unlike [`crate::exec::junos::set_lines`], the values after
//! secret keywords are kept (the router needs them) and only masked when rendered.
//!
//! **Merge** (Junos `load merge`): blocks with the same header merge; a header written in one
//! piece (`family inet {`) and the same hierarchy written nested (`family { inet {`) meet in the
//! same block (paths are matched token by token). A leaf that is already present is not
//! repeated. Junos knows from its schema which leaves hold one value; without a schema a leaf
//! `kw … value` **replaces** an existing leaf with the same tokens but the last (`vlan-id 1` →
//! `vlan-id 2`, `description "a"` → `description "b"`) unless its keyword is one of the
//! multi-valued keywords in [`MULTI_VALUED`] (`interface`, `route`, `address`, `member`,
//! `apply-groups`, `export`, …), which accumulate. One-token leaves (`preempt;`, a prefix in a
//! prefix list) accumulate.
//!
//! **Delete** by path (`delete interfaces ae0 unit 5 vlan-id`): the statement whose full path
//! equals the given tokens is removed (a block with everything below it); blocks left empty by
//! the removal are pruned; a path that does not exist is skipped.

use std::fmt::Write as _;

/// Keywords whose leaves accumulate instead of replacing each other on merge.
pub const MULTI_VALUED: [&str; 32] = [
    "interface",
    "route",
    "address",
    "member",
    "members",
    "apply-groups",
    "import",
    "export",
    "next-hop",
    "prefix-list",
    "route-filter",
    "neighbor",
    "community",
    "unit",
    "vrrp-group",
    "virtual-address",
    "group",
    "term",
    "filter",
    "policy-statement",
    "source-address",
    "destination-address",
    "destination-port",
    "protocol",
    "name-server",
    "family",
    "vlan-id-list",
    "nat-rules",
    "rule",
    "pool",
    "service-set",
    "rule-set",
];

/// Keywords whose following token is a secret: the one policy of [`crate::secret`].
pub use crate::secret::JUNOS_SECRET_KEYWORDS as SECRET_KEYWORDS;

/// Junos text that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigSyntaxError {
    /// A `}` without an open block.
    #[error("syntax error: unbalanced '}}' at statement {0}")]
    UnbalancedClose(usize),
    /// Blocks left open at the end of the text.
    #[error("syntax error: {0} block(s) not closed")]
    Unclosed(usize),
    /// An additional command that is not `set`, `delete` or `insert`, or names no statement.
    #[error("bad command `{command}`: {reason}")]
    BadCommand {
        /// The command line.
        command: String,
        /// What is wrong.
        reason: String,
    },
}

use crate::exec::junos::set_lines::{self, tokenize, Token};

/// A statement's lines ([`set_lines::expand`]) without the empty ones.
fn expand(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut lines = set_lines::expand(tokens);
    lines.retain(|l| !l.is_empty());
    lines
}

/// One statement of parsed text: the enclosing block headers (as written) and the leaf's own
/// tokens (`None` for an empty block, whose header is the last group).
#[derive(Debug, Clone, PartialEq)]
struct Stmt {
    groups: Vec<Vec<String>>,
    leaf: Option<Vec<String>>,
}

fn parse_statements(text: &str) -> Result<Vec<Stmt>, ConfigSyntaxError> {
    let mut out = Vec::new();
    let mut headers: Vec<Vec<String>> = Vec::new();
    let mut filled: Vec<bool> = Vec::new();
    let mut stmt: Vec<Token> = Vec::new();
    let flush = |stmt: &mut Vec<Token>,
                 headers: &Vec<Vec<String>>,
                 filled: &mut Vec<bool>,
                 out: &mut Vec<Stmt>| {
        for leaf in expand(stmt) {
            out.push(Stmt {
                groups: headers.clone(),
                leaf: Some(leaf),
            });
            filled.iter_mut().for_each(|f| *f = true);
        }
        stmt.clear();
    };
    for tok in tokenize(text) {
        match tok {
            Token::Word(_) | Token::List(_) => stmt.push(tok),
            Token::End => flush(&mut stmt, &headers, &mut filled, &mut out),
            Token::Open => {
                let header = expand(&stmt).into_iter().next().unwrap_or_default();
                stmt.clear();
                if header.is_empty() {
                    // `{` without a header: treat its content as belonging to the parent
                    headers.push(Vec::new());
                } else {
                    headers.push(header);
                }
                filled.push(false);
            }
            Token::Close => {
                flush(&mut stmt, &headers, &mut filled, &mut out);
                if headers.is_empty() {
                    return Err(ConfigSyntaxError::UnbalancedClose(out.len()));
                }
                if filled.pop() == Some(false) {
                    out.push(Stmt {
                        groups: headers.clone(),
                        leaf: None,
                    });
                    filled.iter_mut().for_each(|f| *f = true);
                }
                headers.pop();
            }
        }
    }
    flush(&mut stmt, &headers, &mut filled, &mut out);
    if !headers.is_empty() {
        return Err(ConfigSyntaxError::Unclosed(headers.len()));
    }
    for s in &mut out {
        s.groups.retain(|g| !g.is_empty());
    }
    out.retain(|s| !s.groups.is_empty() || s.leaf.is_some());
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    tokens: Vec<String>,
    /// `None` for a leaf.
    children: Option<Vec<Node>>,
    /// The load that added the node.
    load: u64,
}

/// A hierarchical configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JunosConfig {
    root: Vec<Node>,
    loads: u64,
}

fn replace_key(leaf: &[String]) -> Option<&[String]> {
    match leaf {
        [] | [_] => None,
        [first, ..] if MULTI_VALUED.contains(&first.as_str()) => None,
        _ => Some(&leaf[..leaf.len() - 1]),
    }
}

/// Drops `n` tokens from the front of `(groups, leaf)`.
fn consume(
    groups: &[Vec<String>],
    leaf: Option<&[String]>,
    mut n: usize,
) -> (Vec<Vec<String>>, Option<Vec<String>>) {
    let mut out = Vec::new();
    for g in groups {
        if n >= g.len() {
            n -= g.len();
        } else {
            out.push(g[n..].to_vec());
            n = 0;
        }
    }
    let leaf = leaf.map(|l| l[n.min(l.len())..].to_vec());
    (out, leaf.filter(|l| !l.is_empty()))
}

fn insert(level: &mut Vec<Node>, groups: &[Vec<String>], leaf: Option<&[String]>, load: u64) {
    let flat: Vec<&String> = groups
        .iter()
        .flatten()
        .chain(leaf.into_iter().flatten())
        .collect();
    if flat.is_empty() {
        return;
    }
    for node in level.iter_mut() {
        let h = &node.tokens;
        if h.len() > flat.len() || !h.iter().zip(&flat).all(|(a, b)| a == *b) {
            continue;
        }
        if h.len() == flat.len() {
            return; // already present (as a leaf or a block)
        }
        if let Some(children) = node.children.as_mut() {
            let (g2, l2) = consume(groups, leaf, h.len());
            insert(children, &g2, l2.as_deref(), load);
            return;
        }
    }
    match groups.split_first() {
        None => {
            if let Some(leaf) = leaf {
                insert_leaf(level, leaf, load);
            }
        }
        Some((header, rest)) => {
            level.retain(|n| !(n.children.is_none() && &n.tokens == header));
            level.push(Node {
                tokens: header.clone(),
                children: Some(Vec::new()),
                load,
            });
            if let Some(Node {
                children: Some(children),
                ..
            }) = level.last_mut()
            {
                insert(children, rest, leaf, load);
            }
        }
    }
}

fn insert_leaf(level: &mut Vec<Node>, leaf: &[String], load: u64) {
    if let Some(key) = replace_key(leaf) {
        if let Some(existing) = level
            .iter_mut()
            .find(|n| n.children.is_none() && n.load < load && replace_key(&n.tokens) == Some(key))
        {
            existing.tokens = leaf.to_vec();
            existing.load = load;
            return;
        }
    }
    level.push(Node {
        tokens: leaf.to_vec(),
        children: None,
        load,
    });
}

fn delete(level: &mut Vec<Node>, path: &[String]) -> bool {
    for i in 0..level.len() {
        let h = level[i].tokens.len();
        if level[i].tokens.as_slice() == path {
            level.remove(i);
            return true;
        }
        if path.len() > h && path[..h] == level[i].tokens[..] {
            let removed = match level[i].children.as_mut() {
                Some(children) => delete(children, &path[h..]),
                None => false,
            };
            if removed {
                if level[i].children.as_ref().is_some_and(Vec::is_empty) {
                    level.remove(i);
                }
                return true;
            }
        }
    }
    false
}

fn flatten(level: &[Node], prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for n in level {
        let depth = prefix.len();
        prefix.extend(n.tokens.iter().cloned());
        match &n.children {
            Some(children) if !children.is_empty() => flatten(children, prefix, out),
            _ => out.push(prefix.clone()),
        }
        prefix.truncate(depth);
    }
}

fn quote(token: &str) -> String {
    let plain = !token.is_empty()
        && !token
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '{' | '}' | ';' | '[' | ']' | '"' | '#'));
    if plain {
        token.to_string()
    } else {
        format!("\"{}\"", token.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn statement_text(context: &[Vec<String>], tokens: &[String], mask: bool) -> (String, bool) {
    let mut secret = false;
    let positions = if mask {
        let words: Vec<&str> = context.iter().flatten().map(String::as_str).collect();
        let own: Vec<&str> = tokens.iter().map(String::as_str).collect();
        crate::secret::junos_secret_positions(&words, &own)
    } else {
        Vec::new()
    };
    let words: Vec<String> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if positions.contains(&i) {
                secret = true;
                "\"******\"".to_string()
            } else {
                quote(t)
            }
        })
        .collect();
    (words.join(" "), secret)
}

fn render(level: &[Node], context: &mut Vec<Vec<String>>, mask: bool, out: &mut String) {
    let indent = "    ".repeat(context.len());
    for n in level {
        let (text, secret) = statement_text(context, &n.tokens, mask);
        match &n.children {
            Some(children) if !children.is_empty() => {
                let _ = writeln!(out, "{indent}{text} {{");
                context.push(n.tokens.clone());
                render(children, context, mask, out);
                context.pop();
                let _ = writeln!(out, "{indent}}}");
            }
            _ => {
                let comment = if secret { " ## SECRET-DATA" } else { "" };
                let _ = writeln!(out, "{indent}{text};{comment}");
            }
        }
    }
}

impl JunosConfig {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses text into a configuration (equivalent to merging it into an empty one).
    pub fn parse(text: &str) -> Result<Self, ConfigSyntaxError> {
        let mut c = Self::new();
        c.merge_text(text)?;
        Ok(c)
    }

    /// Merge-loads Junos text.
    pub fn merge_text(&mut self, text: &str) -> Result<(), ConfigSyntaxError> {
        let statements = parse_statements(text)?;
        self.loads += 1;
        for s in statements {
            insert(&mut self.root, &s.groups, s.leaf.as_deref(), self.loads);
        }
        Ok(())
    }

    /// `set <path>`: adds one statement given in set form (a load of its own).
    pub fn set(&mut self, path: &[String]) {
        self.loads += 1;
        insert(&mut self.root, &[], Some(path), self.loads);
    }

    /// `delete <path>`: removes the statement (leaf or block) with this full path; prunes the
    /// blocks the removal leaves empty. Returns whether anything was removed.
    pub fn delete(&mut self, path: &[String]) -> bool {
        delete(&mut self.root, path)
    }

    /// Runs a configuration-mode command: `set …`, `delete …` or
    /// `insert <path> <element> before|after <element>`.
    pub fn command(&mut self, line: &str) -> Result<(), ConfigSyntaxError> {
        let tokens: Vec<String> = expand(
            &tokenize(line)
                .into_iter()
                .filter(|t| matches!(t, Token::Word(_) | Token::List(_)))
                .collect::<Vec<_>>(),
        )
        .into_iter()
        .next()
        .unwrap_or_default();
        let bad = |reason: &str| ConfigSyntaxError::BadCommand {
            command: line.trim().to_string(),
            reason: reason.into(),
        };
        match tokens.split_first() {
            Some((cmd, rest)) if cmd == "set" && !rest.is_empty() => {
                self.set(rest);
                Ok(())
            }
            Some((cmd, rest)) if cmd == "delete" && !rest.is_empty() => {
                self.delete(rest);
                Ok(())
            }
            Some((cmd, rest)) if cmd == "insert" => {
                let pos = rest
                    .iter()
                    .position(|t| t == "before" || t == "after")
                    .ok_or_else(|| bad("no `before` or `after`"))?;
                let reference = &rest[pos + 1..];
                let k = reference.len();
                if k == 0 || pos < k {
                    return Err(bad("malformed insert"));
                }
                let (parent, moved) = rest[..pos].split_at(pos - k);
                self.insert_relative(parent, moved, reference, rest[pos] == "before")
                    .then_some(())
                    .ok_or_else(|| bad("statement not found"))
            }
            _ => Err(bad("not a set, delete or insert command")),
        }
    }

    fn insert_relative(
        &mut self,
        parent: &[String],
        moved: &[String],
        reference: &[String],
        before: bool,
    ) -> bool {
        let Some(level) = find_level(&mut self.root, parent) else {
            return false;
        };
        let Some(from) = level.iter().position(|n| n.tokens == moved) else {
            return false;
        };
        let node = level.remove(from);
        let Some(to) = level.iter().position(|n| n.tokens == reference) else {
            level.insert(from, node);
            return false;
        };
        level.insert(if before { to } else { to + 1 }, node);
        true
    }

    /// Every statement as its set-form token path (leaves and empty blocks), in order; secret
    /// values are kept.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        flatten(&self.root, &mut Vec::new(), &mut out);
        out
    }

    /// Whether a statement with exactly this path exists.
    pub fn contains(&self, path: &[String]) -> bool {
        self.paths().iter().any(|p| p.as_slice() == path)
    }

    /// Whether the configuration is empty.
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    /// The configuration as Junos text (4-space indentation). With `mask_secrets`, values after
    /// secret-bearing statements ([`crate::secret::junos_secret_positions`]) are shown as `"******"` with a `## SECRET-DATA` comment.
    pub fn to_text(&self, mask_secrets: bool) -> String {
        let mut out = String::new();
        render(&self.root, &mut Vec::new(), mask_secrets, &mut out);
        out
    }
}

fn find_level<'a>(level: &'a mut Vec<Node>, path: &[String]) -> Option<&'a mut Vec<Node>> {
    if path.is_empty() {
        return Some(level);
    }
    let i = level.iter().position(|n| {
        n.children.is_some()
            && path.len() >= n.tokens.len()
            && path[..n.tokens.len()] == n.tokens[..]
    })?;
    let n = level[i].tokens.len();
    let children = level[i].children.as_mut()?;
    find_level(children, &path[n..])
}

/// The statements of `text` as set-form token paths (secret values kept). Used to remember what
/// a resource configured, so that exactly that can be deleted later.
pub fn statement_paths(text: &str) -> Result<Vec<Vec<String>>, ConfigSyntaxError> {
    Ok(JunosConfig::parse(text)?.paths())
}

/// The text a router shows after merge-loading `text` into an empty configuration (the
/// canonical form of a composition).
pub fn canonical_text(text: &str) -> Result<String, ConfigSyntaxError> {
    Ok(JunosConfig::parse(text)?.to_text(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::junos::set_lines::set_lines;

    fn p(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn merge_replaces_single_values_and_accumulates_lists() {
        let mut c = JunosConfig::parse(
            "interfaces { xe-0/0/2 { mtu 1500; unit 5 { vlan-id 5; description \"a b\"; } } }",
        )
        .unwrap();
        c.merge_text("interfaces xe-0/0/2 { mtu 9192; unit 5 { description \"c\"; } unit 6 { vlan-id 6; } }\nrouting-instances { V { interface xe-0/0/2.5; interface xe-0/0/2.6; } }")
            .unwrap();
        let text = c.to_text(true);
        assert_eq!(
            set_lines(&text),
            vec![
                "interfaces xe-0/0/2 mtu 9192",
                "interfaces xe-0/0/2 unit 5 vlan-id 5",
                "interfaces xe-0/0/2 unit 5 description c",
                "interfaces xe-0/0/2 unit 6 vlan-id 6",
                "routing-instances V interface xe-0/0/2.5",
                "routing-instances V interface xe-0/0/2.6",
            ]
        );
    }

    #[test]
    fn leaves_of_one_load_never_replace_each_other() {
        let mut c = JunosConfig::parse("s { x-rules A; x-rules B; }").unwrap();
        assert_eq!(c.paths().len(), 2);
        c.merge_text("s { x-rules C; }").unwrap();
        assert_eq!(c.paths(), vec![p("s x-rules C"), p("s x-rules B")]);
    }

    #[test]
    fn nested_and_joined_headers_meet() {
        let mut c = JunosConfig::parse("unit 1 { family inet { filter { input F; } } }").unwrap();
        c.merge_text(
            "unit 1 { family { inet { address 10.0.0.1/24 { vrrp-group 2 { priority 9; } } } } }",
        )
        .unwrap();
        assert_eq!(
            c.paths(),
            vec![
                p("unit 1 family inet filter input F"),
                p("unit 1 family inet address 10.0.0.1/24 vrrp-group 2 priority 9")
            ]
        );
        assert!(c.to_text(false).contains("family inet {"));
    }

    #[test]
    fn delete_prunes_emptied_blocks_only() {
        let mut c = JunosConfig::parse(
            "interfaces { ae0 { mtu 9192; unit 7 { vlan-id 7; } } }\npolicy-options { prefix-list P; }",
        )
        .unwrap();
        assert!(c.delete(&p("interfaces ae0 unit 7 vlan-id 7")));
        assert!(!c.delete(&p("interfaces ae0 unit 9 vlan-id 9")));
        assert_eq!(
            c.paths(),
            vec![
                p("interfaces ae0 mtu 9192"),
                p("policy-options prefix-list P")
            ]
        );
        assert!(c.delete(&p("policy-options prefix-list P")));
        assert_eq!(c.paths(), vec![p("interfaces ae0 mtu 9192")]);
    }

    #[test]
    fn secrets_are_masked_when_rendered_and_commands_work() {
        let mut c = JunosConfig::parse(
            "bgp { group G { neighbor 1.1.1.1 { authentication-key \"k3y\"; } } }",
        )
        .unwrap();
        let shown = c.to_text(true);
        assert!(!shown.contains("k3y") && shown.contains("SECRET-DATA"));
        assert!(c.to_text(false).contains("k3y"));
        c.merge_text("f { term a { then accept; } term b { then reject; } }")
            .unwrap();
        c.command("insert f term b before term a").unwrap();
        assert_eq!(c.paths()[1], p("f term b then reject"));
        c.command("set f term c then accept").unwrap();
        c.command("delete f term a").unwrap();
        assert_eq!(c.paths().len(), 3);
        assert!(c.command("rollback 1").is_err());
        assert!(JunosConfig::parse("a { b;").is_err());
        assert!(JunosConfig::parse("a; }").is_err());
    }
}
