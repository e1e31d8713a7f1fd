//! Guard for unseen cases: every heat template of every shared world
//! compiles. Rendering with an empty context is informative only: Jinja2
//! also fails on `undefined + 3` / attributes of undefined, and some
//! templates are only YAML once their variables are filled in.

use esi_core::exec::render::{check_syntax, render_template};
use esi_core::exec::yaml::parse_yaml;

#[test]
#[ignore = "needs the conformance corpus: ../shared/conformance beside the repo, or ESI_CONFORMANCE=<dir>"]
fn every_world_template_compiles() {
    let dir = crate::corpus().join("worlds");
    assert!(dir.is_dir(), "worlds not found at {}", dir.display());
    let mut n = 0;
    let mut rendered = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let world: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(templates) = world.get("heat_templates").and_then(|t| t.as_object()) else {
            continue;
        };
        for (name, t) in templates {
            let Some(src) = t.get("template_file").and_then(|s| s.as_str()) else {
                continue;
            };
            n += 1;
            if let Err(e) = check_syntax(name, src) {
                failures.push(format!("{}:{name}: {e}", path.display()));
                continue;
            }
            if let Ok(text) = render_template(name, src, &serde_json::Map::new()) {
                if parse_yaml(&text).is_ok() {
                    rendered += 1;
                }
            }
        }
    }
    println!("{n} templates compiled, {rendered} render to YAML with an empty context");
    assert!(n > 0 && rendered > n / 2);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
