//! `esi` against an etcd that requires TLS with client certificates, and one with user/password
//! authentication: each test starts its own etcd (the Debian `etcd-server` binary the etcd
//! service script installs) on free loopback ports, with certificates made by `openssl`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NEEDS: &str =
    "needs the etcd and openssl binaries: bash .ci/services/10-etcd.sh start installs etcd";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("esi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A child killed and reaped when the test ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(dir: &Path, program: &str, args: &[&str]) {
    let o = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} ({NEEDS})"));
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`.
fn certificates(dir: &Path) {
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    // rustls (webpki) only takes X.509 v3 certificates, also for the client's own: an
    // extension makes openssl write v3.
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    run(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=esi-test-ca",
        ],
    );
    for (name, cn) in [("server", "127.0.0.1"), ("client", "esi-client")] {
        run(
            dir,
            "openssl",
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(["-extfile".to_string(), format!("{name}.ext")]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(dir, "openssl", &args);
    }
}

/// Starts etcd with `extra` flags; `scheme` is that of its client URL.
fn etcd(dir: &Path, scheme: &str, extra: &[String]) -> (Reaped, String) {
    let (client, peer) = (free_port(), free_port());
    let url = format!("{scheme}://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let mut cmd = Command::new("etcd");
    // etcd reads every ETCD_* variable as a flag (and dies on those it does not know).
    for (k, _) in std::env::vars() {
        if k.starts_with("ETCD_") {
            cmd.env_remove(k);
        }
    }
    let log = std::fs::File::create(dir.join("etcd.log")).expect("log");
    let child = cmd
        .args(["--name", "t", "--data-dir"])
        .arg(dir.join("data"))
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args(["--initial-cluster", &format!("t={peer_url}")])
        .args(["--logger", "zap", "--log-outputs", "stderr"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("etcd: {e} ({NEEDS})"));
    (Reaped(child), url)
}

fn esi(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_esi"));
    c.args(args)
        .current_dir(repo())
        .env_remove("ESI_ETCD_ENDPOINTS")
        .env_remove("ESI_ETCD_USER")
        .env_remove("ESI_ETCD_PASSWORD")
        .env_remove("ESI_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("esi runs")
}

fn wait_ok(what: &str, mut f: impl FnMut() -> Output) -> Output {
    let t0 = Instant::now();
    loop {
        let o = f();
        if o.status.success() {
            return o;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
#[ignore = "needs the etcd and openssl binaries: bash .ci/services/10-etcd.sh start installs etcd"]
fn serve_and_the_client_commands_reach_an_etcd_that_requires_client_certificates() {
    let dir = tempdir("etcd-tls");
    certificates(&dir);
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let (_etcd, url) = etcd(
        &dir,
        "https",
        &[
            "--cert-file".into(),
            p("server.crt"),
            "--key-file".into(),
            p("server.key"),
            "--client-cert-auth".into(),
            "--trusted-ca-file".into(),
            p("ca.crt"),
        ],
    );
    let (ca, cert, key) = (p("ca.crt"), p("client.crt"), p("client.key"));
    let tls = [
        "--etcd-cacert",
        ca.as_str(),
        "--etcd-cert",
        cert.as_str(),
        "--etcd-key",
        key.as_str(),
    ];
    let with_tls = |cmd: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        a.extend(["--etcd".to_string(), url.clone()]);
        a.extend(tls.iter().map(|s| s.to_string()));
        a
    };
    let esi_tls = |cmd: &[&'static str]| {
        let a = with_tls(cmd);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        esi(&a, &[])
    };
    wait_ok("esi status over TLS", || esi_tls(&["status"]));
    // Without a client certificate the server refuses; without the CA the client refuses.
    let o = esi(&["status", "--etcd", &url, "--etcd-cacert", &ca], &[]);
    assert!(!o.status.success(), "no client certificate: {}", text(&o));
    let o = esi(&["get", "--etcd", &url], &[]);
    assert!(!o.status.success(), "no CA: {}", text(&o));
    // The same settings from the environment, for serve.
    let mut serve = Reaped(
        Command::new(env!("CARGO_BIN_EXE_esi"))
            .args(["serve", "--jobs", "4", "--etcd", &url])
            .current_dir(repo())
            .env("ESI_ETCD_CACERT", &ca)
            .env("ESI_ETCD_CERT", &cert)
            .env("ESI_ETCD_KEY", &key)
            .env_remove("ESI_ETCD_ENDPOINTS")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("esi serve"),
    );
    let o = esi_tls(&[
        "apply",
        "-f",
        "examples/vpn-gateway",
        "--wait",
        "--timeout",
        "120",
    ]);
    assert!(o.status.success(), "apply --wait over TLS: {}", text(&o));
    let o = esi_tls(&["get", "--output", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(rows.as_array().map(Vec::len), Some(15), "{rows}");
    assert!(matches!(serve.0.try_wait(), Ok(None)), "serve still runs");
    let _ = Command::new("kill")
        .args(["-TERM", &serve.0.id().to_string()])
        .status();
    let t0 = Instant::now();
    while matches!(serve.0.try_wait(), Ok(None)) && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        matches!(serve.0.try_wait(), Ok(Some(s)) if s.success()),
        "serve exits 0 on SIGTERM"
    );
}

#[test]
#[ignore = "needs the etcd binary: bash .ci/services/10-etcd.sh start installs etcd"]
fn the_client_commands_authenticate_to_an_etcd_with_users() {
    let dir = tempdir("etcd-auth");
    let (_etcd, url) = etcd(&dir, "http", &[]);
    let password = "pw-esi-31337";
    let etcdctl = |args: &[&str]| {
        let o = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &url])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("etcdctl: {e} ({NEEDS})"));
        (o.status.success(), text(&o))
    };
    let t0 = Instant::now();
    while !etcdctl(&["endpoint", "health"]).0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "etcd did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, out) = etcdctl(&["user", "add", &format!("root:{password}")]);
    assert!(ok, "{out}");
    let (ok, out) = etcdctl(&["auth", "enable"]);
    assert!(ok, "{out}");

    let o = esi(&["status", "--etcd", &url], &[]);
    assert!(!o.status.success(), "no user: {}", text(&o));
    let o = esi(
        &["status", "--etcd", &url, "--etcd-user", "root"],
        &[("ESI_ETCD_PASSWORD", "wrong-password-55")],
    );
    assert!(!o.status.success(), "wrong password: {}", text(&o));
    assert!(!text(&o).contains("wrong-password-55"), "{}", text(&o));
    let auth = [("ESI_ETCD_USER", "root"), ("ESI_ETCD_PASSWORD", password)];
    let o = esi(
        &["apply", "-f", "examples/vpn-gateway", "--etcd", &url],
        &auth,
    );
    assert!(o.status.success(), "apply as root: {}", text(&o));
    assert!(!text(&o).contains(password));
    let o = esi(&["get", "--output", "json", "--etcd", &url], &auth);
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(rows.as_array().map(Vec::len), Some(15), "{rows}");
}
