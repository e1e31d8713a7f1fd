//! The checker must not be vacuous: mutated expectations fail, and the
//! corpus' `unexplained` cases (not reproducible by design) fail too.

use std::path::{Path, PathBuf};

use esi_core::exec::conformance::{check_exec_case, ExecVerdict};
use serde_json::{json, Value};

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
    {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
}

fn load(sub: &str) -> Vec<(PathBuf, Value)> {
    let root = crate::corpus().join(sub);
    assert!(root.is_dir(), "missing {}", root.display());
    let mut files = Vec::new();
    json_files(&root, &mut files);
    files
        .into_iter()
        .filter(|f| f.components().any(|c| c.as_os_str() == "exec"))
        .map(|f| {
            let v = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            (f, v)
        })
        .collect()
}

fn mutate(case: &mut Value) -> bool {
    let kind = case["kind"].as_str().unwrap_or("").to_string();
    let sub = case["subkind"].as_str().unwrap_or("").to_string();
    let e = &mut case["expected"];
    match (kind.as_str(), sub.as_str()) {
        ("stack", _) => {
            if let Some(Value::Object(p)) = e.get_mut("parameters") {
                if let Some((_, v)) = p.iter_mut().next() {
                    *v = json!("<mutated>");
                    return true;
                }
            }
            if e.get("template").is_some() {
                e["template"]["mutated"] = json!(1);
            } else {
                e["stack_name"] = json!("other");
            }
        }
        ("state", _) => {
            let w = e["writes"].as_array_mut().unwrap();
            let last = w.len() - 2;
            w[last]["value"]["version"] = json!(999);
        }
        ("netconf", _) => e["set_lines"].as_array_mut().unwrap().push(json!("x y z")),
        ("monitor", "request") => e["request_body"]["extra"] = json!(1),
        ("monitor", "response") => e["response"]["link"] = json!("elsewhere"),
        ("monitor", "sync") => e["writes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"op": "delete", "key": "/k"})),
        _ => return false,
    }
    true
}

#[test]
#[ignore = "needs the conformance corpus: ../shared/conformance beside the repo, or ESI_CONFORMANCE=<dir>"]
fn mutated_expectations_fail() {
    let mut n = 0;
    for (f, mut case) in load("cases") {
        if !mutate(&mut case) {
            continue;
        }
        n += 1;
        assert!(
            matches!(check_exec_case(&case, false), ExecVerdict::Fail(_)),
            "mutation of {} not detected",
            f.display()
        );
    }
    assert!(n > 300, "only {n} cases mutated");
}

#[test]
#[ignore = "needs the conformance corpus: ../shared/conformance beside the repo, or ESI_CONFORMANCE=<dir>"]
fn strict_mode_checks_template_text() {
    let mut n = 0;
    for (f, mut case) in load("cases") {
        if case["kind"] != "stack" || case["expected"].get("template_text").is_none() {
            continue;
        }
        let t = case["expected"]["template_text"]
            .as_str()
            .unwrap()
            .to_string();
        case["expected"]["template_text"] = json!(format!("{t} "));
        assert_eq!(
            check_exec_case(&case, false),
            ExecVerdict::Pass,
            "{}",
            f.display()
        );
        assert!(
            matches!(check_exec_case(&case, true), ExecVerdict::Fail(_)),
            "{}",
            f.display()
        );
        n += 1;
    }
    assert!(n > 100);
}

#[test]
#[ignore = "needs the conformance corpus: ../shared/conformance beside the repo, or ESI_CONFORMANCE=<dir>"]
fn unexplained_cases_are_not_reproduced() {
    let cases = load("unexplained");
    assert!(!cases.is_empty());
    for (f, wrapper) in cases {
        // unexplained files wrap the case with the reason it is not reproduced
        let case = wrapper.get("case").unwrap_or(&wrapper);
        let v = check_exec_case(case, false);
        println!("{}: {:?}", f.display(), v);
        match v {
            ExecVerdict::Fail(msg) => {
                assert!(!msg.starts_with("malformed"), "{}: {msg}", f.display())
            }
            ExecVerdict::Pass => panic!("{} unexpectedly passes", f.display()),
        }
    }
}
