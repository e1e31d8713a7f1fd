//! Jinja2-compatible rendering of HOT templates.
//!
//! The HeatWorker renders `template_file` with Jinja2 **defaults**: no
//! `trim_blocks`/`lstrip_blocks`, undefined variables print as empty text,
//! a single trailing newline of the template is dropped, no auto-escaping.
//! minijinja is configured the same way, and the remaining differences to
//! Jinja2 on the constructs of the recorded templates are closed here:
//!
//! * values print the Python way (`None`, `True`/`False`, `['a', 1]`,
//!   `{'k': 'v'}`) instead of minijinja's (`none`, `true`, JSON-like);
//! * the `string` filter uses the same Python text;
//! * Python string/dict methods used by templates (`x.split('/')`, `strip`,
//!   `lower`, `upper`, `startswith`, `endswith`, `replace`, `items`, `keys`,
//!   `values`, `get`) are provided through the unknown-method callback;
//! * the custom `match` filter of the 2017 templates
//!   (`device_owner | match('compute')`) is Python `re.match`: the pattern
//!   must match at the start of the text, not necessarily up to its end;
//! * attribute access on `None` yields undefined (Jinja2 behaviour) rather
//!   than an error.

use minijinja::value::{Value as JValue, ValueKind};
use minijinja::{Environment, Error as JError, ErrorKind, UndefinedBehavior};
use serde_json::{Map, Value};

use super::pytext;

/// The fuel of one render: minijinja's instruction budget. The recorded templates need a few
/// thousand; an unbounded loop runs out instead of running until killed.
pub const RENDER_FUEL: u64 = 5_000_000;

/// The largest rendered template accepted, in bytes (recorded templates are a few kB).
pub const RENDER_MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// A bound of rendering that was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderLimit {
    /// The instruction budget ([`RENDER_FUEL`]) ran out.
    Fuel(u64),
    /// The output grew past this many bytes ([`RENDER_MAX_OUTPUT`]).
    OutputBytes(usize),
}

/// Rendering failed (syntax error in the template, failing filter, an exceeded limit, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot render template {template}: {message}")]
pub struct RenderError {
    /// Template name (id) being rendered.
    pub template: String,
    /// minijinja's description of the problem.
    pub message: String,
    /// Set when a bound of rendering was exceeded.
    pub limit: Option<RenderLimit>,
}

/// Renders `source` (Jinja2 syntax) with `context` as the only variables, within
/// [`RENDER_FUEL`] and [`RENDER_MAX_OUTPUT`].
pub fn render_template(
    template: &str,
    source: &str,
    context: &Map<String, Value>,
) -> Result<String, RenderError> {
    render_bounded(template, source, context, RENDER_FUEL, RENDER_MAX_OUTPUT)
}

/// [`render_template`] with explicit bounds.
pub fn render_bounded(
    template: &str,
    source: &str,
    context: &Map<String, Value>,
    fuel: u64,
    max_output: usize,
) -> Result<String, RenderError> {
    let mut env = jinja2_environment();
    env.set_fuel(Some(fuel));
    let ctx = JValue::from_serialize(context);
    let fail = |e: &JError, limit: Option<RenderLimit>| RenderError {
        template: template.to_string(),
        message: describe(e),
        limit,
    };
    let tmpl = env.template_from_str(source).map_err(|e| fail(&e, None))?;
    let mut out = Bounded {
        buf: Vec::new(),
        max: max_output,
        exceeded: false,
    };
    let rendered = tmpl.render_captured_to(ctx, &mut out).map(|_| ());
    match rendered {
        Ok(()) => String::from_utf8(out.buf).map_err(|e| RenderError {
            template: template.to_string(),
            message: format!("rendered text is not UTF-8: {e}"),
            limit: None,
        }),
        Err(_) if out.exceeded => Err(RenderError {
            template: template.to_string(),
            message: format!("the rendered text exceeds {max_output} bytes"),
            limit: Some(RenderLimit::OutputBytes(max_output)),
        }),
        Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(RenderError {
            template: template.to_string(),
            message: format!("rendering ran out of fuel ({fuel} instructions): an unbounded loop?"),
            limit: Some(RenderLimit::Fuel(fuel)),
        }),
        Err(e) => Err(fail(&e, None)),
    }
}

/// A writer that refuses to grow past `max` bytes.
struct Bounded {
    buf: Vec<u8>,
    max: usize,
    exceeded: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.max {
            self.exceeded = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks that `source` is valid template syntax (for validating templates
/// when they are read, before any job needs them).
pub fn check_syntax(template: &str, source: &str) -> Result<(), RenderError> {
    let env = jinja2_environment();
    env.template_from_str(source)
        .map(|_| ())
        .map_err(|e| RenderError {
            template: template.to_string(),
            message: describe(&e),
            limit: None,
        })
}

fn describe(e: &JError) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        msg.push_str(": ");
        msg.push_str(&inner.to_string());
        src = inner.source();
    }
    msg
}

/// A minijinja environment configured like Jinja2's defaults (see module doc).
pub fn jinja2_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_keep_trailing_newline(false);
    env.set_trim_blocks(false);
    env.set_lstrip_blocks(false);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_formatter(|out, _state, value| {
        out.write_str(&python_str(value))
            .map_err(|_| JError::new(ErrorKind::WriteFailure, "cannot write output"))
    });
    env.add_filter("string", |v: JValue| python_str(&v));
    env.add_filter("match", match_filter);
    env.set_unknown_method_callback(python_method);
    env
}

/// Python 3 `str()` of a template value; undefined prints as empty text.
pub fn python_str(value: &JValue) -> String {
    match value.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        _ => match serde_json::to_value(value) {
            Ok(v) => pytext::py3_str(&v),
            Err(_) => value.to_string(),
        },
    }
}

/// Python `re.match(pattern, text)` as a boolean: anchored at the start only.
pub fn python_re_match(pattern: &str, text: &str) -> Result<bool, regex::Error> {
    let re = regex::Regex::new(&format!("^(?:{pattern})"))?;
    Ok(re.is_match(text))
}

fn match_filter(value: JValue, pattern: String) -> Result<bool, JError> {
    if value.is_undefined() || value.is_none() {
        return Ok(false);
    }
    let text = python_str(&value);
    python_re_match(&pattern, &text).map_err(|e| {
        JError::new(
            ErrorKind::InvalidOperation,
            format!("invalid regular expression {pattern:?}: {e}"),
        )
    })
}

fn arg_str(args: &[JValue], i: usize) -> Option<String> {
    args.get(i)
        .filter(|v| !v.is_none() && !v.is_undefined())
        .map(python_str)
}

fn python_method(
    _state: &minijinja::State,
    value: &JValue,
    method: &str,
    args: &[JValue],
) -> Result<JValue, JError> {
    match value.kind() {
        ValueKind::String => string_method(value.as_str().unwrap_or_default(), method, args),
        ValueKind::Map => map_method(value, method, args),
        ValueKind::None | ValueKind::Undefined => Ok(JValue::UNDEFINED),
        _ => Err(JError::from(ErrorKind::UnknownMethod)),
    }
}

fn string_method(s: &str, method: &str, args: &[JValue]) -> Result<JValue, JError> {
    let out = match method {
        "split" | "rsplit" => {
            let maxsplit = args
                .get(1)
                .and_then(|v| i64::try_from(v.clone()).ok())
                .unwrap_or(-1);
            let parts: Vec<String> = match arg_str(args, 0) {
                Some(sep) if sep.is_empty() => {
                    return Err(JError::new(ErrorKind::InvalidOperation, "empty separator"))
                }
                Some(sep) => {
                    if maxsplit < 0 {
                        s.split(sep.as_str()).map(str::to_string).collect()
                    } else if method == "split" {
                        s.splitn(maxsplit as usize + 1, sep.as_str())
                            .map(str::to_string)
                            .collect()
                    } else {
                        let mut v: Vec<String> = s
                            .rsplitn(maxsplit as usize + 1, sep.as_str())
                            .map(str::to_string)
                            .collect();
                        v.reverse();
                        v
                    }
                }
                None => s.split_whitespace().map(str::to_string).collect(),
            };
            JValue::from(parts)
        }
        "strip" | "lstrip" | "rstrip" => {
            let chars: Option<Vec<char>> = arg_str(args, 0).map(|c| c.chars().collect());
            let pred = |c: char| match &chars {
                Some(set) => set.contains(&c),
                None => c.is_whitespace(),
            };
            JValue::from(match method {
                "strip" => s.trim_matches(pred),
                "lstrip" => s.trim_start_matches(pred),
                _ => s.trim_end_matches(pred),
            })
        }
        "lower" => JValue::from(s.to_lowercase()),
        "upper" => JValue::from(s.to_uppercase()),
        "startswith" => JValue::from(arg_str(args, 0).is_some_and(|p| s.starts_with(&p))),
        "endswith" => JValue::from(arg_str(args, 0).is_some_and(|p| s.ends_with(&p))),
        "replace" => match (arg_str(args, 0), arg_str(args, 1)) {
            (Some(a), Some(b)) => JValue::from(s.replace(&a, &b)),
            _ => return Err(JError::new(ErrorKind::MissingArgument, "replace(old, new)")),
        },
        _ => return Err(JError::from(ErrorKind::UnknownMethod)),
    };
    Ok(out)
}

fn map_method(value: &JValue, method: &str, args: &[JValue]) -> Result<JValue, JError> {
    let keys: Vec<JValue> = value.try_iter()?.collect();
    match method {
        "keys" => Ok(JValue::from(keys)),
        "values" => Ok(JValue::from(
            keys.iter()
                .map(|k| value.get_item(k).unwrap_or(JValue::UNDEFINED))
                .collect::<Vec<_>>(),
        )),
        "items" => Ok(JValue::from(
            keys.iter()
                .map(|k| {
                    JValue::from(vec![
                        k.clone(),
                        value.get_item(k).unwrap_or(JValue::UNDEFINED),
                    ])
                })
                .collect::<Vec<_>>(),
        )),
        "get" => {
            let key = args.first().cloned().unwrap_or(JValue::UNDEFINED);
            let found = value.get_item(&key).unwrap_or(JValue::UNDEFINED);
            if found.is_undefined() {
                Ok(args.get(1).cloned().unwrap_or(JValue::from(())))
            } else {
                Ok(found)
            }
        }
        _ => Err(JError::from(ErrorKind::UnknownMethod)),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_unbounded_loop_runs_out_of_fuel() {
        // 10^12 iterations: without fuel this runs until killed.
        let src =
            "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% for d in range(1000) %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}";
        let e =
            super::render_template("looping", src, &serde_json::Map::new()).expect_err("bounded");
        assert_eq!(
            e.limit,
            Some(super::RenderLimit::Fuel(super::RENDER_FUEL)),
            "{e}"
        );
        assert!(
            e.to_string().contains("template looping") && e.to_string().contains("fuel"),
            "{e}"
        );
    }

    #[test]
    fn a_huge_output_is_refused() {
        let src = "{% for a in range(1000) %}{% for b in range(1000) %}{{ 'x' * 1000 }}{% endfor %}{% endfor %}";
        let e = super::render_bounded("huge", src, &serde_json::Map::new(), 1 << 40, 1 << 20)
            .expect_err("bounded");
        assert_eq!(e.limit, Some(super::RenderLimit::OutputBytes(1 << 20)));
        assert!(e.to_string().contains("template huge"), "{e}");
        let ok = super::render_bounded(
            "small",
            "{{ 'x' * 10 }}",
            &serde_json::Map::new(),
            1000,
            100,
        );
        assert_eq!(ok.as_deref(), Ok("xxxxxxxxxx"));
    }

    use super::*;
    use serde_json::json;

    fn r(src: &str, ctx: Value) -> String {
        let Value::Object(map) = ctx else {
            panic!("object")
        };
        render_template("t", src, &map).unwrap()
    }

    #[test]
    fn undefined_prints_empty_and_trailing_newline_dropped() {
        assert_eq!(r("a={{ nope }}|\n", json!({})), "a=|");
        assert_eq!(r("x\n\n", json!({})), "x\n");
    }

    #[test]
    fn python_printing_of_scalars_and_containers() {
        let out = r(
            "{{ n }} {{ t }} {{ f }} {{ l }} {{ d }} {{ i }}",
            json!({"n": null, "t": true, "f": false, "l": ["a", 1], "d": {"k": "v"}, "i": 7}),
        );
        assert_eq!(out, "None True False ['a', 1] {'k': 'v'} 7");
    }

    #[test]
    fn no_trim_blocks_keeps_block_newlines() {
        let src = "{% for x in xs %}\n- {{ x }}\n{% endfor %}\nend";
        assert_eq!(r(src, json!({"xs": ["a", "b"]})), "\n- a\n\n- b\n\nend");
    }

    #[test]
    fn loops_set_string_concat_and_index() {
        let src = "{% for x in xs %}{% set id = 'ip_' + (loop.index0|string) %}{{ id }}={{ ys[loop.index0] }};{% endfor %}";
        assert_eq!(
            r(src, json!({"xs": [1, 2], "ys": ["a", "b"]})),
            "ip_0=a;ip_1=b;"
        );
    }

    #[test]
    fn filters_and_methods() {
        assert_eq!(
            r("{{ v | replace(':', '-') }}", json!({"v": "a:b:c"})),
            "a-b-c"
        );
        assert_eq!(
            r(
                "{% set p = ip.split('/') %}{{ p[0] }} {{ p[1] }}",
                json!({"ip": "10.0.0.1/24"})
            ),
            "10.0.0.1 24"
        );
        assert_eq!(
            r(
                "{% if o | match('compute') %}yes{% else %}no{% endif %}",
                json!({"o": "compute:nova"})
            ),
            "yes"
        );
        assert_eq!(
            r(
                "{% if o | match('nova') %}yes{% else %}no{% endif %}",
                json!({"o": "compute:nova"})
            ),
            "no"
        );
        assert_eq!(r("{{ b | string }}", json!({"b": true})), "True");
    }

    #[test]
    fn conditionals_on_falsy_values_and_inline_if() {
        let src = "{% if a and b %}both{% else %}not{% endif %} {{ 'x' if c == 'y' else 'z' }} {{ n + 3 }}";
        assert_eq!(
            r(src, json!({"a": "", "b": true, "c": "y", "n": 2})),
            "not x 5"
        );
    }

    #[test]
    fn attribute_of_missing_key_is_empty() {
        assert_eq!(r("[{{ d.nope }}]", json!({"d": {"k": 1}})), "[]");
        assert_eq!(r("[{{ n.nope }}]", json!({"n": null})), "[]");
        assert_eq!(r("[{{ l[5] }}]", json!({"l": [1]})), "[]");
    }

    #[test]
    fn syntax_error_is_typed() {
        let err = render_template("bad", "{% if %}", &Map::new()).unwrap_err();
        assert_eq!(err.template, "bad");
        assert!(check_syntax("bad", "{% for x in %}").is_err());
        assert!(check_syntax("ok", "{% for x in y %}{{ x }}{% endfor %}").is_ok());
    }
}
