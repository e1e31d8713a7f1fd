//! Small XML helpers: escaping, and reading `<hello>`, `<rpc-reply>` and `<rpc-error>` with
//! `roxmltree` (namespaces ignored: elements are matched by local name).

use roxmltree::{Document, Node};

/// Escapes text for an XML text node or attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Parses a document; `None` when it is not well-formed XML.
pub fn parse(xml: &str) -> Option<Document<'_>> {
    Document::parse(xml.trim_start_matches('\u{feff}')).ok()
}

/// The first descendant (or self) element with this local name.
pub fn find<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

/// The trimmed text of the first descendant element with this local name.
pub fn text_of(node: Node<'_, '_>, name: &str) -> Option<String> {
    find(node, name).map(|n| {
        n.descendants()
            .filter(|d| d.is_text())
            .filter_map(|d| d.text())
            .collect::<String>()
            .trim()
            .to_string()
    })
}

/// The element children of a node.
pub fn children<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(|n| n.is_element())
}

/// One `<rpc-error>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RpcError {
    /// `error-type` (`protocol`, `application`, …).
    pub error_type: String,
    /// `error-tag` (`lock-denied`, `operation-not-supported`, …).
    pub tag: String,
    /// `error-severity` (`error` or `warning`).
    pub severity: String,
    /// `error-path`, if any.
    pub path: Option<String>,
    /// `error-message`.
    pub message: String,
    /// `error-info/bad-element`, if any.
    pub bad_element: Option<String>,
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = if self.tag.is_empty() {
            "error"
        } else {
            &self.tag
        };
        write!(f, "{tag}")?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(p) = &self.path {
            write!(f, " (path {p})")?;
        }
        if let Some(b) = &self.bad_element {
            write!(f, " (bad element {b})")?;
        }
        Ok(())
    }
}

/// A parsed `<rpc-reply>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `message-id` attribute.
    pub message_id: Option<String>,
    /// Errors with severity `error` (warnings are in `warnings`).
    pub errors: Vec<RpcError>,
    /// Errors with severity `warning`.
    pub warnings: Vec<RpcError>,
    /// The whole reply text.
    pub raw: String,
}

fn read_error(n: Node<'_, '_>) -> RpcError {
    let direct = |name: &str| {
        children(n).find(|c| c.tag_name().name() == name).map(|c| {
            c.descendants()
                .filter(|d| d.is_text())
                .filter_map(|d| d.text())
                .collect::<String>()
                .trim()
                .to_string()
        })
    };
    RpcError {
        error_type: direct("error-type").unwrap_or_default(),
        tag: direct("error-tag").unwrap_or_default(),
        severity: direct("error-severity").unwrap_or_else(|| "error".into()),
        path: direct("error-path").filter(|p| !p.is_empty()),
        message: direct("error-message").unwrap_or_default(),
        bad_element: text_of(n, "bad-element").filter(|p| !p.is_empty()),
    }
}

/// What a received message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// An `<rpc-reply>`.
    Reply(Reply),
    /// A `<notification>` or another element the client did not ask for.
    Other(String),
}

/// Reads a message a client received after the hello.
pub fn read_incoming(xml: &str) -> Result<Incoming, String> {
    let doc = parse(xml).ok_or_else(|| "malformed XML in reply".to_string())?;
    let root = doc.root_element();
    if root.tag_name().name() != "rpc-reply" {
        return Ok(Incoming::Other(root.tag_name().name().to_string()));
    }
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for e in root
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "rpc-error")
    {
        let e = read_error(e);
        if e.severity == "warning" {
            warnings.push(e);
        } else {
            errors.push(e);
        }
    }
    Ok(Incoming::Reply(Reply {
        message_id: root.attribute("message-id").map(str::to_string),
        errors,
        warnings,
        raw: xml.to_string(),
    }))
}

/// A `<hello>`: its capabilities and session id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    /// Capability URIs.
    pub capabilities: Vec<String>,
    /// `session-id` (servers only).
    pub session_id: Option<u64>,
}

/// Reads a `<hello>`.
pub fn read_hello(xml: &str) -> Result<Hello, String> {
    let doc = parse(xml).ok_or_else(|| "malformed XML in hello".to_string())?;
    let root = doc.root_element();
    if root.tag_name().name() != "hello" {
        return Err(format!(
            "expected <hello>, got <{}>",
            root.tag_name().name()
        ));
    }
    Ok(Hello {
        capabilities: root
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "capability")
            .filter_map(|n| n.text())
            .map(|t| t.trim().to_string())
            .collect(),
        session_id: text_of(root, "session-id").and_then(|s| s.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_errors() {
        let r = read_incoming(r#"<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="7"><load-configuration-results><rpc-error><error-severity>error</error-severity><error-message>syntax error</error-message></rpc-error><rpc-error><error-severity>warning</error-severity><error-message>w</error-message></rpc-error></load-configuration-results></rpc-reply>"#).unwrap();
        let Incoming::Reply(r) = r else { panic!() };
        assert_eq!(r.message_id.as_deref(), Some("7"));
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].to_string(), "error: syntax error");
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(escape("a<b&\"c"), "a&lt;b&amp;&quot;c");
        let h = read_hello("<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities><capability> urn:a </capability></capabilities><session-id>4</session-id></hello>").unwrap();
        assert_eq!(h.capabilities, ["urn:a"]);
        assert_eq!(h.session_id, Some(4));
        assert!(read_incoming("<rpc-reply").is_err());
    }
}
