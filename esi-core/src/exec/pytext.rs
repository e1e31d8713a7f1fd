//! Python text forms of JSON values.
//!
//! The recorded system was written in Python; several recorded strings are
//! Python renderings of JSON data:
//!
//! * [`json_dumps`] — `json.dumps(v)` with the default separators `", "` /
//!   `": "` and `ensure_ascii=True` (the `/state` `heat_outputs` string);
//! * [`py2_repr`] — CPython 2 `repr()` of the decoded JSON (`{u'a': u'b'}`),
//!   used by Heat when a dict/list is sent to a `string` parameter;
//! * [`py3_str`] — Python 3 `str()` (what Jinja2 prints for `{{ value }}`);
//! * [`parse_py_literal`] — a small parser for Python literals, used to
//!   compare `pyrepr` values independently of CPython 2 hash order.

use serde_json::{Map, Number, Value};

/// Python `json.dumps(value)` with default settings.
pub fn json_dumps(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&py_number(n, "Infinity", "NaN")),
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json_string(out, k);
                out.push_str(": ");
                write_json(out, v);
            }
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{:04x}", unit));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python `repr(float)`: shortest round-trip digits, scientific notation
/// when the decimal exponent is below -4 or at least 16.
pub fn py_float(f: f64, inf: &str, nan: &str) -> String {
    if f.is_nan() {
        return nan.to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            inf.to_string()
        } else {
            format!("-{inf}")
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // `{:e}` gives the shortest round-trip mantissa, e.g. "1.5e-5".
    let sci = format!("{:e}", f);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { "-" } else { "+" };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // position of the decimal point within `digits`
    let text = if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), digits)
    } else if (point as usize) >= digits.len() {
        format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{text}")
}

fn py_number(n: &Number, inf: &str, nan: &str) -> String {
    if n.is_f64() {
        py_float(n.as_f64().unwrap_or(f64::NAN), inf, nan)
    } else {
        n.to_string()
    }
}

/// Python 3 `str()` of a decoded JSON value (what Jinja2 prints).
pub fn py3_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_repr(other, false),
    }
}

/// Python 3 `repr()` of a decoded JSON value (`['a', 1]`, `{'k': None}`).
pub fn py3_repr(value: &Value) -> String {
    py_repr(value, false)
}

/// CPython 2 `repr()` of a value decoded by `json.loads` (strings are
/// `unicode`, hence the `u` prefix). Dict keys keep the JSON order; CPython 2
/// used hash order, so compare such text with [`parse_py_literal`].
pub fn py2_repr(value: &Value) -> String {
    py_repr(value, true)
}

fn py_repr(value: &Value, py2: bool) -> String {
    let mut out = String::new();
    write_repr(&mut out, value, py2);
    out
}

fn write_repr(out: &mut String, value: &Value, py2: bool) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&py_number(n, "inf", "nan")),
        Value::String(s) => write_str_repr(out, s, py2),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item, py2);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str_repr(out, k, py2);
                out.push_str(": ");
                write_repr(out, v, py2);
            }
            out.push('}');
        }
    }
}

fn write_str_repr(out: &mut String, s: &str, py2: bool) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    if py2 {
        out.push('u');
    }
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if py2 && (c as u32) > 0x7e => {
                let cp = c as u32;
                if cp <= 0xff {
                    out.push_str(&format!("\\x{cp:02x}"));
                } else if cp <= 0xffff {
                    out.push_str(&format!("\\u{cp:04x}"));
                } else {
                    out.push_str(&format!("\\U{cp:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Error of [`parse_py_literal`]: the text is not a Python literal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Python literal at byte {position}: {message}")]
pub struct PyLiteralError {
    /// Byte offset of the problem.
    pub position: usize,
    /// What was expected.
    pub message: String,
}

/// Parses a Python (2 or 3) literal — strings (with optional `u`/`b`
/// prefix), numbers, `True`/`False`/`None`, lists, tuples and dicts — into a
/// JSON value (tuples become arrays, dict keys their text).
pub fn parse_py_literal(text: &str) -> Result<Value, PyLiteralError> {
    let mut p = LiteralParser {
        s: text.as_bytes(),
        text,
        pos: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("trailing text"));
    }
    Ok(v)
}

struct LiteralParser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl LiteralParser<'_> {
    fn err(&self, message: &str) -> PyLiteralError {
        PyLiteralError {
            position: self.pos,
            message: message.to_string(),
        }
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn value(&mut self) -> Result<Value, PyLiteralError> {
        self.ws();
        match self.peek() {
            None => Err(self.err("unexpected end")),
            Some(b'[') => self.seq(b']'),
            Some(b'(') => self.seq(b')'),
            Some(b'{') => self.dict(),
            Some(b'\'') | Some(b'"') => self.string().map(Value::String),
            Some(b'u') | Some(b'U') | Some(b'b') | Some(b'B')
                if matches!(self.s.get(self.pos + 1), Some(b'\'') | Some(b'"')) =>
            {
                self.pos += 1;
                self.string().map(Value::String)
            }
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() || c == b'.' => self.number(),
            Some(_) => self.word(),
        }
    }

    fn seq(&mut self, close: u8) -> Result<Value, PyLiteralError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => return Err(self.err("expected ',' or closing bracket")),
            }
        }
    }

    fn dict(&mut self) -> Result<Value, PyLiteralError> {
        self.pos += 1;
        let mut map = Map::new();
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(Value::Object(map));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.pos += 1;
            let v = self.value()?;
            map.insert(key, v);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn string(&mut self) -> Result<String, PyLiteralError> {
        let quote = self.s[self.pos];
        self.pos += 1;
        let mut out = String::new();
        let rest = &self.text[self.pos..];
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c as u32 == quote as u32 {
                self.pos += i + 1;
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some((_, e)) = chars.next() else { break };
            match e {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'b' => out.push('\u{08}'),
                'f' => out.push('\u{0c}'),
                '0' => out.push('\0'),
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                    let cp = u32::from_str_radix(&hex, 16).map_err(|_| self.err("bad escape"))?;
                    out.push(char::from_u32(cp).ok_or_else(|| self.err("bad code point"))?);
                }
                other => out.push(other),
            }
        }
        Err(self.err("unterminated string"))
    }

    fn number(&mut self) -> Result<Value, PyLiteralError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.') {
                self.pos += 1;
            } else {
                break;
            }
        }
        let raw = self.text[start..self.pos].trim_end_matches(['L', 'l']);
        if let Ok(i) = raw.parse::<i64>() {
            return Ok(Value::from(i));
        }
        raw.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| self.err("bad number"))
    }

    fn word(&mut self) -> Result<Value, PyLiteralError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.pos += 1;
        }
        match &self.text[start..self.pos] {
            "True" => Ok(Value::Bool(true)),
            "False" => Ok(Value::Bool(false)),
            "None" => Ok(Value::Null),
            _ => Err(self.err("unknown name")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dumps_uses_python_separators_and_ascii() {
        let v = json!([{"k": "é", "n": 1, "f": 0.5, "z": null}]);
        assert_eq!(
            json_dumps(&v),
            r#"[{"k": "\u00e9", "n": 1, "f": 0.5, "z": null}]"#
        );
    }

    #[test]
    fn floats_like_python() {
        assert_eq!(py_float(1.0, "inf", "nan"), "1.0");
        assert_eq!(py_float(0.00001, "inf", "nan"), "1e-05");
        assert_eq!(py_float(1e16, "inf", "nan"), "1e+16");
        assert_eq!(py_float(123.25, "inf", "nan"), "123.25");
        assert_eq!(py_float(0.001, "inf", "nan"), "0.001");
    }

    #[test]
    fn py2_repr_and_back() {
        let v = json!({"size": "10", "list": [1, true, null], "q": "it's"});
        let text = py2_repr(&v);
        assert_eq!(
            text,
            r#"{u'size': u'10', u'list': [1, True, None], u'q': u"it's"}"#
        );
        assert_eq!(parse_py_literal(&text).unwrap(), v);
    }

    #[test]
    fn py3_str_of_scalars() {
        assert_eq!(py3_str(&json!(null)), "None");
        assert_eq!(py3_str(&json!(true)), "True");
        assert_eq!(py3_str(&json!("x")), "x");
        assert_eq!(py3_str(&json!(["a", 1])), "['a', 1]");
    }

    #[test]
    fn literal_errors_are_reported() {
        assert!(parse_py_literal("{u'a': }").is_err());
        assert!(parse_py_literal("nonsense").is_err());
    }
}
