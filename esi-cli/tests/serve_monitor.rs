//! `esi serve` with the `monitor` role polling real SNMP agents: targets registered through the
//! CollectorAgent REST API, `/monitoring` followed with an etcd watch, rows flipped with
//! `snmpset`; and two daemons dividing 200 targets through etcd while one is SIGKILLed.
//!
//! Needs etcd and the SNMP agents:
//! `bash .ci/services/10-etcd.sh start` (ETCD_ENDPOINTS) and `bash .ci/services/40-snmp.sh start`
//! (SNMPD_ENDPOINT, SNMPSIM_ENDPOINT, SNMP_V3_USER, SNMP_V3_AUTH, SNMP_V3_PRIV,
//! SNMPSIM_V3_CONTEXT). snmpsim rows 3 (ge-0/0/0), 7 (ae0.100) and 8 (ae0.200) belong to these tests.

mod common;

use common::{free_port, repo, tagged};
use esi_core::store::{Store, WatchEvent};
use esi_etcd::{EtcdConfig, EtcdStore};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const NEEDS: &str = "start the services: `bash .ci/services/10-etcd.sh start` and \
                     `bash .ci/services/40-snmp.sh start`, and export the KEY=VALUE lines they print";

fn env(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("{name} is not set: {NEEDS}"))
}

fn dead_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free udp port")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `snmpset` on snmpsim's writable ifOperStatus row.
fn set_oper_status(index: u32, value: u32) {
    let out = Command::new("snmpset")
        .args(["-v2c", "-c", "public", "-r", "2", "-t", "2", "-On"])
        .arg(env("SNMPSIM_ENDPOINT"))
        .arg(format!("1.3.6.1.2.1.2.2.1.8.{index}"))
        .args(["i", &value.to_string()])
        .output()
        .expect("snmpset runs");
    assert!(
        out.status.success(),
        "snmpset failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Puts the rows back (row, ifOperStatus) whatever happens.
struct Rows(Vec<(u32, u32)>);

impl Drop for Rows {
    fn drop(&mut self) {
        for (r, v) in &self.0 {
            set_oper_status(*r, *v);
        }
    }
}

/// A daemon child, SIGKILLed and reaped when dropped.
struct Daemon {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

struct Setup {
    ns: String,
    dir: PathBuf,
    snmp_config: PathBuf,
}

impl Setup {
    fn new(test: &str, devices: &str) -> Setup {
        let id = tagged(test);
        let dir = std::env::temp_dir().join(format!("esi-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let snmpd_port = env("SNMPD_ENDPOINT")
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .expect("SNMPD_ENDPOINT is host:port");
        let snmp_config = dir.join("snmp.toml");
        std::fs::write(
            &snmp_config,
            format!("port = {snmpd_port}\ntimeout_ms = 300\nretries = 0\n{devices}"),
        )
        .expect("write snmp config");
        Setup {
            ns: format!("/esi-test-{id}"),
            dir,
            snmp_config,
        }
    }

    fn serve(&self, name: &str, extra: &[&str]) -> Daemon {
        let port = free_port();
        let log = self.dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let listen = format!("127.0.0.1:{port}");
        let config = self.snmp_config.display().to_string();
        let mut args = vec![
            "serve",
            "--name",
            name,
            "--log-format",
            "json",
            "--roles",
            "monitor",
            "--monitoring",
            "snmp",
            "--snmp-config",
            &config,
            "--listen",
            &listen,
            "--monitor-jitter",
            "0",
        ];
        args.extend_from_slice(extra);
        let child = Command::new(env!("CARGO_BIN_EXE_esi"))
            .args(&args)
            .current_dir(repo())
            .env("ESI_ETCD_ENDPOINTS", env("ETCD_ENDPOINTS"))
            .env("ESI_ETCD_NAMESPACE", &self.ns)
            .env("ESI_LOG", "info,esi_core::collector=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("esi serve starts");
        Daemon { child, port, log }
    }

    async fn store(&self) -> EtcdStore {
        EtcdStore::connect(EtcdConfig::from_list(&env("ETCD_ENDPOINTS")).with_namespace(&self.ns))
            .await
            .expect("etcd reachable")
    }
}

/// Every change under `/monitoring/`, with its wall-clock time.
#[derive(Clone, Default)]
struct History(Arc<Mutex<Vec<Change>>>);

/// (wall-clock seconds, key, value or `None` for a delete).
type Change = (f64, String, Option<Value>);

impl History {
    async fn follow(store: &EtcdStore) -> History {
        let h = History::default();
        let rev = store.revision().await.expect("revision");
        let mut w = store.watch("/monitoring/", rev + 1).await.expect("watch");
        let sink = h.0.clone();
        tokio::spawn(async move {
            while let Some(Ok(ev)) = w.next().await {
                let entry = match ev {
                    WatchEvent::Put(kv) => (
                        unix_now(),
                        kv.key.clone(),
                        Some(serde_json::from_str(&kv.value).unwrap_or(Value::Null)),
                    ),
                    WatchEvent::Delete { key, .. } => (unix_now(), key, None),
                };
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
            }
        });
        h
    }

    fn of(&self, key: &str) -> Vec<(f64, Option<Value>)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, k, _)| k == key)
            .map(|(t, _, v)| (*t, v.clone()))
            .collect()
    }

    fn by_key(&self) -> BTreeMap<String, Vec<(f64, Option<Value>)>> {
        let mut out: BTreeMap<String, Vec<(f64, Option<Value>)>> = BTreeMap::new();
        for (t, k, v) in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            out.entry(k.clone()).or_default().push((*t, v.clone()));
        }
        out
    }

    /// Waits until `key`'s latest value satisfies `ok`; the time it was written.
    async fn wait(&self, key: &str, within: Duration, ok: impl Fn(Option<&Value>) -> bool) -> f64 {
        let t0 = Instant::now();
        loop {
            if let Some((t, v)) = self.of(key).last() {
                if ok(v.as_ref()) {
                    return *t;
                }
            }
            assert!(
                t0.elapsed() < within,
                "{key}: not reached within {within:?}; history {:?}",
                self.of(key)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn status_is(field: &'static str, want: &'static str) -> impl Fn(Option<&Value>) -> bool {
    move |v| v.and_then(|v| v.get(field)).and_then(Value::as_str) == Some(want)
}

fn port_target(
    resource_id: &str,
    kind: &str,
    device_ip: &str,
    community: &str,
    if_name: &str,
    hold: Option<f64>,
) -> Value {
    let mut etcd = json!({"status": {"key": "logical_port"}});
    if let Some(secs) = hold {
        etcd["hold_options"] = json!({"positive_status": ["UP"], "time_seconds": secs});
    }
    json!({
        "type": kind, "resource_type": "ese_logical_ports", "resource_id": resource_id,
        "tenant_id": "t1", "version": 1, "field_name": "logical_port",
        "properties": {"community_name": community, "device_ip": device_ip, "if_name": if_name},
        "syncer_properties": {
            "etcd": etcd,
            "tsdb": {
                "traffic.in": {"metric": "traffic.bytes", "tags": {"resource_id": resource_id, "direction": "in"}},
                "traffic.out": {"metric": "traffic.bytes", "tags": {"resource_id": resource_id, "direction": "out"}}
            }
        }
    })
}

fn key_of(resource_id: &str) -> String {
    format!("/monitoring/v2.0/ese_logical_ports/{resource_id}")
}

async fn wait_http(http: &reqwest::Client, port: u16) {
    let t0 = Instant::now();
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "esi serve on {port} not answering"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(http: &reqwest::Client, port: u16, body: &Value) -> Value {
    let r = http
        .post(format!("http://127.0.0.1:{port}/targets"))
        .json(body)
        .send()
        .await
        .expect("POST /targets");
    let status = r.status().as_u16();
    let doc: Value = r.json().await.expect("JSON");
    assert_eq!(status, 201, "POST /targets: {doc}");
    doc
}

async fn get_target(http: &reqwest::Client, port: u16, id: &str) -> (u16, Value) {
    let r = http
        .get(format!("http://127.0.0.1:{port}/targets/{id}"))
        .send()
        .await
        .expect("GET /targets");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn created_at(doc: &Value) -> f64 {
    let text = doc["created_at"].as_str().expect("created_at");
    esi_core::exec::monitor::Timestamp::parse(text)
        .map(|t| t.unix_seconds() as f64)
        .expect("RFC 3339")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd and SNMP agents: bash .ci/services/10-etcd.sh start; bash .ci/services/40-snmp.sh start"]
async fn snmp_targets_through_the_daemon_up_down_hold_and_fail() {
    let sim = env("SNMPSIM_ENDPOINT");
    let snmpd = env("SNMPD_ENDPOINT");
    let (user, auth, privacy, ctx) = (
        env("SNMP_V3_USER"),
        env("SNMP_V3_AUTH"),
        env("SNMP_V3_PRIV"),
        env("SNMPSIM_V3_CONTEXT"),
    );
    let dead = dead_udp_port();
    let devices = format!(
        "[[device]]\ndevice_ip = \"10.20.0.1\"\naddress = \"{sim}\"\n\
         [[device]]\ndevice_ip = \"10.20.0.2\"\naddress = \"{sim}\"\nuser = \"{user}\"\nauth_password = \"{auth}\"\npriv_password = \"{privacy}\"\ncontext = \"{ctx}\"\n\
         [[device]]\ndevice_ip = \"10.20.0.3\"\naddress = \"{snmpd}\"\nuser = \"{user}\"\nauth_password = \"wrong-{auth}\"\npriv_password = \"{privacy}\"\n\
         [[device]]\ndevice_ip = \"10.20.0.4\"\naddress = \"127.0.0.1:{dead}\"\n\
         [[device]]\ndevice_ip = \"10.20.0.5\"\naddress = \"{snmpd}\"\nuser = \"{user}\"\nauth_password = \"{auth}\"\npriv_password = \"{privacy}\"\n"
    );
    let setup = Setup::new("monitor-snmp", &devices);
    set_oper_status(7, 1);
    set_oper_status(8, 1);
    let _rows = Rows(vec![(7, 1), (8, 1)]);
    let store = setup.store().await;
    let history = History::follow(&store).await;
    let interval = 1.0;
    let daemon = setup.serve(
        "mon-a",
        &["--monitor-interval", "1", "--monitor-failures", "2"],
    );
    let http = reqwest::Client::new();
    wait_http(&http, daemon.port).await;

    // sim v2c (row 7) and sim v3 authPriv (row 8): UP, flipped to DOWN later; a positive
    // status ends their hold window at once
    let a = post(
        &http,
        daemon.port,
        &port_target(
            "p-sim-v2c",
            "snmp_ports",
            "10.20.0.1",
            "public",
            "ae0.100",
            Some(30.0),
        ),
    )
    .await;
    post(
        &http,
        daemon.port,
        &port_target(
            "p-sim-v3",
            "snmp_ports",
            "10.20.0.2",
            "ignored",
            "ae0.200",
            None,
        ),
    )
    .await;
    // snmpd v2c (no route: device_ip:port) and v3: the loopback interface is up
    post(
        &http,
        daemon.port,
        &port_target(
            "p-snmpd-v2c",
            "snmp_ports_status",
            "127.0.0.1",
            "public",
            "lo",
            None,
        ),
    )
    .await;
    post(
        &http,
        daemon.port,
        &port_target(
            "p-snmpd-v3",
            "snmp_ports_status",
            "10.20.0.5",
            "ignored",
            "lo",
            None,
        ),
    )
    .await;
    // a DOWN row inside a 3 s hold window: withheld, published after the window (O1)
    let h = post(
        &http,
        daemon.port,
        &port_target(
            "p-hold",
            "snmp_ports",
            "10.20.0.1",
            "public",
            "xe-0/0/3.1029",
            Some(3.0),
        ),
    )
    .await;
    // failures: wrong community, wrong v3 password, dead agent
    post(
        &http,
        daemon.port,
        &port_target(
            "p-bad-community",
            "snmp_ports_status",
            "127.0.0.1",
            "not-the-community",
            "lo",
            None,
        ),
    )
    .await;
    post(
        &http,
        daemon.port,
        &port_target(
            "p-bad-v3",
            "snmp_ports_status",
            "10.20.0.3",
            "ignored",
            "lo",
            None,
        ),
    )
    .await;
    post(
        &http,
        daemon.port,
        &port_target(
            "p-dead",
            "snmp_ports_status",
            "10.20.0.4",
            "public",
            "lo",
            None,
        ),
    )
    .await;
    assert_eq!(a["community_name"], Value::Null);
    assert_eq!(
        a["properties"]["community_name"],
        json!("***"),
        "secrets never returned"
    );

    for rid in ["p-sim-v2c", "p-sim-v3", "p-snmpd-v2c", "p-snmpd-v3"] {
        let t = history
            .wait(
                &key_of(rid),
                Duration::from_secs(10),
                status_is("logical_port", "UP"),
            )
            .await;
        if rid == "p-sim-v2c" {
            // the recorded first-result delay: one interval after creation
            assert!(
                t >= created_at(&a) + interval - 0.05,
                "first result at {t}, created {}",
                created_at(&a)
            );
        }
    }
    assert_eq!(
        history
            .of(&key_of("p-sim-v2c"))
            .last()
            .and_then(|(_, v)| v.clone()),
        Some(json!({"logical_port": "UP", "version": 1})),
        "the recorded document"
    );
    for rid in ["p-bad-community", "p-bad-v3", "p-dead"] {
        history
            .wait(
                &key_of(rid),
                Duration::from_secs(10),
                status_is("logical_port", "FAIL"),
            )
            .await;
        let writes = history.of(&key_of(rid));
        assert_eq!(
            writes.len(),
            1,
            "{rid}: only FAIL is ever written: {writes:?}"
        );
    }
    // hold: nothing inside the window, DOWN after it
    let t = history
        .wait(
            &key_of("p-hold"),
            Duration::from_secs(10),
            status_is("logical_port", "DOWN"),
        )
        .await;
    assert!(
        t >= created_at(&h) + 3.0 - 0.05,
        "DOWN published at {t} inside the window from {}",
        created_at(&h)
    );
    assert_eq!(history.of(&key_of("p-hold")).len(), 1);

    // the tsdb results as Prometheus metrics with the recorded names and tags
    let metrics = http
        .get(format!("http://127.0.0.1:{}/metrics", daemon.port))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("traffic_bytes{")
                && l.contains("resource_id=\"p-sim-v2c\"")
                && l.contains("direction=\"in\"")
        })
        .unwrap_or_else(|| panic!("no traffic.bytes in for p-sim-v2c in\n{metrics}"));
    assert!(line.ends_with(" 7000000012345"), "{line}");
    assert!(metrics.contains("# TYPE traffic_bytes gauge"), "{metrics}");
    assert!(
        metrics.contains("esi_jobs{"),
        "the daemon's own metrics are still there"
    );

    // flip the rows: DOWN within one interval (+ the poll and the write)
    let flip = unix_now();
    set_oper_status(7, 2);
    set_oper_status(8, 2);
    for rid in ["p-sim-v2c", "p-sim-v3"] {
        let t = history
            .wait(
                &key_of(rid),
                Duration::from_secs(10),
                status_is("logical_port", "DOWN"),
            )
            .await;
        assert!(
            t - flip <= interval + 1.5,
            "{rid}: DOWN {:.2} s after the flip",
            t - flip
        );
    }
    set_oper_status(7, 1);
    history
        .wait(
            &key_of("p-sim-v2c"),
            Duration::from_secs(10),
            status_is("logical_port", "UP"),
        )
        .await;

    // GET shows the values; DELETE stops it and deletes the key; unknown ids are 404
    let id = a["id"].as_str().expect("id").to_string();
    let (code, doc) = get_target(&http, daemon.port, &id).await;
    assert_eq!(code, 200);
    assert_eq!(doc["values"][0]["value"], json!("UP"), "{doc}");
    let r = http
        .delete(format!("http://127.0.0.1:{}/targets/{id}", daemon.port))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 204);
    history
        .wait(&key_of("p-sim-v2c"), Duration::from_secs(5), |v| {
            v.is_none()
        })
        .await;
    assert_eq!(get_target(&http, daemon.port, &id).await.0, 404);
    let r = http
        .delete(format!("http://127.0.0.1:{}/targets/{id}", daemon.port))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 404);

    // nothing else broke: the other agents are still polled, the daemon is healthy
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        history
            .of(&key_of("p-snmpd-v3"))
            .last()
            .and_then(|(_, v)| v.clone()),
        Some(json!({"logical_port": "UP", "version": 1}))
    );
    let r = http
        .get(format!("http://127.0.0.1:{}/healthz", daemon.port))
        .send()
        .await
        .expect("healthz");
    assert!(r.status().is_success());
    let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
    for secret in [auth.as_str(), privacy.as_str(), "not-the-community"] {
        assert!(!log.contains(secret), "a secret in the daemon log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd and SNMP agents: bash .ci/services/10-etcd.sh start; bash .ci/services/40-snmp.sh start"]
async fn two_daemons_divide_200_targets_and_take_over_after_sigkill() {
    let sim = env("SNMPSIM_ENDPOINT");
    let setup = Setup::new(
        "monitor-shared",
        &format!("[[device]]\ndevice_ip = \"10.30.0.1\"\naddress = \"{sim}\"\n"),
    );
    set_oper_status(3, 1);
    let _rows = Rows(vec![(3, 2)]);
    let store = setup.store().await;
    let history = History::follow(&store).await;
    let (ttl, interval) = (3.0, 1.0);
    let extra = ["--monitor-interval", "1", "--lease-ttl", "3"];
    let mut a = setup.serve("mon-a", &extra);
    let b = setup.serve("mon-b", &extra);
    let http = reqwest::Client::new();
    wait_http(&http, a.port).await;
    wait_http(&http, b.port).await;
    let t0 = Instant::now();
    while store
        .range("/esi/monitor/members/")
        .await
        .map_or(0, |(k, _)| k.len())
        < 2
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "both members registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 200 targets on one agent, registered through either process
    let mut ids = Vec::new();
    for i in 0..200 {
        let port = if i % 2 == 0 { a.port } else { b.port };
        let doc = post(
            &http,
            port,
            &port_target(
                &format!("s{i:03}"),
                "snmp_ports_status",
                "10.30.0.1",
                "public",
                "ge-0/0/0",
                None,
            ),
        )
        .await;
        ids.push(doc["id"].as_str().expect("id").to_string());
    }
    let t0 = Instant::now();
    loop {
        let up = history
            .by_key()
            .values()
            .filter(|h| status_is("logical_port", "UP")(h.last().and_then(|(_, v)| v.as_ref())))
            .count();
        if up == 200 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{up} of 200 UP");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // each process polls a share: `values` are present where a target is polled
    let mut share = [0usize; 2];
    for id in &ids {
        for (n, d) in [&a, &b].iter().enumerate() {
            let (code, doc) = get_target(&http, d.port, id).await;
            assert_eq!(code, 200, "any process answers for any target");
            if doc.get("values").is_some() {
                share[n] += 1;
            }
        }
    }
    assert_eq!(
        share[0] + share[1],
        200,
        "each target polled by exactly one process: {share:?}"
    );
    assert!(share[0] >= 50 && share[1] >= 50, "divided: {share:?}");

    // SIGKILL a, then flip the row: every target (b's own and a's former ones) turns DOWN
    // within the lease TTL + one interval
    let _ = a.child.kill();
    let _ = a.child.wait();
    let killed = unix_now();
    eprintln!("killed mon-a at {killed:.3}");
    set_oper_status(3, 2);
    let t0 = Instant::now();
    loop {
        let down = history
            .by_key()
            .values()
            .filter(|h| status_is("logical_port", "DOWN")(h.last().and_then(|(_, v)| v.as_ref())))
            .count();
        if down == 200 {
            break;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let mut last: BTreeMap<String, usize> = BTreeMap::new();
            for h in history.by_key().values() {
                let v = h.last().and_then(|(_, v)| v.clone()).unwrap_or(Value::Null);
                *last.entry(v.to_string()).or_default() += 1;
            }
            panic!(
                "{down} of 200 DOWN {:.1} s after the kill: {last:?}; logs in {}",
                unix_now() - killed,
                setup.dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let by_key = history.by_key();
    assert_eq!(by_key.len(), 200);
    let mut worst: f64 = 0.0;
    for (key, writes) in &by_key {
        let values: Vec<&str> = writes
            .iter()
            .map(|(_, v)| {
                v.as_ref()
                    .and_then(|v| v["logical_port"].as_str())
                    .unwrap_or("-")
            })
            .collect();
        assert_eq!(
            values,
            vec!["UP", "DOWN"],
            "{key}: no duplicate or missing writes"
        );
        let down_at = writes[1].0;
        worst = worst.max(down_at - killed);
    }
    assert!(
        worst <= ttl + interval + 1.5,
        "a target went {worst:.2} s unpolled after the kill (TTL {ttl} + interval {interval})"
    );
    // b now polls all of them
    let mut polled = 0;
    for id in &ids {
        let (_, doc) = get_target(&http, b.port, id).await;
        if doc.get("values").is_some() {
            polled += 1;
        }
    }
    assert_eq!(polled, 200);
    eprintln!("split {share:?}; after SIGKILL every target DOWN within {worst:.2} s");
    drop(b);
}

/// `esi netsim` routers on consecutive ports from a free one.
struct Netsim(Child);

impl Drop for Netsim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bgp_pool_status_through_netconf_routers() {
    use esi_core::device::{ConfigChange, Credentials, DeviceAddress, DeviceRegistry};
    use esi_core::secret::Secret;
    use esi_netconf::{HostKeyPolicy, NetconfOptions, NetconfRegistry};
    use std::io::BufRead;

    // two simulated Junos routers over NETCONF/SSH
    let first = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_esi"))
        .args([
            "netsim",
            "--routers",
            "2",
            "--listen",
            &format!("127.0.0.1:{first}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("esi netsim starts");
    let out = child.stdout.take().expect("stdout");
    let _netsim = Netsim(child);
    let mut ports = Vec::new();
    for line in std::io::BufReader::new(out).lines().take(2) {
        let line = line.expect("netsim prints its routers");
        let port = line
            .split_whitespace()
            .nth(1)
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("netsim line {line}"));
        ports.push(port);
    }
    // the primary has the BGP neighbor in the instance; the secondary is asked with a wrong
    // password
    let registry =
        NetconfRegistry::new(NetconfOptions::default().with_host_keys(HostKeyPolicy::Insecure));
    let login = |pw: &str| Credentials::Login {
        username: "esi".into(),
        password: Secret::new(pw.to_string()),
    };
    let r1 = registry
        .connect(
            &DeviceAddress {
                host: "127.0.0.1".into(),
                port: Some(ports[0]),
            },
            &login("esi"),
        )
        .await
        .expect("r1 over NETCONF");
    r1.load_config(&ConfigChange {
        resource: "test".into(),
        merge_text: "routing-instances {\n vrf1 {\n  protocols {\n   bgp {\n    group g1 {\n     neighbor 192.168.8.1;\n    }\n   }\n  }\n }\n}\n".into(),
        ..ConfigChange::default()
    })
    .await
    .expect("commit on r1");

    let port = free_port();
    let dir = std::env::temp_dir().join(tagged("monitor-bgp"));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("serve.log");
    let daemon = Daemon {
        child: Command::new(env!("CARGO_BIN_EXE_esi"))
            .args([
                "serve",
                "--name",
                "bgp",
                "--roles",
                "monitor",
                "--devices",
                "netconf",
                "--netconf-insecure",
                "--monitoring",
                "snmp",
                "--monitor-interval",
                "1",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env_remove("ESI_ETCD_ENDPOINTS")
            .env("ESI_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("esi serve starts"),
        port,
        log,
    };
    let http = reqwest::Client::new();
    wait_http(&http, daemon.port).await;
    let end = |p: u16, pw: &str, peer: &str| json!({"host": "127.0.0.1", "port": p, "login": "esi", "password": pw, "peer_address": peer});
    let doc = post(
        &http,
        daemon.port,
        &json!({"type": "bgp_pool", "resource_type": "vpn_interfaces", "resource_id": "v1",
                "tenant_id": "t", "version": 1, "field_name": "status",
                "properties": {"instance": "vrf1",
                               "primary": end(ports[0], "esi", "192.168.8.1"),
                               "secondary": end(ports[1], "not-the-password", "192.168.8.5")},
                "syncer_properties": {"etcd": {"status": {"key": "status"}}}}),
    )
    .await;
    let id = doc["id"].as_str().expect("id").to_string();
    let want = json!({"primary": "ESTABLISHED", "secondary": "FAIL"});
    let t0 = Instant::now();
    loop {
        let (_, doc) = get_target(&http, daemon.port, &id).await;
        if doc["values"][0]["value"] == want {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "bgp_pool status {doc}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = std::fs::read_to_string(&daemon.log).unwrap_or_default();
    assert!(!text.contains("not-the-password"), "a password in the log");
}
