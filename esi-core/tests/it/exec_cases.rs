//! Runs every public execution-side conformance case and asserts 0 failures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use esi_core::exec::conformance::{check_exec_case, ExecVerdict, EXEC_KINDS};

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
}

fn run(strict: bool) {
    let root = crate::corpus().join("cases");
    assert!(
        root.is_dir(),
        "conformance cases not found at {} — the exec case test needs /work/shared/conformance/cases",
        root.display()
    );
    let mut files = Vec::new();
    json_files(&root, &mut files);
    files.sort();
    let mut tally: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for f in files {
        if !f.components().any(|c| c.as_os_str() == "exec") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let case: serde_json::Value = serde_json::from_str(&text).unwrap();
        let kind = case
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_string();
        if !EXEC_KINDS.contains(&kind.as_str()) {
            continue;
        }
        let label = match case.get("subkind").and_then(|s| s.as_str()) {
            Some(s) => format!("{kind}/{s}"),
            None => kind.clone(),
        };
        let entry = tally.entry(label).or_default();
        match check_exec_case(&case, strict) {
            ExecVerdict::Pass => entry.0 += 1,
            ExecVerdict::Fail(msg) => {
                entry.1 += 1;
                failures.push(format!("{}: {msg}", f.display()));
            }
        }
    }
    let mode = if strict { "strict" } else { "default" };
    for (kind, (pass, fail)) in &tally {
        println!("[{mode}] {kind:<18} {pass:>4} passed {fail:>4} failed");
    }
    let total: usize = tally.values().map(|(p, f)| p + f).sum();
    println!("[{mode}] total {total} cases, {} failed", failures.len());
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(
        total > 0,
        "no execution cases found under {}",
        root.display()
    );
    assert!(
        failures.is_empty(),
        "{} execution cases failed",
        failures.len()
    );
}

#[test]
#[ignore = "needs the conformance corpus: ../shared/conformance beside the repo, or ESI_CONFORMANCE=<dir>"]
fn all_exec_cases_pass() {
    run(false);
}

#[test]
#[ignore = "needs the conformance corpus: ../shared/conformance beside the repo, or ESI_CONFORMANCE=<dir>"]
fn all_exec_cases_pass_strict() {
    run(true);
}
