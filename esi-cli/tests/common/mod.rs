//! Helpers of the tests that run `esi serve` processes (on a real etcd, a cluster, Heat, …).
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NEEDS_CLUSTER: &str = "ETCD_CLUSTER_ENDPOINTS is not set: start etcd with \
     `bash .ci/services/10-etcd.sh start` and export the ETCD_CLUSTER_ENDPOINTS (and \
     ESI_ETCD_SERVICE) it prints";

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A short tag unique to this run (letters and digits).
pub fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("t{:x}{:x}", std::process::id(), nanos % 0xff_ffff)
}

/// `test`, this process's id and the time in nanoseconds: unique per run (key namespaces,
/// stack names, temp dirs).
pub fn tagged(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{test}-{}-{nanos}", std::process::id())
}

/// A free loopback port (bound, then released for a daemon to listen on).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A fresh directory under the system temp dir.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("esi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The 3-member etcd cluster, in a key namespace of its own.
pub struct Cluster {
    /// Key namespace (`ESI_ETCD_NAMESPACE`).
    pub ns: String,
    /// Client endpoints.
    pub eps: String,
    script: PathBuf,
}

impl Cluster {
    /// The cluster from `ETCD_CLUSTER_ENDPOINTS`; fails the test clearly when it is not set.
    pub fn new(test: &str) -> Self {
        let eps = std::env::var("ETCD_CLUSTER_ENDPOINTS")
            .ok()
            .filter(|s| !s.is_empty())
            .expect(NEEDS_CLUSTER);
        let script = std::env::var("ESI_ETCD_SERVICE")
            .ok()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".ci/services/10-etcd.sh"));
        Cluster {
            ns: format!("/esi-test-{test}-{}", unique()),
            eps,
            script,
        }
    }

    /// An `esi` command on this cluster and namespace.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_esi"));
        c.args(args)
            .current_dir(repo())
            .env("ESI_ETCD_ENDPOINTS", &self.eps)
            .env("ESI_ETCD_NAMESPACE", &self.ns)
            .env_remove("ESI_LOG");
        c
    }

    /// Runs `esi ARGS`.
    pub fn esi(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("esi runs")
    }

    /// Runs `esi ARGS` and parses its JSON output (the command must succeed).
    pub fn json(&self, args: &[&str]) -> Value {
        let o = self.esi(args);
        assert!(
            o.status.success(),
            "esi {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("JSON output")
    }

    /// Runs `esi ARGS` and parses its JSON output; `None` when the command fails.
    pub fn try_json(&self, args: &[&str]) -> Option<Value> {
        let o = self.esi(args);
        if !o.status.success() {
            eprintln!(
                "(esi {args:?} failed: {})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return None;
        }
        serde_json::from_slice(&o.stdout).ok()
    }

    /// Starts `esi serve ARGS` with JSON logs (info) appended to `log`.
    pub fn serve(&self, args: &[String], log: &Path) -> Daemon {
        self.serve_filtered(args, log, "info")
    }

    /// Starts `esi serve ARGS` with JSON logs (`ESI_LOG=filter`) appended to `log`.
    pub fn serve_filtered(&self, args: &[String], log: &Path, filter: &str) -> Daemon {
        let mut all: Vec<&str> = vec!["serve", "--log-format", "json"];
        all.extend(args.iter().map(String::as_str));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        Daemon(
            self.cmd(&all)
                .env("ESI_LOG", filter)
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("esi serve starts"),
        )
    }

    /// The current leader (the value of `/job_manager_id`, read with etcdctl: quicker than
    /// `esi status`, which also checks every endpoint's health).
    pub fn leader(&self) -> Option<String> {
        self.leader_and_revision().0
    }

    /// The current leader and the store revision.
    pub fn leader_and_revision(&self) -> (Option<String>, i64) {
        let o = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &self.eps,
                "--command-timeout=5s",
                "get",
                "-w",
                "json",
            ])
            .arg(format!("{}/job_manager_id", self.ns))
            .output()
            .expect("etcdctl runs (installed with etcd-server by 10-etcd.sh)");
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        let leader = v
            .pointer("/kvs/0/value")
            .and_then(Value::as_str)
            .map(|b| String::from_utf8_lossy(&base64(b)).into_owned());
        let rev = v
            .pointer("/header/revision")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        (leader, rev)
    }

    /// `10-etcd.sh stop-member N` / `start-member N` (with the `CI_ETCD_*` knobs of the
    /// environment, as at start).
    pub fn member(&self, what: &str, n: u8) {
        let ok = Command::new("bash")
            .arg(&self.script)
            .args([what, &n.to_string()])
            .stdout(Stdio::null())
            .status()
            .expect("bash runs")
            .success();
        assert!(ok, "{} {what} {n} failed", self.script.display());
    }
}

/// A stopped etcd member, started again when dropped (also when the test fails).
pub struct MemberDown<'a> {
    cluster: &'a Cluster,
    n: u8,
}

impl<'a> MemberDown<'a> {
    /// Stops member `n` (`10-etcd.sh stop-member N`).
    pub fn stop(cluster: &'a Cluster, n: u8) -> Self {
        cluster.member("stop-member", n);
        MemberDown { cluster, n }
    }

    /// Starts it again and waits until it is healthy.
    pub fn start(self) {
        drop(self);
    }
}

impl Drop for MemberDown<'_> {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.cluster.script)
            .args(["start-member", &self.n.to_string()])
            .stdout(Stdio::null())
            .status();
    }
}

/// A daemon child that is killed (and reaped) when the test ends, even on a panic.
pub struct Daemon(pub Child);

impl Daemon {
    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = signal_pid(self.0.id(), "-CONT");
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn signal_pid(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Sends `sig` (`-KILL`, `-STOP`, …) to `child`.
pub fn signal(child: &Child, sig: &str) {
    assert!(signal_pid(child.id(), sig), "kill {sig} {}", child.id());
}

/// Waits for `child` to exit (killing it and failing after `within`).
pub fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if t0.elapsed() > within {
            let _ = child.kill();
            panic!("esi serve did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` until it gives a value; fails naming `what` after `within`.
pub fn wait_until<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < within, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// GET `url` with curl, parsed as JSON.
pub fn curl_json(url: &str) -> Value {
    let o = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "60", url])
        .output()
        .expect("curl runs");
    assert!(
        o.status.success(),
        "GET {url}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON")
}

/// Counts items by key.
pub fn count_by<T>(items: &[T], key: impl Fn(&T) -> String) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(key(i)).or_insert(0) += 1;
    }
    m
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp (`2026-12-03T13:44:11.682226Z`).
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, min, sec) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3_600 + min * 60) as f64 + sec)
}

#[test]
fn timestamps_parse() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1.5));
    assert_eq!(parse_rfc3339("2026-12-03T13:44:11Z"), Some(1_796_305_451.0));
}

/// Decodes standard base64 (etcdctl's JSON output).
pub fn base64(text: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in text.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Serialises the tests that stop etcd members or pause processes (they disturb each other).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Asserts `rows` (`esi get --output json`) hold `n` resources, every one final and error-free.
pub fn assert_all_final(rows: &Value, n: usize) {
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), n, "{rows:?}");
    for r in rows {
        let ws = r["worker_state"].as_str().unwrap_or("");
        assert!(
            ws == "CREATE_COMPLETED" || ws == "READ_COMPLETE",
            "{}/{}: {r}",
            r["type"],
            r["id"]
        );
        assert_eq!(r["state_version"], r["version"], "{r}");
        assert_eq!(r["jobs"], 0, "{r}");
        assert!(r["error"].is_null(), "{r}");
    }
}
