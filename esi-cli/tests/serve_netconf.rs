//! `esi serve --devices netconf` on a real etcd against `esi netsim` serving the example world's
//! routers, reached through `--device-map` (the lines `esi netsim` prints: each router's
//! management address mapped to its loopback port, its host key pinned):
//!
//! * the routers end with exactly the configuration `esi plan` predicts, read back over
//!   NETCONF; deleting the gateway removes its statements and nothing else;
//! * with `--confirmed-commit`, a touched interface that is down fails the health check: the
//!   router keeps its previous configuration and the resource records the check;
//! * host-key mismatch, wrong password, a dead port, a router that never answers an RPC and a
//!   `load-configuration` syntax error each end in a typed error recorded on the resource,
//!   within the timeout, with no lock left held.
//!
//! Needs etcd: `bash .ci/services/10-etcd.sh start` prints `ETCD_ENDPOINTS`. Each test works in
//! its own key namespaces; `esi netsim` is started by the test on free loopback ports.

mod common;

use common::{repo, tagged};
use esi_core::device::{Credentials, DeviceAddress, DeviceRegistry, JunosConfig};
use esi_core::secret::Secret;
use esi_netconf::{
    Auth, DeviceMap, HostKeyPolicy, NetconfOptions, NetconfRegistry, Session, SessionOptions,
    Target,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NEEDS: &str =
    "ETCD_ENDPOINTS is not set: start etcd with `bash .ci/services/10-etcd.sh start` \
                     and export the ETCD_ENDPOINTS it prints";

const WORLD: &str = "examples/vpn-gateway";
const USER: &str = "esi-netconf";
/// The example world's routers and the passwords its edge_router resources give them.
const ROUTERS: [(&str, &str); 2] = [
    ("192.0.2.11", "example-secret-1"),
    ("192.0.2.12", "example-secret-2"),
];
const HA_ROUTER: &str = "ha_router/7c374bb1-eb56-4fa0-9007-bd7d5f999034";
const HA_INTERFACE: &str = "ha_interface/930df41e-6ec3-4579-b5a5-2c164633ead2";
const GATEWAY: &str = "vpn_gateway/b68f4fe2-48a4-480e-b752-8379c2680db3";

fn endpoints() -> String {
    std::env::var("ETCD_ENDPOINTS")
        .ok()
        .filter(|s| !s.is_empty())
        .expect(NEEDS)
}

fn unique(test: &str) -> String {
    tagged(&format!("esi-netconf-{test}"))
}

fn tempdir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(test));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A child process killed (and reaped) when the test ends, even on a panic.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// One line of `esi netsim`'s listing.
#[derive(Clone, Debug)]
struct Served {
    name: String,
    host: String,
    port: u16,
    fingerprint: String,
}

impl Served {
    fn line(&self) -> String {
        format!(
            "{} {}:{} {}\n",
            self.name, self.host, self.port, self.fingerprint
        )
    }
}

/// `esi netsim WORLD --listen 127.0.0.1:0 EXTRA…`, once it has printed its routers.
fn netsim(world: &Path, extra: &[&str]) -> (Proc, Vec<Served>) {
    let mut args = vec![
        "netsim".to_string(),
        world.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_esi"))
        .args(&args)
        .current_dir(repo())
        .env_remove("ESI_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("esi netsim starts");
    let stdout = child.stdout.take().expect("stdout");
    let guard = Proc(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut served = Vec::new();
    for _ in 0..ROUTERS.len() {
        let line = lines
            .next()
            .expect("esi netsim prints a line per router")
            .expect("read");
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 3, "{line}");
        let (host, port) = f[1].rsplit_once(':').expect("HOST:PORT");
        served.push(Served {
            name: f[0].to_string(),
            host: host.to_string(),
            port: port.parse().expect("port"),
            fingerprint: f[2].to_string(),
        });
    }
    let names: Vec<&str> = served.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["192.0.2.11", "192.0.2.12"]);
    (guard, served)
}

struct System {
    ns: String,
    eps: String,
    dir: PathBuf,
}

impl System {
    fn new(test: &str) -> System {
        System {
            ns: format!("/{}", unique(test)),
            eps: endpoints(),
            dir: tempdir(test),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_esi"));
        c.args(args)
            .current_dir(repo())
            .env("ESI_ETCD_ENDPOINTS", &self.eps)
            .env("ESI_ETCD_NAMESPACE", &self.ns)
            .env_remove("ESI_LOG");
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

    /// `esi serve --devices netconf --device-map MAP EXTRA…` (no known_hosts, not insecure).
    fn serve(&self, map: &str, extra: &[&str]) -> Proc {
        let map_path = self.dir.join("device-map");
        std::fs::write(&map_path, map).expect("write map");
        let map_arg = map_path.display().to_string();
        let mut args = vec![
            "serve",
            "--name",
            "netconf-test",
            "--log-format",
            "json",
            "--devices",
            "netconf",
            "--device-map",
            &map_arg,
        ];
        args.extend_from_slice(extra);
        let log = std::fs::File::create(self.dir.join("serve.log")).expect("log file");
        Proc(
            self.cmd(&args)
                .env("ESI_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("esi serve starts"),
        )
    }

    fn apply(&self, world: &Path, timeout: u64) -> Output {
        let world = world.display().to_string();
        let timeout = timeout.to_string();
        self.esi(&["apply", "-f", &world, "--wait", "--timeout", &timeout])
    }

    fn row(&self, key: &str) -> Value {
        let rows = self.json(&["get", "--output", "json"]);
        rows.as_array()
            .and_then(|rows| {
                rows.iter()
                    .find(|r| {
                        format!(
                            "{}/{}",
                            r["type"].as_str().unwrap_or(""),
                            r["id"].as_str().unwrap_or("")
                        ) == key
                    })
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no row {key} in {rows}"))
    }
}

fn password(router: &str) -> &'static str {
    ROUTERS
        .iter()
        .find(|(r, _)| *r == router)
        .map(|(_, p)| *p)
        .expect("known router")
}

fn listing(served: &[Served]) -> String {
    served.iter().map(Served::line).collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Each router's running configuration (secrets masked), read over NETCONF through the same
/// device map, as the resources name the routers.
fn running(served: &[Served]) -> BTreeMap<String, String> {
    let map = DeviceMap::parse(&listing(served), "netsim").expect("map");
    let registry = NetconfRegistry::new(
        NetconfOptions::default()
            .with_host_keys(HostKeyPolicy::Fingerprints(Vec::new()))
            .with_device_map(map),
    );
    rt().block_on(async {
        let mut out = BTreeMap::new();
        for (router, pw) in ROUTERS {
            let device = registry
                .connect(
                    &DeviceAddress {
                        host: router.into(),
                        port: Some(830),
                    },
                    &Credentials::Login {
                        username: USER.into(),
                        password: Secret::new(pw.into()),
                    },
                )
                .await
                .expect("device");
            let text = device.configuration().await.expect("get-configuration");
            out.insert(router.to_string(), text);
        }
        registry.close_all().await;
        out
    })
}

/// The candidate of `s` can be locked (and is unlocked again): no session holds it.
fn assert_lock_free(s: &Served) {
    let target = Target {
        host: s.host.clone(),
        port: s.port,
        username: USER.into(),
    };
    let options = SessionOptions {
        host_keys: HostKeyPolicy::Fingerprints(vec![s.fingerprint.clone()]),
        ..SessionOptions::default()
    };
    let auth = Auth::Password(Secret::new(password(&s.name).into()));
    rt().block_on(async {
        let mut session = Session::connect(&target, &auth, &options)
            .await
            .expect("session");
        session
            .rpc("<lock><target><candidate/></target></lock>")
            .await
            .unwrap_or_else(|e| panic!("{}: candidate still locked: {e}", s.name));
        session
            .rpc("<unlock><target><candidate/></target></unlock>")
            .await
            .expect("unlock");
        session.close().await;
    });
}

/// One configuration `esi plan` predicts for a router.
struct Predicted {
    resource: String,
    text: String,
    commands: Vec<String>,
}

/// `esi plan WORLD`: per router address, its configurations in order.
fn plan(world: &Path) -> BTreeMap<String, Vec<Predicted>> {
    let out = Command::new(env!("CARGO_BIN_EXE_esi"))
        .args(["plan", &world.display().to_string(), "--output", "json"])
        .current_dir(repo())
        .output()
        .expect("esi plan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    let mut by_router = BTreeMap::new();
    for d in v["devices"].as_array().expect("devices") {
        let ip = d["device"]["device_ip"].as_str().expect("ip").to_string();
        let configs = d["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .map(|c| {
                assert_eq!(c["operation"], "load", "{c}");
                Predicted {
                    resource: format!(
                        "{}/{}",
                        c["resource"]["resource_type"].as_str().unwrap_or(""),
                        c["resource"]["resource_id"].as_str().unwrap_or("")
                    ),
                    text: c["text"].as_str().unwrap_or("").to_string(),
                    commands: c["additional_commands"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|l| l.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect();
        by_router.insert(ip, configs);
    }
    by_router
}

const HOLE: &str = "KNOWN_AFTER_APPLY_";

/// Replaces each `(known after apply: …)` of the plan with a token `KNOWN_AFTER_APPLY_<n>`
/// (the same text, the same token).
fn holes(text: &str, seen: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("(known after apply:") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(')').map_or(rest.len(), |j| i + j + 1);
        let what = rest[i..end].to_string();
        let n = seen.iter().position(|s| *s == what).unwrap_or_else(|| {
            seen.push(what.clone());
            seen.len() - 1
        });
        out.push_str(&format!("{HOLE}{n}"));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The configuration the plan predicts from the configurations of `keep` resources, merged
/// in order onto an empty router, as statement paths (with hole tokens).
fn predicted_paths(configs: &[Predicted], keep: impl Fn(&str) -> bool) -> Vec<Vec<String>> {
    let mut seen = Vec::new();
    let mut cfg = JunosConfig::new();
    for c in configs.iter().filter(|c| keep(&c.resource)) {
        cfg.merge_text(&holes(&c.text, &mut seen))
            .unwrap_or_else(|e| panic!("plan text of {}: {e}", c.resource));
        for l in &c.commands {
            cfg.command(&holes(l, &mut seen))
                .unwrap_or_else(|e| panic!("plan command of {}: {e}", c.resource));
        }
    }
    cfg.paths()
}

/// Asserts the router's statements are exactly the predicted ones, each hole standing for one
/// value throughout (what the apply made known).
fn assert_as_predicted(router: &str, actual_text: &str, predicted: &[Vec<String>]) {
    let actual = JunosConfig::parse(actual_text)
        .unwrap_or_else(|e| panic!("{router}: configuration read back: {e}\n{actual_text}"))
        .paths();
    let mut bound: HashMap<String, String> = HashMap::new();
    let mut unmatched: Vec<&Vec<String>> = predicted.iter().collect();
    let mut free: Vec<&Vec<String>> = actual.iter().collect();
    let fits = |p: &Vec<String>, a: &Vec<String>, bound: &HashMap<String, String>| {
        p.len() == a.len()
            && p.iter().zip(a).all(|(pt, at)| {
                if pt.starts_with(HOLE) {
                    bound.get(pt).is_none_or(|v| v == at)
                } else {
                    pt == at
                }
            })
    };
    loop {
        let mut progress = false;
        let mut i = 0;
        while i < unmatched.len() {
            let p = unmatched[i];
            let candidates: Vec<usize> = (0..free.len())
                .filter(|&j| fits(p, free[j], &bound))
                .collect();
            if candidates.len() == 1 {
                let a = free.remove(candidates[0]);
                for (pt, at) in p.iter().zip(a) {
                    if pt.starts_with(HOLE) {
                        assert!(!at.contains("known after apply"), "{router}: {a:?}");
                        bound.insert(pt.clone(), at.clone());
                    }
                }
                unmatched.remove(i);
                progress = true;
            } else {
                i += 1;
            }
        }
        if !progress {
            break;
        }
    }
    let show = |ps: &[&Vec<String>]| {
        ps.iter()
            .map(|p| p.join(" "))
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    assert!(
        unmatched.is_empty() && free.is_empty(),
        "{router}: configuration differs from the plan\n predicted, not on the router:\n  {}\n on the router, not predicted:\n  {}\n holes: {bound:?}",
        show(&unmatched),
        show(&free)
    );
    eprintln!(
        "{router}: {} statements as planned ({} values known after apply)",
        actual.len(),
        bound.len()
    );
}

#[test]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start"]
fn example_world_routers_end_as_planned_and_the_gateway_delete_removes_its_statements() {
    let world = repo().join(WORLD);
    let sys = System::new("planned");
    let (_netsim, served) = netsim(&world, &[]);
    let _serve = sys.serve(&listing(&served), &["--jobs", "4"]);

    let t0 = Instant::now();
    let out = sys.apply(&world, 120);
    assert!(
        out.status.success(),
        "apply --wait: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "apply --wait of the example world through NETCONF took {:?}",
        t0.elapsed()
    );
    let rows = sys.json(&["get", "--output", "json"]);
    for r in rows.as_array().expect("rows") {
        assert!(r["error"].is_null(), "{r}");
    }

    let plan = plan(&world);
    assert_eq!(plan.len(), 2);
    let configs = running(&served);
    for (router, predicted) in &plan {
        let paths = predicted_paths(predicted, |_| true);
        assert!(paths.len() > 20, "{router}: {paths:?}");
        assert_as_predicted(router, &configs[router], &paths);
    }

    // Delete the gateway: its statements go, the others' stay.
    let del = sys.esi(&["delete", GATEWAY, "--wait", "--timeout", "60"]);
    assert!(
        del.status.success(),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );
    let configs = running(&served);
    for (router, predicted) in &plan {
        assert!(
            predicted.iter().any(|c| c.resource == GATEWAY),
            "the gateway configures {router}"
        );
        let paths = predicted_paths(predicted, |r| r != GATEWAY);
        assert_as_predicted(router, &configs[router], &paths);
        let text = &configs[router];
        assert!(
            !text.contains("VPNGW-"),
            "{router}: gateway filter left\n{text}"
        );
        assert!(!text.contains("vlan-id 2101"), "{router}\n{text}");
    }
    for s in &served {
        assert_lock_free(s);
    }
}

#[test]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start"]
fn failed_health_check_keeps_the_previous_configuration_and_names_the_check() {
    let world = repo().join(WORLD);
    let sys = System::new("health");
    let (_netsim, served) = netsim(&world, &["--interface-down", "192.0.2.11=xe-0/0/2.2101"]);
    let _serve = sys.serve(&listing(&served), &["--confirmed-commit", "120"]);

    let t0 = Instant::now();
    let out = sys.apply(&world, 120);
    let took = t0.elapsed();
    assert!(
        !out.status.success(),
        "apply must fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!("failed health check recorded after {took:?}");
    let gw = sys.row(GATEWAY);
    assert_eq!(gw["worker_state"], "CREATE_ERROR", "{gw}");
    let error = gw["error"].as_str().unwrap_or_default();
    for needle in [
        "health check interfaces-up+vrrp-active failed: interfaces-up: interface xe-0/0/2.2101 is down",
        "192.0.2.11:830",
    ] {
        assert!(error.contains(needle), "{needle:?} not in {error}");
    }
    // What came before the gateway is committed and confirmed; the gateway's commit was
    // cancelled on 192.0.2.11, which is back at its previous configuration.
    for key in [HA_ROUTER, HA_INTERFACE] {
        assert!(sys.row(key)["error"].is_null(), "{key}");
    }
    let plan = plan(&world);
    let configs = running(&served);
    let before = predicted_paths(&plan["192.0.2.11"], |r| r == HA_ROUTER || r == HA_INTERFACE);
    assert_as_predicted("192.0.2.11", &configs["192.0.2.11"], &before);
    assert_lock_free(&served[0]);
}

/// The example world with a small NETCONF retry budget (`lock_timeout`, seconds) so that
/// transport faults end within seconds, and optionally a template edit.
fn world_copy(test: &str, edit: Option<(&str, &str, &str)>) -> PathBuf {
    let src = repo().join(WORLD);
    let dst = tempdir(test).join("world");
    std::fs::create_dir_all(dst.join("templates")).expect("mkdir");
    for sub in ["", "templates"] {
        for e in std::fs::read_dir(src.join(sub)).expect("read world") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_file() {
                let mut text = std::fs::read_to_string(e.path()).expect("read");
                text = text.replace("lock_timeout: 3000", "lock_timeout: 2");
                if let Some((file, from, to)) = edit {
                    if e.file_name().to_str() == Some(file) {
                        assert!(text.contains(from), "{file} has {from:?}");
                        text = text.replace(from, to);
                    }
                }
                std::fs::write(dst.join(sub).join(e.file_name()), text).expect("write");
            }
        }
    }
    dst
}

/// Applies `world` through a fresh daemon with `map`; the first NETCONF resource (`expect_on`)
/// must end in CREATE_ERROR with all of `needles` in its error, within `within`.
fn fault(
    test: &str,
    world: &Path,
    map: &str,
    extra: &[&str],
    expect_on: &str,
    needles: &[&str],
    within: Duration,
) {
    let sys = System::new(test);
    let _serve = sys.serve(map, extra);
    let t0 = Instant::now();
    let out = sys.apply(world, 150);
    let took = t0.elapsed();
    assert!(
        !out.status.success(),
        "{test}: apply must fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let row = sys.row(expect_on);
    assert_eq!(row["worker_state"], "CREATE_ERROR", "{test}: {row}");
    let error = row["error"].as_str().unwrap_or_default();
    for n in needles {
        assert!(error.contains(n), "{test}: {n:?} not in {error}");
    }
    assert!(
        !error.contains("example-secret"),
        "{test}: a password in {error}"
    );
    assert!(took < within, "{test}: took {took:?}");
    eprintln!("{test}: recorded on {expect_on} after {took:?}: {error}");
}

#[test]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start"]
fn router_faults_are_typed_errors_recorded_on_the_resource_with_no_lock_held() {
    let world = world_copy("faults", None);
    let (_netsim, served) = netsim(&world, &[]);
    let (a, b) = (&served[0], &served[1]);
    let within = Duration::from_secs(120);

    // Host-key mismatch: 192.0.2.11's address pinned to 192.0.2.12's key.
    let map = format!(
        "{} {}:{} {}\n{}",
        a.name,
        a.host,
        a.port,
        b.fingerprint,
        b.line()
    );
    fault(
        "host-key",
        &world,
        &map,
        &[],
        HA_ROUTER,
        &[
            "192.0.2.11:830",
            "host key rejected",
            "not one of the pinned",
        ],
        within,
    );

    // Wrong password: 192.0.2.11 sent to 192.0.2.12 (pinned right), which wants another one.
    let map = format!(
        "{} {}:{} {}\n{}",
        a.name,
        b.host,
        b.port,
        b.fingerprint,
        b.line()
    );
    fault(
        "password",
        &world,
        &map,
        &[],
        HA_ROUTER,
        &["192.0.2.11:830", "authentication failed for esi-netconf"],
        within,
    );

    // Dead port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_port = dead.local_addr().expect("addr").port();
    drop(dead);
    let map = format!(
        "{} 127.0.0.1:{dead_port} {}\n{}",
        a.name,
        a.fingerprint,
        b.line()
    );
    fault(
        "dead-port",
        &world,
        &map,
        &["--netconf-timeout", "3"],
        HA_ROUTER,
        &["192.0.2.11:830", "unreachable"],
        within,
    );

    // A load-configuration syntax error: well-formed text esi cannot judge, a statement the
    // router does not know (a misspelt top-level keyword in a template).
    let broken = world_copy(
        "syntax",
        Some((
            "ha_interface.yaml",
            "tag: interfaces }",
            "tag: interfacse }",
        )),
    );
    fault(
        "syntax",
        &broken,
        &listing(&served),
        &[],
        HA_INTERFACE,
        &[
            "192.0.2.11:830",
            "load failed",
            "syntax error: interfacse is not a configuration statement",
        ],
        within,
    );
    for s in &served {
        assert_lock_free(s);
    }

    // A router that accepts the session but never answers an RPC.
    let (_stalled, stalled) = netsim(&world, &["--stall", "192.0.2.11"]);
    fault(
        "stall",
        &world,
        &listing(&stalled),
        &["--netconf-timeout", "3"],
        HA_ROUTER,
        &["192.0.2.11:830", "timed out after 3000 ms"],
        within,
    );
}

#[test]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start"]
fn the_daemon_logs_in_with_an_ssh_key_and_confirms_checked_commits() {
    let world = repo().join(WORLD);
    let sys = System::new("key");
    let key = sys.dir.join("client_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "esi-test", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs (openssh-client)");
    assert!(made.success());
    let public = format!("{}.pub", key.display());
    let (_netsim, served) = netsim(&world, &["--authorized-key", &public]);
    let key_arg = key.display().to_string();
    // with confirmed commits: each is checked (interfaces up, VRRP groups active) and confirmed
    let _serve = sys.serve(
        &listing(&served),
        &["--netconf-key", &key_arg, "--confirmed-commit", "120"],
    );
    let out = sys.apply(&world, 120);
    assert!(
        out.status.success(),
        "apply --wait with key logins: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let configs = running(&served);
    for (router, _) in ROUTERS {
        assert!(
            configs[router].contains("vlan-id 2101;"),
            "{router}: {}",
            configs[router]
        );
    }
    let log = std::fs::read_to_string(sys.dir.join("serve.log")).unwrap_or_default();
    assert!(!log.contains("example-secret"), "a password in the log");
}

/// Runs `esi ARGS…` (no servers needed), which must exit within 30 s; returns (success,
/// stderr).
fn esi_alone(args: &[&str]) -> (bool, String) {
    let err = std::env::temp_dir().join(unique("stderr"));
    let mut child = Proc(
        Command::new(env!("CARGO_BIN_EXE_esi"))
            .args(args)
            .current_dir(repo())
            .env_remove("ESI_LOG")
            .env_remove("ESI_ETCD_ENDPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("esi runs"),
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "esi {args:?} did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&err).unwrap_or_default();
    let _ = std::fs::remove_file(err);
    (status.success(), text)
}

#[test]
fn bad_device_maps_and_fault_flags_are_refused_with_what_is_wrong() {
    let dir = tempdir("refused");
    let map = dir.join("map");
    std::fs::write(
        &map,
        "192.0.2.11 127.0.0.1:27000 SHA256:abc\n192.0.2.12 127.0.0.1\n",
    )
    .expect("write");
    let map_arg = map.display().to_string();
    let (ok, err) = esi_alone(&["serve", "--devices", "netconf", "--device-map", &map_arg]);
    assert!(!ok);
    assert!(
        err.contains("line 2") && err.contains("192.0.2.12"),
        "{err}"
    );
    let good = dir.join("good-map");
    std::fs::write(&good, "192.0.2.11 127.0.0.1:27000 SHA256:abc\n").expect("write");
    let (ok, err) = esi_alone(&[
        "serve",
        "--devices",
        "netconf",
        "--device-map",
        &good.display().to_string(),
        "--netconf-key",
        "/nonexistent/key",
    ]);
    assert!(!ok);
    assert!(
        err.contains("--netconf-key /nonexistent/key: no such file"),
        "{err}"
    );
    let (ok, err) = esi_alone(&[
        "netsim",
        WORLD,
        "--listen",
        "127.0.0.1:0",
        "--interface-down",
        "192.0.2.99=xe-0/0/0",
    ]);
    assert!(!ok);
    assert!(
        err.contains("192.0.2.99") && err.contains("192.0.2.11"),
        "{err}"
    );
    let (ok, err) = esi_alone(&["netsim", WORLD, "--listen", "127.0.0.1:0", "--stall", "r9"]);
    assert!(!ok);
    assert!(err.contains("--stall r9"), "{err}");
    let (ok, err) = esi_alone(&[
        "netsim",
        WORLD,
        "--listen",
        "127.0.0.1:0",
        "--authorized-key",
        &map_arg,
    ]);
    assert!(!ok);
    assert!(err.contains("not an OpenSSH public key"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
