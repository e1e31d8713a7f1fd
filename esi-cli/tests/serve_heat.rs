//! `esi serve --heat openstack --device-resources esi` against a real OpenStack Heat, on a real
//! etcd, driven by the `esi` client commands: the example world end to end (Heat's stacks
//! compared with what `esi plan` renders, the simulated routers with what it predicts, the
//! gateway deleted), Heat stopped mid-run, and a wrong Keystone password.
//!
//! Needs etcd (`bash .ci/services/10-etcd.sh start`: `ETCD_ENDPOINTS`), a noauth Heat
//! (`bash .ci/services/30-heat.sh start`: `HEAT_URL`) and, for the Keystone test, Keystone with
//! its Heat (`bash .ci/services/31-keystone-heat.sh start`: `KS_OS_*`). The Heat outage test
//! stops and restarts the `30-heat.sh` Heat (`CI_HEAT_DIR` as the script uses it).

mod common;

use common::{assert_all_final, free_port, repo, tagged};
use esi_core::store::Store;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests that use the `30-heat.sh` Heat run one at a time (one of them stops it).
static NOAUTH_HEAT: Mutex<()> = Mutex::new(());

const NETCONF_TYPE: &str = "OS::Contrail::NetconfNamedConfigs";
const MONITORING_TYPE: &str = "ESI::Monitoring::MonitoringTarget";
/// The Heat of the tests has no Contrail plug-ins: esi drives those types itself.
const ESI_TYPES: &str = "OS::Contrail::*";

fn need(var: &str, how: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{var} is not set: start the server with `{how}` and export what it prints"),
    }
}

fn etcd() -> String {
    need("ETCD_ENDPOINTS", "bash .ci/services/10-etcd.sh start")
}

fn heat_url() -> String {
    need("HEAT_URL", "bash .ci/services/30-heat.sh start")
        .trim_end_matches('/')
        .to_string()
}

struct System {
    ns: String,
    eps: String,
    world: PathBuf,
}

impl System {
    fn new(test: &str, world: PathBuf) -> Self {
        System {
            ns: format!("/esi-test-{}", tagged(test)),
            eps: etcd(),
            world,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_esi"));
        c.args(args)
            .current_dir(repo())
            .env("ESI_ETCD_ENDPOINTS", &self.eps)
            .env("ESI_ETCD_NAMESPACE", &self.ns)
            .env_remove("ESI_LOG");
        for k in [
            "OS_AUTH_URL",
            "OS_USERNAME",
            "OS_PASSWORD",
            "OS_PROJECT_NAME",
            "OS_PROJECT_ID",
            "OS_USER_DOMAIN_NAME",
            "OS_PROJECT_DOMAIN_NAME",
            "OS_REGION_NAME",
            "OS_APPLICATION_CREDENTIAL_ID",
            "OS_APPLICATION_CREDENTIAL_SECRET",
            "HEAT_URL",
        ] {
            c.env_remove(k);
        }
        c
    }

    fn esi(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("esi runs")
    }

    fn json(&self, args: &[&str]) -> Value {
        let o = self.esi(args);
        assert!(
            o.status.success(),
            "esi {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("JSON output")
    }

    fn world(&self) -> &str {
        self.world.to_str().expect("utf-8 path")
    }

    /// `esi serve` with OpenStack Heat in esi mode, simulated routers, the Contrail types
    /// driven by esi (unless `extra` holds the test's own marker `--no-contrail`); `env` adds
    /// variables (Keystone).
    fn serve(&self, name: &str, extra: &[&str], env: &[(&str, String)], log: &Path) -> Daemon {
        let mut args = vec![
            "serve",
            "--name",
            name,
            "--log-format",
            "json",
            "--heat",
            "openstack",
            "--device-resources",
            "esi",
            "--devices",
            "sim",
            "--jobs",
            "4",
        ];
        if !extra.contains(&"--no-contrail") {
            args.extend(["--esi-resource-types", ESI_TYPES]);
        }
        args.extend(extra.iter().filter(|a| **a != "--no-contrail"));
        let file = std::fs::File::create(log).expect("log file");
        let mut c = self.cmd(&args);
        c.env("ESI_LOG", "info");
        for (k, v) in env {
            c.env(k, v);
        }
        Daemon(
            c.stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("esi serve starts"),
        )
    }

    /// The stored state document of a resource's stack (`heat_stacks`), as the worker wrote it.
    fn stack_state(&self, plural: &str, id: &str) -> Option<Value> {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let config = esi_etcd::EtcdConfig::new(self.eps.split(',').map(str::to_string))
                .with_namespace(self.ns.clone());
            let store = esi_etcd::EtcdStore::connect(config)
                .await
                .expect("etcd connects");
            let kv = store
                .get(&format!("/esi-worker/heat_stacks/v2.0/{plural}/{id}"))
                .await
                .expect("etcd get")?;
            serde_json::from_str(&kv.value).ok()
        })
    }
}

/// A daemon child that is killed (and reaped) when the test ends, even on a panic.
struct Daemon(Child);

impl Daemon {
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("esi-serve-heat-{}", tagged(name)));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

fn get_json(url: &str) -> (u16, Value) {
    let r = http().get(url).send().expect("GET");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn wait_healthy(listen: &str) {
    let t0 = Instant::now();
    loop {
        if let Ok(r) = http().get(format!("http://{listen}/healthz")).send() {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "esi serve not healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The stack `name` in Heat (following the name redirect), if it exists and is not deleted.
fn heat_stack(heat: &str, name: &str) -> Option<Value> {
    let (status, body) = get_json(&format!("{heat}/stacks/{name}"));
    match status {
        404 => None,
        200 => {
            let s = body.get("stack").cloned().expect("stack body");
            (s["stack_status"] != "DELETE_COMPLETE").then_some(s)
        }
        other => panic!("GET stacks/{name}: {other} {body}"),
    }
}

/// Deletes stacks left over from an earlier run (esi's create is idempotent by name, but a
/// clean start keeps the comparison honest).
fn purge(heat: &str, names: &[String]) {
    for name in names {
        if let Some(s) = heat_stack(heat, name) {
            let id = s["id"].as_str().unwrap_or_default();
            let _ = http().delete(format!("{heat}/stacks/{name}/{id}")).send();
        }
    }
    let t0 = Instant::now();
    while names.iter().any(|n| heat_stack(heat, n).is_some()) {
        assert!(t0.elapsed() < Duration::from_secs(120), "purge");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A copy of the example world whose resource ids start with `tag` (4 hex digits), so that
/// its stack names differ from the example's and from other tests'.
fn world_copy(tag: &str) -> PathBuf {
    let src = repo().join("examples/vpn-gateway");
    let plan = plan_json(&src, None);
    let ids: Vec<String> = plan["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["resource_id"].as_str().map(str::to_string))
        .collect();
    let dst = tempdir(&format!("world-{tag}"));
    copy_dir(&src, &dst, &|text: String| {
        ids.iter()
            .fold(text, |t, id| t.replace(id, &format!("{tag}{}", &id[4..])))
    });
    dst
}

fn copy_dir(src: &Path, dst: &Path, edit: &dyn Fn(String) -> String) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for e in std::fs::read_dir(src).expect("read_dir").flatten() {
        let p = e.path();
        let to = dst.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &to, edit);
        } else {
            let text = std::fs::read_to_string(&p).expect("read");
            std::fs::write(&to, edit(text)).expect("write");
        }
    }
}

fn plan_json(world: &Path, changes: Option<&Path>) -> Value {
    let mut c = Command::new(env!("CARGO_BIN_EXE_esi"));
    c.arg("plan").arg(world).args(["--output", "json"]);
    if let Some(ch) = changes {
        c.arg("--changes").arg(ch);
    }
    let o = c.env_remove("ESI_LOG").output().expect("esi plan");
    assert!(
        o.status.success(),
        "esi plan: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("plan JSON")
}

/// Every stack the plan renders: name → the plan's stack section.
fn planned_stacks(plan: &Value) -> BTreeMap<String, (String, String, Value)> {
    let mut out = BTreeMap::new();
    for r in plan["resources"].as_array().expect("resources") {
        for j in r["jobs"].as_array().into_iter().flatten() {
            if let Some(st) = j.get("stack").filter(|s| s.is_object()) {
                let name = st["stack_name"].as_str().expect("stack_name").to_string();
                out.insert(
                    name,
                    (
                        r["resource_type"].as_str().unwrap_or_default().to_string(),
                        r["resource_id"].as_str().unwrap_or_default().to_string(),
                        st.clone(),
                    ),
                );
            }
        }
    }
    out
}

fn plural(ty: &str) -> String {
    format!("{ty}s")
}

fn outputs_of(state: &Value) -> BTreeMap<String, Value> {
    state["output"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["output_key"].as_str().unwrap_or_default().to_string(),
                o["output_value"].clone(),
            )
        })
        .collect()
}

/// The plan's text with each `(known after apply: TYPE/ID output KEY)` replaced by the value
/// esi recorded for that output (as Heat's parameter view shows a value: text as is, others
/// as JSON).
fn fill_known_after_apply(sys: &System, text: &str) -> String {
    const OPEN: &str = "(known after apply: ";
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i + OPEN.len()..];
        let end = after.find(')').expect("closing parenthesis");
        let what = &after[..end];
        let (res, key) = what.split_once(" output ").expect("TYPE/ID output KEY");
        let (ty, id) = res.split_once('/').expect("TYPE/ID");
        let state = sys
            .stack_state(&plural(ty), id)
            .unwrap_or_else(|| panic!("no state of {res}"));
        let v = outputs_of(&state)
            .remove(key)
            .unwrap_or_else(|| panic!("{res} has no output {key}"));
        out.push_str(&match v {
            Value::String(s) => s,
            other => other.to_string(),
        });
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn is_device(t: &str) -> bool {
    t == NETCONF_TYPE || t == MONITORING_TYPE || t.starts_with("OS::Contrail::")
}

/// Checks one stack in Heat against the plan's rendering: parameters, template, outputs.
fn check_stack(sys: &System, heat: &str, name: &str, planned: &(String, String, Value)) {
    let (ty, id, st) = planned;
    let stack = heat_stack(heat, name).unwrap_or_else(|| panic!("stack {name} is not in Heat"));
    assert_eq!(stack["stack_status"], "CREATE_COMPLETE", "{name}: {stack}");
    assert_eq!(stack["timeout_mins"], st["timeout_mins"], "{name}");
    assert_eq!(stack["disable_rollback"], st["disable_rollback"], "{name}");
    // parameters: Heat's view (text, hidden ones as ******) equals the plan's `heat` column
    let got: BTreeMap<String, Value> = stack["parameters"]
        .as_object()
        .expect("parameters")
        .iter()
        .filter(|(k, _)| !k.starts_with("OS::"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let want: BTreeMap<String, Value> = st["parameters"]
        .as_array()
        .expect("planned parameters")
        .iter()
        .map(|p| {
            let heat = match &p["heat"] {
                Value::String(s) => Value::String(fill_known_after_apply(sys, s)),
                other => other.clone(),
            };
            (p["name"].as_str().unwrap_or_default().to_string(), heat)
        })
        .collect();
    let rendered = fill_known_after_apply(sys, st["template"].as_str().expect("template"));
    let original = esi_core::exec::yaml::parse_yaml(&rendered).expect("YAML");
    for (k, v) in &got {
        match want.get(k) {
            Some(w) => assert_eq!(v, w, "parameter {k} of {name}"),
            // not sent: Heat shows the template's default
            None => {
                let default = &original["parameters"][k]["default"];
                assert!(!default.is_null(), "{name}: {k} = {v} was never sent");
                if let Value::String(d) = default {
                    assert_eq!(v, d, "{name}: default of {k}");
                }
            }
        }
    }
    assert!(
        want.keys().all(|k| got.contains_key(k)),
        "parameters of {name}: {got:?} vs {want:?}"
    );
    // template: what esi sent is the plan's rendering with esi's stand-ins
    let stack_id = stack["id"].as_str().expect("id");
    let (status, template) = get_json(&format!("{heat}/stacks/{name}/{stack_id}/template"));
    assert_eq!(status, 200, "{template}");
    let expected = esi_heat::stand_in_template(name, &rendered, &is_device).expect("rewrites");
    assert_eq!(template, expected, "template of {name}");
    // outputs: what Heat resolved is what esi recorded; what esi resolved (reads of esi-driven
    // resources) is held in Heat as the deferred expression of the template's output
    let state = sys
        .stack_state(&plural(ty), id)
        .unwrap_or_else(|| panic!("no state of {ty}/{id}"));
    assert_eq!(state["stack_status"], "CREATE_COMPLETE", "{state}");
    let recorded = outputs_of(&state);
    let in_heat: BTreeMap<String, Value> = stack["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .filter(|o| {
            !o["output_key"]
                .as_str()
                .unwrap_or_default()
                .starts_with(esi_heat::DEVICE_OUTPUT_PREFIX)
        })
        .map(|o| {
            assert!(o["output_error"].is_null(), "{name}: {o}");
            (
                o["output_key"].as_str().unwrap_or_default().to_string(),
                o["output_value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        recorded.keys().collect::<Vec<_>>(),
        in_heat.keys().collect::<Vec<_>>(),
        "output keys of {name}"
    );
    for (k, v) in &in_heat {
        match v
            .as_str()
            .and_then(|s| s.strip_prefix(esi_heat::DEFERRED_PREFIX))
        {
            Some(expr) => {
                let expr: Value = serde_json::from_str(expr).expect("deferred JSON");
                assert_eq!(expr, original["outputs"][k]["value"], "{name}.{k}");
                assert_eq!(v, &expected["outputs"][k]["value"], "{name}.{k}");
                let mine = &recorded[k];
                assert!(
                    !mine.is_null() && !mine.to_string().contains(esi_heat::DEFERRED_PREFIX),
                    "{name}.{k}: {mine}"
                );
            }
            None => assert_eq!(&recorded[k], v, "output {k} of {name}"),
        }
    }
}

/// Every simulated router's configuration as `set` lines (secrets masked as `esi plan` masks
/// them), from the daemon's `/devices`.
fn router_lines(listen: &str) -> BTreeMap<String, BTreeSet<String>> {
    let (status, all) = get_json(&format!("http://{listen}/devices"));
    assert_eq!(status, 200, "{all}");
    all.as_object()
        .expect("devices")
        .iter()
        .map(|(name, r)| {
            let text = r["configuration"].as_str().expect("configuration");
            let lines = esi_core::plan::changes::config_diff("", text)
                .into_iter()
                .map(|l| l.trim_start_matches("+ ").to_string())
                .collect();
            (name.clone(), lines)
        })
        .collect()
}

/// The configuration `esi plan --changes` predicts per router after phases `0..=last`.
fn predicted_lines(plan: &Value, last: usize) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for phase in plan["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .take(last + 1)
    {
        for (router, lines) in phase["devices"].as_object().into_iter().flatten() {
            let set = out.entry(router.clone()).or_default();
            for l in lines.as_array().into_iter().flatten() {
                let l = l.as_str().unwrap_or_default();
                if let Some(x) = l.strip_prefix("- ") {
                    set.remove(x);
                } else if let Some(x) = l.strip_prefix("+ ") {
                    set.insert(x.to_string());
                }
            }
        }
    }
    out.retain(|_, v| !v.is_empty());
    out
}

fn daemon_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
#[ignore = "needs etcd and heat: bash .ci/services/10-etcd.sh start; bash .ci/services/30-heat.sh start"]
fn example_world_through_openstack_heat_matches_the_plan_and_deletes_cleanly() {
    let _heat_lock = NOAUTH_HEAT.lock().unwrap_or_else(|p| p.into_inner());
    let heat = heat_url();
    let world = repo().join("examples/vpn-gateway");
    let sys = System::new("heat-world", world.clone());
    let plan = plan_json(&world, None);
    let stacks = planned_stacks(&plan);
    assert_eq!(stacks.len(), 10, "{:?}", stacks.keys());
    let names: Vec<String> = stacks.keys().cloned().collect();
    purge(&heat, &names);

    let dir = tempdir("world");
    let log = dir.join("serve.log");
    let listen = format!("127.0.0.1:{}", free_port());
    let serve = sys.serve(
        "heat-world",
        &["--heat-url", &heat, "--listen", &listen],
        &[],
        &log,
    );
    wait_healthy(&listen);

    let t0 = Instant::now();
    let out = sys.esi(&["apply", "-f", sys.world(), "--wait", "--timeout", "240"]);
    assert!(
        out.status.success(),
        "apply --wait: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        daemon_log(&log)
    );
    eprintln!(
        "apply --wait of the example world through OpenStack Heat took {:?}",
        t0.elapsed()
    );
    assert_all_final(&sys.json(&["get", "--output", "json"]), 15);

    // Heat holds exactly the stacks esi rendered.
    for (name, planned) in &stacks {
        check_stack(&sys, &heat, name, planned);
    }

    // The routers hold what `esi plan` predicts, and then lose exactly the gateway's part.
    let gateway = [
        "port/d50eae16-9e42-4036-b320-b0c24b58f751",
        "gw_interface/6e9a106b-2fe2-4225-8210-60790cba2de4",
        "vpn_gateway/b68f4fe2-48a4-480e-b752-8379c2680db3",
    ];
    let changes = dir.join("delete-gateway.yaml");
    let text: String = gateway
        .iter()
        .map(|r| {
            let (ty, id) = r.split_once('/').expect("TYPE/ID");
            format!("- {{op: delete, type: {ty}, id: {id}}}\n")
        })
        .collect();
    std::fs::write(&changes, text).expect("changes file");
    let phases = plan_json(&world, Some(&changes));
    let loaded = predicted_lines(&phases, 0);
    assert_eq!(loaded.len(), 2, "two routers: {loaded:?}");
    assert_eq!(
        router_lines(&listen),
        loaded,
        "router configuration after apply"
    );

    for r in gateway {
        let del = sys.esi(&["delete", r, "--wait", "--timeout", "120"]);
        assert!(
            del.status.success(),
            "delete {r}: {}\n{}",
            String::from_utf8_lossy(&del.stderr),
            daemon_log(&log)
        );
    }
    let after = predicted_lines(&phases, gateway.len());
    let routers = router_lines(&listen);
    assert_eq!(
        routers, after,
        "router configuration after the gateway's deletion"
    );
    for lines in routers.values() {
        assert!(
            lines
                .iter()
                .all(|l| !l.contains("VRF-example-corp-osaka") && !l.contains("unit 2101")),
            "gateway statements left: {lines:?}"
        );
    }
    for name in [
        "port_d50eae16-9e42-4036-b320-b0c24b58f751",
        "gw_interface_6e9a106b-2fe2-4225-8210-60790cba2de4",
        "vpn_gateway_b68f4fe2-48a4-480e-b752-8379c2680db3",
    ] {
        assert!(heat_stack(&heat, name).is_none(), "{name} is still in Heat");
    }
    assert_all_final(&sys.json(&["get", "--output", "json"]), 12);
    assert!(sys
        .json(&["jobs", "--output", "json"])
        .as_array()
        .is_some_and(Vec::is_empty));

    serve.stop();
    purge(&heat, &names);
}

#[test]
#[ignore = "needs etcd and heat: bash .ci/services/10-etcd.sh start; bash .ci/services/30-heat.sh start"]
fn heat_stopped_mid_run_jobs_wait_and_resume() {
    let _heat_lock = NOAUTH_HEAT.lock().unwrap_or_else(|p| p.into_inner());
    let heat = heat_url();
    let world = world_copy("7e57");
    let sys = System::new("heat-outage", world.clone());
    let names: Vec<String> = planned_stacks(&plan_json(&world, None))
        .into_keys()
        .collect();
    purge(&heat, &names);
    let dir = tempdir("outage");
    let log = dir.join("serve.log");
    let listen = format!("127.0.0.1:{}", free_port());
    let serve = sys.serve(
        "heat-outage",
        &["--heat-url", &heat, "--listen", &listen],
        &[],
        &log,
    );
    wait_healthy(&listen);
    let script = repo().join(".ci/services/30-heat.sh");

    let out = sys.esi(&["apply", "-f", sys.world()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // stop Heat while the first stacks are in flight
    let t0 = Instant::now();
    while names.iter().all(|n| heat_stack(&heat, n).is_none()) {
        assert!(t0.elapsed() < Duration::from_secs(60), "no stack appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    // a crash (SIGKILL): stacks the engine was working on stay *_IN_PROGRESS in its database
    let stop = Command::new("bash")
        .arg(&script)
        .arg("stop-heat")
        .env("FORCE", "1")
        .output()
        .expect("stop-heat");
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    // meanwhile nothing failed: the jobs wait
    let rows = sys.json(&["get", "--output", "json"]);
    for r in rows.as_array().expect("rows") {
        let ws = r["worker_state"].as_str().unwrap_or_default();
        assert!(!ws.ends_with("_ERROR"), "failed while Heat was down: {r}");
    }
    let start = Command::new("bash")
        .arg(&script)
        .arg("start")
        .output()
        .expect("start heat");
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    eprintln!("Heat was down for {:?}", stopped.elapsed());

    let t0 = Instant::now();
    loop {
        let rows = sys.json(&["get", "--output", "json"]);
        let done = rows.as_array().is_some_and(|r| {
            r.len() == 15
                && r.iter().all(|x| {
                    x["jobs"] == 0
                        && x["state_version"] == x["version"]
                        && x["worker_state"]
                            .as_str()
                            .is_some_and(|w| w.ends_with("COMPLETED") || w == "READ_COMPLETE")
                })
        });
        if done {
            assert_all_final(&rows, 15);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "not final after Heat came back: {rows}\n{}",
            daemon_log(&log)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "every resource final {:?} after Heat came back",
        t0.elapsed()
    );
    let text = daemon_log(&log);
    assert!(
        text.contains("heat does not answer: waiting for it"),
        "no job was in flight while Heat was down:\n{text}"
    );
    eprintln!(
        "{} stack creates, {} job retries",
        text.matches("heat stack create").count(),
        text.matches("will retry").count()
    );
    for n in &names {
        let s = heat_stack(&heat, n).unwrap_or_else(|| panic!("{n} missing"));
        let status = s["stack_status"].as_str().unwrap_or_default();
        assert!(status.ends_with("_COMPLETE"), "{n}: {status}");
    }
    // nothing lost: the routers hold the whole predicted configuration
    assert_eq!(
        router_lines(&listen),
        predicted_lines(&plan_json(&world, Some(&empty_changes(&dir))), 0)
    );
    serve.stop();
    purge(&heat, &names);
}

fn empty_changes(dir: &Path) -> PathBuf {
    let p = dir.join("no-changes.yaml");
    std::fs::write(&p, "[]\n").expect("write");
    p
}

#[test]
#[ignore = "needs etcd and keystone+heat: bash .ci/services/10-etcd.sh start; bash .ci/services/31-keystone-heat.sh start"]
fn a_wrong_keystone_password_is_rejected_on_the_resource_without_a_retry_storm() {
    let ks = need(
        "KS_OS_AUTH_URL",
        "bash .ci/services/31-keystone-heat.sh start",
    );
    let var = |k: &str| {
        need(
            &format!("KS_{k}"),
            "bash .ci/services/31-keystone-heat.sh start",
        )
    };
    let keystone_log =
        PathBuf::from(std::env::var("CI_KS_DIR").unwrap_or_else(|_| "/tmp/esi-ci-ks/state".into()))
            .join("keystone.log");
    let failures = || {
        std::fs::read_to_string(&keystone_log)
            .unwrap_or_else(|e| panic!("{}: {e}", keystone_log.display()))
            .matches("Authorization failed")
            .count()
    };
    let before = failures();
    let world = world_copy("bad0");
    let sys = System::new("keystone-wrong", world);
    let dir = tempdir("keystone");
    let log = dir.join("serve.log");
    let wrong = "not-the-admin-password-8y2";
    let env = [
        ("OS_AUTH_URL", ks),
        ("OS_USERNAME", var("OS_USERNAME")),
        ("OS_PASSWORD", wrong.to_string()),
        ("OS_PROJECT_NAME", var("OS_PROJECT_NAME")),
        ("OS_USER_DOMAIN_NAME", var("OS_USER_DOMAIN_NAME")),
        ("OS_PROJECT_DOMAIN_NAME", var("OS_PROJECT_DOMAIN_NAME")),
        ("OS_REGION_NAME", var("OS_REGION_NAME")),
    ];
    let serve = sys.serve("keystone-wrong", &[], &env, &log);

    let out = sys.esi(&["apply", "-f", sys.world(), "--wait", "--timeout", "120"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "apply --wait exits 1 on *_ERROR"
    );
    // a little more time: any retry would show now
    std::thread::sleep(Duration::from_secs(5));
    let rows = sys.json(&["get", "--output", "json"]);
    let rows = rows.as_array().expect("rows");
    let mut rejected = 0;
    for r in rows {
        assert_eq!(r["jobs"], 0, "{r}");
        let ws = r["worker_state"].as_str().unwrap_or_default();
        if ws == "READ_COMPLETE" {
            continue;
        }
        assert_eq!(ws, "CREATE_ERROR", "{r}");
        let e = r["error"].as_str().unwrap_or_default();
        assert!(e.contains("keystone") && e.contains("401"), "{e}");
        if !e.starts_with("dependency") {
            assert!(e.starts_with("stack `") && e.contains("rejected"), "{e}");
            rejected += 1;
        }
        assert!(!e.contains(wrong), "the password leaked: {e}");
    }
    // the three resources without dependencies (two edge routers, the network) tried once each
    assert_eq!(rejected, 3, "{rows:?}");
    let attempts = failures() - before;
    eprintln!("wrong password: {attempts} failed Keystone authentications for {rejected} jobs");
    assert!(
        (1..=rejected).contains(&attempts),
        "{attempts} Keystone attempts for {rejected} rejected jobs"
    );
    let text = daemon_log(&log);
    assert!(!text.contains(wrong), "the password is in the daemon's log");
    assert!(
        !text.contains("will retry"),
        "a rejected job was retried:\n{text}"
    );
    serve.stop();
}

/// Waits until every resource of the world has no job left; returns `esi get`'s rows.
fn wait_settled(sys: &System, n: usize, log: &Path) -> Vec<Value> {
    let t0 = Instant::now();
    loop {
        let rows = sys.json(&["get", "--output", "json"]);
        let rows = rows.as_array().cloned().unwrap_or_default();
        if rows.len() == n
            && rows
                .iter()
                .all(|x| x["jobs"] == 0 && x["state_version"] == x["version"])
        {
            return rows;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "not settled: {rows:?}\n{}",
            daemon_log(log)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn row<'a>(rows: &'a [Value], ty: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in {rows:?}"))
}

#[test]
#[ignore = "needs etcd and heat: bash .ci/services/10-etcd.sh start; bash .ci/services/30-heat.sh start"]
fn a_stack_heat_fails_puts_heats_reason_on_the_resource() {
    let _heat_lock = NOAUTH_HEAT.lock().unwrap_or_else(|p| p.into_inner());
    let heat = heat_url();
    let world = world_copy("fa11");
    // the network stack gets a resource Heat fails
    let path = world.join("templates/network.yaml");
    let text = std::fs::read_to_string(&path).expect("network template");
    let text = text.replacen(
        "      resources:\n",
        "      resources:\n        boom:\n          type: OS::Heat::TestResource\n          properties:\n            fail: true\n",
        1,
    );
    std::fs::write(&path, text).expect("write");
    let sys = System::new("heat-fails", world.clone());
    let names: Vec<String> = planned_stacks(&plan_json(&world, None))
        .into_keys()
        .collect();
    purge(&heat, &names);
    let dir = tempdir("fails");
    let log = dir.join("serve.log");
    let serve = sys.serve("heat-fails", &["--heat-url", &heat], &[], &log);
    let out = sys.esi(&["apply", "-f", sys.world()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = wait_settled(&sys, 15, &log);
    let network = row(&rows, "network");
    assert_eq!(network["worker_state"], "CREATE_ERROR", "{network}");
    // the job's retries update the failed stack: the last attempt is an UPDATE_FAILED
    let state = network["orchestration_state"].as_str().unwrap_or_default();
    assert!(
        state == "CREATE_FAILED" || state == "UPDATE_FAILED",
        "{network}"
    );
    let e = network["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("resources.boom") && e.contains("Test Resource failed"),
        "Heat's reason on the resource: {e}"
    );
    // Heat holds the failed stack with the same reason
    let name = names
        .iter()
        .find(|n| n.starts_with("network_"))
        .expect("network stack");
    let stack = heat_stack(&heat, name).expect("in Heat");
    assert_eq!(stack["stack_status"], state);
    let reason = stack["stack_status_reason"].as_str().unwrap_or_default();
    assert!(e.contains(reason), "{e} vs {reason}");
    // what does not depend on the network is complete
    assert_eq!(
        row(&rows, "vpn_gateway")["worker_state"],
        "CREATE_COMPLETED"
    );
    assert!(row(&rows, "subnet")["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("dependency")));
    serve.stop();
    purge(&heat, &names);
}

#[test]
#[ignore = "needs etcd and heat: bash .ci/services/10-etcd.sh start; bash .ci/services/30-heat.sh start"]
fn a_template_heat_rejects_is_rejected_on_the_resource_without_a_retry() {
    let _heat_lock = NOAUTH_HEAT.lock().unwrap_or_else(|p| p.into_inner());
    let heat = heat_url();
    let world = world_copy("4000");
    let sys = System::new("heat-400", world.clone());
    let names: Vec<String> = planned_stacks(&plan_json(&world, None))
        .into_keys()
        .collect();
    purge(&heat, &names);
    let dir = tempdir("rejects");
    let log = dir.join("serve.log");
    // without the Contrail types driven by esi, this Heat refuses the network template (400)
    let serve = sys.serve(
        "heat-400",
        &["--heat-url", &heat, "--no-contrail"],
        &[],
        &log,
    );
    let out = sys.esi(&["apply", "-f", sys.world()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = wait_settled(&sys, 15, &log);
    let network = row(&rows, "network");
    assert_eq!(network["worker_state"], "CREATE_ERROR", "{network}");
    let e = network["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("rejected") && e.contains("400") && e.contains("OS::Contrail::VirtualNetwork"),
        "{e}"
    );
    let name = names
        .iter()
        .find(|n| n.starts_with("network_"))
        .expect("network stack");
    assert!(
        heat_stack(&heat, name).is_none(),
        "no stack for a rejected template"
    );
    // one attempt, no retry
    let text = daemon_log(&log);
    let creates = text
        .lines()
        .filter(|l| l.contains("heat stack create") && l.contains(name.as_str()))
        .count();
    assert_eq!(creates, 1, "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.contains("will retry") && l.contains("network")),
        "{text}"
    );
    // the monitoring and NETCONF resources are esi's even so: the routers are configured
    assert_eq!(
        row(&rows, "vpn_gateway")["worker_state"],
        "CREATE_COMPLETED"
    );
    serve.stop();
    purge(&heat, &names);
}

#[test]
#[ignore = "needs etcd and keystone+heat: bash .ci/services/10-etcd.sh start; bash .ci/services/31-keystone-heat.sh start"]
fn keystone_password_login_with_tokens_expiring_mid_run() {
    let ks = need(
        "KS_OS_AUTH_URL",
        "bash .ci/services/31-keystone-heat.sh start",
    );
    let var = |k: &str| {
        need(
            &format!("KS_{k}"),
            "bash .ci/services/31-keystone-heat.sh start",
        )
    };
    let lifetime: u64 = var("TOKEN_EXPIRATION").parse().expect("seconds");
    let world = world_copy("a0c5");
    let sys = System::new("keystone-ok", world.clone());
    let dir = tempdir("keystone-ok");
    let log = dir.join("serve.log");
    let password = var("OS_PASSWORD");
    let env = [
        ("OS_AUTH_URL", ks),
        ("OS_USERNAME", var("OS_USERNAME")),
        ("OS_PASSWORD", password.clone()),
        ("OS_PROJECT_NAME", var("OS_PROJECT_NAME")),
        ("OS_USER_DOMAIN_NAME", var("OS_USER_DOMAIN_NAME")),
        ("OS_PROJECT_DOMAIN_NAME", var("OS_PROJECT_DOMAIN_NAME")),
        ("OS_REGION_NAME", var("OS_REGION_NAME")),
        ("ESI_LOG", "info,esi_heat=debug".to_string()),
    ];
    // Heat's endpoint from the token's catalog (no --heat-url)
    let serve = sys.serve("keystone-ok", &[], &env, &log);
    let t0 = Instant::now();
    let out = sys.esi(&["apply", "-f", sys.world(), "--wait", "--timeout", "400"]);
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        daemon_log(&log)
    );
    assert_all_final(&sys.json(&["get", "--output", "json"]), 15);
    let text = daemon_log(&log);
    let renewals = text.matches("renewing the keystone token").count();
    eprintln!("Keystone Heat: world final in {took:?} with {renewals} token renewals (tokens live {lifetime} s)");
    if took > Duration::from_secs(lifetime) {
        assert!(
            renewals >= 1,
            "a run longer than a token's life renewed none"
        );
    }
    assert!(
        !text.contains("will retry"),
        "a job failed on the way:\n{text}"
    );
    assert!(!text.contains(&password), "the password is in the log");
    // (the stacks stay in that Heat: a later run updates them, esi's create being idempotent
    // by stack name)
    serve.stop();
}

#[test]
fn predicted_lines_apply_each_phase() {
    let plan = json!({"phases": [
        {"devices": {"r1": ["+ set a", "+ set b"]}},
        {"devices": {"r1": ["- set a", "+ set c"]}},
        {"devices": {"r1": ["- set b", "- set c"]}},
    ]});
    assert_eq!(
        predicted_lines(&plan, 1)["r1"],
        ["set b", "set c"].iter().map(|s| s.to_string()).collect()
    );
    assert!(predicted_lines(&plan, 2).is_empty());
}
