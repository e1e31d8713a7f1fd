//! `esi serve` on a real etcd, driven by the `esi` client commands: the README sequence, and two
//! daemons sharing the work while the leader's process is SIGKILLed.
//!
//! Needs etcd: `bash .ci/services/10-etcd.sh start` prints `ETCD_ENDPOINTS`. Each test works in
//! its own key namespace (`ESI_ETCD_NAMESPACE`), so they run side by side on one etcd.

mod common;

use common::{assert_all_final, repo, signal, wait_exit, Daemon};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NEEDS: &str =
    "ETCD_ENDPOINTS is not set: start etcd with `bash .ci/services/10-etcd.sh start` \
                     and export the ETCD_ENDPOINTS it prints";

fn endpoints() -> String {
    std::env::var("ETCD_ENDPOINTS")
        .ok()
        .filter(|s| !s.is_empty())
        .expect(NEEDS)
}

fn namespace(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("/esi-test-{test}-{}-{nanos}", std::process::id())
}

struct System {
    ns: String,
    eps: String,
}

impl System {
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

    fn serve(&self, name: &str, extra: &[&str], log: &Path) -> Daemon {
        let mut args = vec!["serve", "--name", name, "--log-format", "json"];
        args.extend_from_slice(extra);
        let file = std::fs::File::create(log).expect("log file");
        Daemon(
            self.cmd(&args)
                .env("ESI_LOG", "info")
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("esi serve starts"),
        )
    }

    fn leader(&self) -> Option<String> {
        self.json(&["status", "--output", "json"])
            .pointer("/status/leader")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

#[test]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start"]
fn readme_sequence_serve_apply_wait_get_delete() {
    let sys = System {
        ns: namespace("readme"),
        eps: endpoints(),
    };
    let dir = tempdir("readme");
    let mut serve = sys.serve("readme-1", &["--jobs", "4"], &dir.join("serve.log"));

    let t0 = Instant::now();
    let out = sys.esi(&[
        "apply",
        "-f",
        "examples/vpn-gateway",
        "--wait",
        "--timeout",
        "90",
    ]);
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "apply --wait: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("apply --wait of the example world took {took:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("heat_template/vpn_gateway created"), "{text}");

    let rows = sys.json(&["get", "--output", "json"]);
    assert_all_final(&rows, 15);
    let table = String::from_utf8_lossy(&sys.esi(&["get", "vpn_gateway"]).stdout).into_owned();
    assert!(table.contains("CREATE_COMPLETED"), "{table}");

    // Unchanged world: nothing is written.
    let again = sys.json(&["apply", "-f", "examples/vpn-gateway", "--output", "json"]);
    let lines = again["applied"].as_array().expect("lines");
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["outcome"] == "unchanged"), "{again}");

    // Two-step delete of a leaf resource.
    let del = sys.esi(&[
        "delete",
        "port/d50eae16-9e42-4036-b320-b0c24b58f751",
        "--wait",
        "--timeout",
        "60",
    ]);
    assert!(
        del.status.success(),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );
    let rows = sys.json(&["get", "port", "--output", "json"]);
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    assert!(sys
        .json(&["jobs", "--output", "json"])
        .as_array()
        .is_some_and(Vec::is_empty));

    signal(&serve.0, "-TERM");
    let status = wait_exit(&mut serve.0, Duration::from_secs(30));
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(sys.leader(), None, "the leader resigned on SIGTERM");
}

#[test]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start"]
fn two_daemons_survive_the_leader_being_sigkilled() {
    let sys = System {
        ns: namespace("failover"),
        eps: endpoints(),
    };
    let dir = tempdir("failover");
    let ttl = 3.0;
    let ttl_arg = ttl.to_string();
    let args = ["--jobs", "2", "--lease-ttl", ttl_arg.as_str()];
    let mut daemons = [
        sys.serve("fo-a", &args, &dir.join("a.log")),
        sys.serve("fo-b", &args, &dir.join("b.log")),
    ];
    let names = ["fo-a", "fo-b"];

    let t0 = Instant::now();
    let leader = loop {
        if let Some(l) = sys.leader() {
            break l;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no leader elected");
        std::thread::sleep(Duration::from_millis(100));
    };
    let victim = usize::from(leader == names[1]);
    let survivor = 1 - victim;
    let survivor_name = names[survivor];
    // Apply without waiting, then kill the leader while the jobs run.
    let out = sys.esi(&["apply", "-f", "examples/vpn-gateway"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    signal(&daemons[victim].0, "-KILL");
    let killed = Instant::now();
    let _ = daemons[victim].0.wait();
    let new_leader = loop {
        match sys.leader() {
            Some(l) if l == survivor_name => break l,
            _ => {}
        }
        assert!(
            killed.elapsed() < Duration::from_secs_f64(ttl * 3.0),
            "no failover within 3 x TTL"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let failover = killed.elapsed();
    eprintln!("failover to {new_leader} after {failover:?} (lease TTL {ttl} s)");
    assert!(
        failover < Duration::from_secs_f64(ttl + 2.0),
        "failover took {failover:?}, lease TTL {ttl} s"
    );

    // Everything converges on the survivor.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = sys.json(&["get", "--output", "json"]);
        let done = rows.as_array().is_some_and(|r| {
            r.len() == 15
                && r.iter()
                    .all(|x| x["jobs"] == 0 && x["state_version"] == x["version"])
        });
        if done {
            assert_all_final(&rows, 15);
            break;
        }
        assert!(Instant::now() < deadline, "not final: {rows}");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(sys
        .json(&["jobs", "--output", "json"])
        .as_array()
        .is_some_and(Vec::is_empty));

    signal(&daemons[survivor].0, "-TERM");
    let status = wait_exit(&mut daemons[survivor].0, Duration::from_secs(30));
    assert!(status.success(), "exit status {status:?}");
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("esi-serve-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
