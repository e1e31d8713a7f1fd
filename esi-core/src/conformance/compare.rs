//! Structural JSON comparison with readable, bounded diffs.

use serde_json::Value;

/// At most this many differences are reported per comparison.
pub const MAX_DIFFS: usize = 8;

/// Compares `expected` with `got` (object key order ignored, list order and JSON types
/// significant) and returns one line per difference, at most [`MAX_DIFFS`].
pub fn diff(expected: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", expected, got, &mut out);
    out
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        let cut: String = s.chars().take(157).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn walk(path: &str, e: &Value, g: &Value, out: &mut Vec<String>) {
    if out.len() >= MAX_DIFFS || e == g {
        return;
    }
    let at = if path.is_empty() { "(root)" } else { path };
    match (e, g) {
        (Value::Object(eo), Value::Object(go)) => {
            for (k, ev) in eo {
                match go.get(k) {
                    Some(gv) => walk(&format!("{path}.{k}"), ev, gv, out),
                    None => push(out, format!("{path}.{k}: missing (expected {})", short(ev))),
                }
            }
            for (k, gv) in go {
                if !eo.contains_key(k) {
                    push(out, format!("{path}.{k}: unexpected field {}", short(gv)));
                }
            }
        }
        (Value::Array(ea), Value::Array(ga)) if ea.len() == ga.len() => {
            for (i, (ev, gv)) in ea.iter().zip(ga).enumerate() {
                walk(&format!("{path}[{i}]"), ev, gv, out);
            }
        }
        (Value::Array(ea), Value::Array(ga)) => push(
            out,
            format!(
                "{at}: expected {} items {}, got {} items {}",
                ea.len(),
                short(e),
                ga.len(),
                short(g)
            ),
        ),
        _ => push(
            out,
            format!("{at}: expected {}, got {}", short(e), short(g)),
        ),
    }
}

fn push(out: &mut Vec<String>, line: String) {
    if out.len() < MAX_DIFFS {
        out.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_have_no_diff_regardless_of_key_order() {
        let a = json!({"a": 1, "b": [1, 2]});
        let b = json!({"b": [1, 2], "a": 1});
        assert!(diff(&a, &b).is_empty());
    }

    #[test]
    fn json_types_are_significant() {
        let d = diff(&json!({"port": 830}), &json!({"port": "830"}));
        assert_eq!(d, vec![r#".port: expected 830, got "830""#.to_string()]);
        assert_eq!(diff(&json!(1), &json!(1.0)).len(), 1);
        assert_eq!(diff(&json!(""), &json!(null)).len(), 1);
    }

    #[test]
    fn reports_missing_and_unexpected_fields() {
        let d = diff(&json!({"a": 1}), &json!({"b": 1}));
        assert_eq!(d.len(), 2);
        assert!(d[0].contains(".a: missing"));
        assert!(d[1].contains(".b: unexpected"));
    }

    #[test]
    fn diff_is_bounded() {
        let e: Vec<i32> = (0..50).collect();
        let g: Vec<i32> = (100..150).collect();
        assert_eq!(diff(&json!(e), &json!(g)).len(), MAX_DIFFS);
    }
}
