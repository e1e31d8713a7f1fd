//! `EtcdStore` against real etcd: the store conformance suite on a single node and on a
//! 3-member cluster, and again after etcd restarts under the adapter (watches and leases
//! resume). Start the servers with `bash .ci/services/10-etcd.sh start` and export what it
//! prints; CI does.

use esi_core::store::{suite, PutMode, Store, StoreError, Watch, WatchEvent};
use esi_etcd::{EtcdConfig, EtcdStore};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start etcd with `bash .ci/services/10-etcd.sh start` and export its output")
    })
}

fn sleep(d: Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(tokio::time::sleep(d))
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("/esi-etcd-test/{tag}-{}-{nanos}/", std::process::id())
}

async fn connect(endpoints: &str) -> EtcdStore {
    EtcdStore::connect(
        EtcdConfig::from_list(endpoints).with_request_timeout(Duration::from_secs(3)),
    )
    .await
    .expect("connect")
}

/// The next `n` events, each within 15 s.
async fn take(w: &mut Watch, n: usize) -> Vec<WatchEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(15), w.next()).await {
            Ok(Some(Ok(ev))) => out.push(ev),
            other => panic!("watch: expected {n} events, got {out:?} then {other:?}"),
        }
    }
    out
}

async fn no_more(w: &mut Watch) {
    if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(500), w.next()).await {
        panic!("unexpected extra event {ev:?}");
    }
}

/// Puts until one succeeds (the cluster may be electing a leader).
async fn put_eventually(s: &EtcdStore, key: &str, value: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match s.put(key, value, PutMode::Overwrite, None).await {
            Ok(rev) => return rev,
            Err(e) if Instant::now() < deadline => {
                eprintln!("put {key} not yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("put {key} never succeeded: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start"]
async fn suite_passes_on_a_single_node() {
    let store = connect(&env("ETCD_ENDPOINTS")).await;
    suite::run_all(&store, &unique("suite"), &sleep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start"]
async fn namespaces_keep_systems_apart() {
    let endpoints = env("ETCD_ENDPOINTS");
    let root = unique("ns");
    let a =
        EtcdStore::connect(EtcdConfig::from_list(&endpoints).with_namespace(format!("{root}a")))
            .await
            .expect("a");
    let b =
        EtcdStore::connect(EtcdConfig::from_list(&endpoints).with_namespace(format!("{root}b")))
            .await
            .expect("b");
    a.put("/config/x", "from a", PutMode::Create, None)
        .await
        .expect("put a");
    assert_eq!(b.get("/config/x").await.expect("get b"), None);
    b.put("/config/x", "from b", PutMode::Create, None)
        .await
        .expect("put b");
    let (kvs, _) = a.range("/config/").await.expect("range a");
    assert_eq!(kvs.len(), 1);
    assert_eq!(
        (kvs[0].key.as_str(), kvs[0].value.as_str()),
        ("/config/x", "from a")
    );
    for s in [&a, &b] {
        s.delete("/config/x", None).await.expect("cleanup");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start"]
async fn unreachable_etcd_is_a_typed_error_within_the_timeout() {
    let cfg =
        EtcdConfig::from_list("http://127.0.0.1:9").with_request_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let result = match EtcdStore::connect(cfg).await {
        Err(e) => Err(e),
        Ok(s) => s.get("/x").await.map(|_| ()),
    };
    assert!(
        matches!(
            result,
            Err(StoreError::Backend {
                backend: "etcd",
                ..
            })
        ),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
}

/// A private etcd the test starts, kills and restarts by PID (the shared node stays up for the
/// other tests).
struct PrivateEtcd {
    dir: PathBuf,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl PrivateEtcd {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("esi-etcd-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self {
            dir,
            client: free_port(),
            peer: free_port(),
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }

    fn start(&mut self) {
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let mut cmd = Command::new("etcd");
        for (k, _) in std::env::vars() {
            if k.starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .args(["--name", "private", "--data-dir"])
            .arg(self.dir.join("data"))
            .args([
                "--listen-client-urls",
                &self.url(),
                "--advertise-client-urls",
                &self.url(),
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("private={peer}")])
            .args(["--log-level", "error", "--logger", "zap"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd on PATH (bash .ci/services/10-etcd.sh start installs it)");
        self.child = Some(child);
        wait_health(&self.url());
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateEtcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_health(url: &str) {
    let addr = url.trim_start_matches("http://").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = write!(s, "GET /health HTTP/1.0\r\nHost: x\r\n\r\n");
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            if body.contains("\"health\":\"true\"") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("etcd at {url} not healthy after 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start (installs the etcd binary)"]
async fn watch_and_lease_resume_after_etcd_restarts() {
    let _ = env("ETCD_ENDPOINTS");
    let mut etcd = PrivateEtcd::new();
    etcd.start();
    let store = connect(&etcd.url()).await;
    let p = "/restart/";
    let lease = store.grant(Duration::from_secs(30)).await.expect("grant");
    store
        .put("/restart-owned", "me", PutMode::Create, Some(lease))
        .await
        .expect("leased put");
    let first = store
        .put(&format!("{p}a"), "1", PutMode::Overwrite, None)
        .await
        .expect("put a");
    let mut w = store.watch(p, first).await.expect("watch");
    // Two events at one revision, to check the resume cursor inside a transaction.
    let txn = esi_core::store::Txn {
        compares: vec![],
        success: vec![
            esi_core::store::TxnOp::Put {
                key: format!("{p}b"),
                value: "2".into(),
                lease: None,
            },
            esi_core::store::TxnOp::Put {
                key: format!("{p}c"),
                value: "3".into(),
                lease: None,
            },
        ],
        failure: vec![],
    };
    store.txn(txn).await.expect("txn");
    let before = take(&mut w, 3).await;

    etcd.kill();
    let down = store
        .put(&format!("{p}lost"), "x", PutMode::Overwrite, None)
        .await;
    assert!(
        matches!(
            down,
            Err(StoreError::Backend {
                backend: "etcd",
                ..
            })
        ),
        "a write to a dead etcd is a typed error: {down:?}"
    );
    etcd.start();

    put_eventually(&store, &format!("{p}d"), "4").await;
    store
        .delete(&format!("{p}a"), None)
        .await
        .expect("delete a");
    let after = take(&mut w, 2).await;
    no_more(&mut w).await;
    let shape: Vec<(String, bool)> = before
        .iter()
        .chain(&after)
        .map(|e| {
            (
                e.key().trim_start_matches(p).to_string(),
                matches!(e, WatchEvent::Put(_)),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("a".into(), true),
            ("b".into(), true),
            ("c".into(), true),
            ("d".into(), true),
            ("a".into(), false)
        ],
        "every event once, in order, across the restart"
    );
    store
        .keep_alive(lease)
        .await
        .expect("keep-alive after restart");
    assert!(store.get("/restart-owned").await.expect("get").is_some());
    store.revoke(lease).await.expect("revoke");
    assert_eq!(store.get("/restart-owned").await.expect("get"), None);
    suite::run_all(&store, "/suite-after-restart/", &sleep).await;
}

fn service(args: &[&str]) {
    let script = env("ESI_ETCD_SERVICE");
    let status = Command::new("bash")
        .arg(Path::new(&script))
        .args(args)
        .env("FORCE", "1")
        .status()
        .expect("run the etcd service script");
    assert!(status.success(), "{script} {args:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start"]
async fn cluster_suite_and_member_loss() {
    let store = connect(&env("ETCD_CLUSTER_ENDPOINTS")).await;
    let root = unique("cluster");
    suite::run_all(&store, &format!("{root}suite-1/"), &sleep).await;

    let p = format!("{root}w/");
    let from = put_eventually(&store, &format!("{p}a"), "1").await;
    let mut w = store.watch(&p, from).await.expect("watch");
    take(&mut w, 1).await;
    let lease = store.grant(Duration::from_secs(30)).await.expect("grant");

    // Kill member 1 (SIGKILL); writes, the watch and the lease go on through the others.
    service(&["stop-member", "1"]);
    put_eventually(&store, &format!("{p}b"), "2").await;
    store
        .keep_alive(lease)
        .await
        .expect("keep-alive with a member down");
    service(&["start-member", "1"]);
    put_eventually(&store, &format!("{p}c"), "3").await;
    let got: Vec<String> = take(&mut w, 2)
        .await
        .iter()
        .map(|e| e.key().trim_start_matches(p.as_str()).to_string())
        .collect();
    assert_eq!(got, vec!["b", "c"]);
    no_more(&mut w).await;
    store.revoke(lease).await.expect("revoke");
    suite::run_all(&store, &format!("{root}suite-2/"), &sleep).await;
}
