//! Secrets: a redacting wrapper and the masking of secret-looking values in JSON output.

use serde_json::Value;
use std::fmt;

/// What a masked value is replaced with.
pub const MASK: &str = "******";

/// A value that must never be printed: `Debug` and `Display` show [`MASK`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that must send it (a device login, an API call).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl From<String> for Secret<String> {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// Masks, recursively, every object member whose name contains `password`
/// with `"***"` — the HeatWorker's log masking of sent parameters.
pub fn mask_passwords(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if k.to_ascii_lowercase().contains("password") {
                        Value::String("***".into())
                    } else {
                        mask_passwords(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_passwords).collect()),
        other => other.clone(),
    }
}

/// True for names that hold secrets (`password`, `admin_password`, `secondary_device_password`,
/// `auth_token`, `secret_key`, SNMP `community`, `bgp_auth_key` …).
pub fn is_secret_name(name: &str) -> bool {
    // Called for every member name of every printed document: compared in place, ignoring
    // ASCII case, without allocating a lowercased copy.
    let contains = |needle: &str| {
        name.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    [
        "password",
        "passwd",
        "secret",
        "token",
        "private_key",
        "community",
        "auth_key",
        "psk",
    ]
    .iter()
    .any(|s| contains(s))
}

/// Masks, recursively, every object member whose key is a secret name, and the `value` of every
/// job param (`{"param": <secret name>, "value": …}`).
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let param_is_secret = o
                .get("param")
                .and_then(Value::as_str)
                .is_some_and(is_secret_name);
            for (k, child) in o.iter_mut() {
                if (is_secret_name(k) || (param_is_secret && k == "value")) && !child.is_null() {
                    *child = Value::String(MASK.to_string());
                } else {
                    redact(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The one redaction policy: what is secret, wherever it is produced
// ---------------------------------------------------------------------------------------------

/// The scrubber of known secret values in free text (defined beside the plan, which was its
/// first user; every producer uses this one).
pub use crate::plan::Scrubber;

/// Junos statement keywords whose next token is a secret value (`pre-shared-key` skips an
/// `ascii-text` / `hexadecimal` format word; SNMP `community NAME` is handled by
/// [`junos_secret_positions`] inside `snmp`).
pub const JUNOS_SECRET_KEYWORDS: &[&str] = &[
    "authentication-key",
    "hello-authentication-key",
    "encrypted-password",
    "plain-text-password-value",
    "secret",
    "pre-shared-key",
    "authentication-password",
    "privacy-password",
    "simple-password",
];

/// The indices of the secret value tokens of one Junos statement `words`, whose enclosing block
/// headers are `context` (outermost first, words flattened).
pub fn junos_secret_positions(context: &[&str], words: &[&str]) -> Vec<usize> {
    let mut out = Vec::new();
    let snmp = context.contains(&"snmp") || words.contains(&"snmp");
    let is_format = |w: &str| matches!(w, "ascii-text" | "hexadecimal");
    // `pre-shared-key { ascii-text X; }`
    if context.last() == Some(&"pre-shared-key") && words.len() > 1 && is_format(words[0]) {
        out.push(1);
    }
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let keyword = JUNOS_SECRET_KEYWORDS.contains(&w) || (snmp && w == "community");
        if keyword && i + 1 < words.len() {
            let mut v = i + 1;
            if w == "pre-shared-key" && is_format(words[v]) && v + 1 < words.len() {
                v += 1;
            }
            if !out.contains(&v) {
                out.push(v);
            }
            i = v + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// One token of Junos text with its byte range.
struct Tok {
    word: String,
    start: usize,
    end: usize,
    quoted: bool,
}

/// Walks Junos text (curly-brace form or `set` lines) statement by statement, calling `f` with
/// each statement's secret value tokens.
fn junos_secret_tokens(text: &str, mut f: impl FnMut(&Tok)) {
    let b = text.as_bytes();
    let mut stack: Vec<Vec<String>> = Vec::new();
    let mut words: Vec<Tok> = Vec::new();
    let mut flush = |words: &mut Vec<Tok>, stack: &Vec<Vec<String>>| {
        if words.is_empty() {
            return;
        }
        let context: Vec<&str> = stack.iter().flatten().map(String::as_str).collect();
        let ws: Vec<&str> = words.iter().map(|t| t.word.as_str()).collect();
        for i in junos_secret_positions(&context, &ws) {
            f(&words[i]);
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' | b';' => {
                flush(&mut words, &stack);
                words.clear();
                i += 1;
            }
            b'{' => {
                flush(&mut words, &stack);
                stack.push(words.drain(..).map(|t| t.word).collect());
                i += 1;
            }
            b'}' => {
                flush(&mut words, &stack);
                words.clear();
                stack.pop();
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(b.len());
            }
            b'[' | b']' => i += 1,
            c if c.is_ascii_whitespace() => i += 1,
            b'"' => {
                let start = i;
                i += 1;
                let mut word = Vec::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    word.push(b[i]);
                    i += 1;
                }
                i = (i + 1).min(b.len());
                words.push(Tok {
                    word: String::from_utf8_lossy(&word).into_owned(),
                    start,
                    end: i,
                    quoted: true,
                });
            }
            _ => {
                let start = i;
                while i < b.len()
                    && !b[i].is_ascii_whitespace()
                    && !matches!(b[i], b'{' | b'}' | b';' | b'"' | b'[' | b']')
                {
                    i += 1;
                }
                words.push(Tok {
                    word: text[start..i].to_string(),
                    start,
                    end: i,
                    quoted: false,
                });
            }
        }
    }
    flush(&mut words, &stack);
}

/// Junos text (curly-brace form or `set` lines) with the value token of every secret-bearing
/// statement ([`junos_secret_positions`]) replaced by [`MASK`] (quoted when it was quoted);
/// everything else is kept byte for byte.
pub fn mask_junos_text(text: &str) -> String {
    let mut spans = Vec::new();
    junos_secret_tokens(text, |t| {
        if t.word != MASK {
            spans.push((t.start, t.end, t.quoted))
        }
    });
    if spans.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, quoted) in spans {
        out.push_str(&text[at..start]);
        out.push_str(if quoted { "\"******\"" } else { MASK });
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// The secret values of a Junos text (for a [`Scrubber`], so the same values are masked in any
/// other text that carries them: a rendered template, an error).
pub fn junos_secret_values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    junos_secret_tokens(text, |t| {
        if t.word != MASK && !t.word.is_empty() {
            out.push(t.word.clone())
        }
    });
    out
}

/// The names of the Heat parameters a template text declares `hidden: true` (read statically
/// from its top-level `parameters:` section, without rendering).
pub fn hidden_parameters(template_text: &str) -> std::collections::BTreeSet<String> {
    crate::catalog::declared_parameters(template_text)
        .into_iter()
        .filter(|p| p.hidden)
        .map(|p| p.name)
        .collect()
}

/// The params of a template whose values are secret, read statically from its text (no
/// rendering, so `esi expand` knows them too): the Heat parameters declared `hidden: true`, and
/// the params that feed the value of a secret-bearing Junos statement
/// ([`junos_secret_positions`]), either inlined by Jinja (`authentication-key {{ jinja_k }}`)
/// or through a `str_replace` placeholder (`authentication-key KEY;` with
/// `KEY: {get_param: peer_key}`).
pub fn template_secret_params(template_text: &str) -> std::collections::BTreeSet<String> {
    use regex::Regex;
    use std::sync::OnceLock;
    static JINJA: OnceLock<Option<Regex>> = OnceLock::new();
    let mut out = hidden_parameters(template_text);
    let jinja = JINJA
        .get_or_init(|| Regex::new(r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}").ok())
        .as_ref();
    // The config texts sit in YAML strings: unescape, drop quotes, name Jinja expressions.
    let flat = template_text
        .replace("\\n", "\n")
        .replace(['"', '\'', '\\'], " ");
    let flat = match jinja {
        Some(re) => re.replace_all(&flat, "JINJA:$1").into_owned(),
        None => flat,
    };
    for token in junos_secret_values(&flat) {
        if let Some(name) = token.strip_prefix("JINJA:") {
            out.insert(name.to_string());
            continue;
        }
        let pattern = format!(
            r"(?m)\b{}\s*:\s*\{{\s*get_param\s*:\s*\[?\s*([A-Za-z0-9_]+)",
            regex::escape(&token)
        );
        if let Ok(re) = Regex::new(&pattern) {
            for c in re.captures_iter(template_text) {
                out.insert(c[1].to_string());
            }
        }
    }
    out
}

/// Masks, like [`redact`], secret-named members and the `value` of every job param
/// (`{"param": name, "value": …}`) whose name is secret or in `hidden`; the masked values are
/// added to `scrubber` so that copies elsewhere (a `resource_input`) can be scrubbed too.
pub fn redact_params(
    v: &mut Value,
    hidden: &std::collections::BTreeSet<String>,
    scrubber: &mut Scrubber,
) {
    match v {
        Value::Object(o) => {
            let param_is_secret = o
                .get("param")
                .and_then(Value::as_str)
                .is_some_and(|p| is_secret_name(p) || hidden.contains(p));
            for (k, child) in o.iter_mut() {
                if (is_secret_name(k) || (param_is_secret && k == "value")) && !child.is_null() {
                    scrubber.add(child);
                    *child = Value::String(MASK.to_string());
                } else {
                    redact_params(child, hidden, scrubber);
                }
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|c| redact_params(c, hidden, scrubber)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn junos_statements_are_masked_at_the_value_token() {
        let text = "protocols { bgp { group g { authentication-key \"K-1\"; } } }\n\
                    security { ike { policy p { pre-shared-key ascii-text \"PSK-2\"; } } }\n\
                    snmp { community PUBLIC-3 { authorization read-only; } }\n\
                    policy-options { community TARGET members target:1:1; }\n\
                    set snmp v3 usm local-engine user u authentication-sha authentication-password AP-4\n\
                    set system root-authentication encrypted-password \"$6$EP-5\"\n\
                    radius-server 10.0.0.1 secret RS-6;\n\
                    pre-shared-key { hexadecimal HX-7; }\n";
        let masked = mask_junos_text(text);
        for s in ["K-1", "PSK-2", "PUBLIC-3", "AP-4", "EP-5", "RS-6", "HX-7"] {
            assert!(!masked.contains(s), "{s}: {masked}");
        }
        assert!(masked.contains("ascii-text \"******\""), "{masked}");
        assert!(
            masked.contains("community TARGET members"),
            "not an SNMP community: {masked}"
        );
        assert!(masked.contains("authorization read-only"), "{masked}");
        assert_eq!(junos_secret_values(text).len(), 7);
    }

    #[test]
    fn params_feeding_junos_secrets_are_found_statically() {
        let t = "parameters:\n  peer_key: {type: string}\n  name: {type: string}\n  banner: {type: string, hidden: true}\n\
                 resources:\n  c:\n    properties:\n      config:\n        str_replace:\n\
                 template: \"protocols { bgp { authentication-key \\\"KEY\\\"; description NAME; } }\\nsnmp { community {{ jinja_comm }}; }\"\n\
                 params: {KEY: {get_param: peer_key}, NAME: {get_param: name}}\n";
        let found: Vec<String> = template_secret_params(t).into_iter().collect();
        assert_eq!(found, vec!["banner", "jinja_comm", "peer_key"]);
    }

    #[test]
    fn hidden_parameters_are_read_without_rendering() {
        let t = "heat_template_version: 2013-05-23\nparameters:\n  a: {type: string, hidden: true}\n  b:\n    type: string\n    hidden: true\n  c:\n    type: string\n    default: x\nresources: {}\n";
        let h = hidden_parameters(t);
        assert_eq!(h.into_iter().collect::<Vec<_>>(), vec!["a", "b"]);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names_ignore_ascii_case() {
        for n in [
            "admin_password",
            "Admin_PassWord",
            "SNMP_COMMUNITY",
            "x_psk",
            "bgp_Auth_Key",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in ["hostname", "pass", "", "tok", "communit"] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s} {s:?}"), "****** ******");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn passwords_are_masked_recursively_like_the_heat_worker_log() {
        let v = json!({"admin_password": "x", "credentials": {"username": "u", "password": "p"}});
        assert_eq!(
            mask_passwords(&v),
            json!({"admin_password": "***", "credentials": {"username": "u", "password": "***"}})
        );
    }

    #[test]
    fn redacts_fields_and_params_but_keeps_the_rest() {
        let mut v = json!({
            "admin_password": "pw1",
            "name": "r1",
            "params": [{"param": "secondary_device_password", "type": "value", "value": "pw2", "resources": []},
                       {"param": "hostname", "type": "value", "value": "r1", "resources": []}],
            "nested": {"auth_token": "tk-9f3e", "empty_password": null}
        });
        redact(&mut v);
        let text = v.to_string();
        for secret in ["pw1", "pw2", "tk-9f3e"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(v["params"][1]["value"], "r1");
        assert_eq!(v["nested"]["empty_password"], Value::Null);
    }
}
