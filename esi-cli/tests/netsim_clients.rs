//! Third-party Junos clients drive `esi netsim`: Juniper's PyEZ (junos-eznc) and ncclient's
//! Junos handler open a session, load text with merge, commit (also confirmed) and read back.
//! Needs the venv of `.ci/services/20-netconf.sh` (it prints `ESI_PYTHON=…`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Netsim(Child);

impl Drop for Netsim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../esi-adapters/esi-netconf/tests")
        .join(name)
}

#[test]
#[ignore = "needs python venv with junos-eznc: bash .ci/services/20-netconf.sh start"]
fn pyez_and_ncclient_drive_netsim() {
    let python = std::env::var("ESI_PYTHON").unwrap_or_else(|_| {
        panic!("ESI_PYTHON is not set (needs python venv with junos-eznc: bash .ci/services/20-netconf.sh start)")
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_esi"))
        .args([
            "netsim",
            "--routers",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--user",
            "lab",
        ])
        .env("ESI_NETSIM_PASSWORD", "lab-pw")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start esi netsim");
    let stdout = child.stdout.take().expect("stdout");
    let guard = Netsim(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut routers = Vec::new();
    for _ in 0..2 {
        let line = lines.next().expect("a router line").expect("read");
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(parts.len(), 3, "{line}");
        assert!(parts[2].starts_with("SHA256:"), "{line}");
        let (host, port) = parts[1].rsplit_once(':').expect("host:port");
        routers.push((parts[0].to_string(), host.to_string(), port.to_string()));
    }
    assert_eq!(routers[0].0, "r1");
    assert_eq!(routers[1].0, "r2");
    for ((_, host, port), (script_name, marker)) in routers.iter().zip([
        ("pyez_check.py", "PYEZ OK"),
        ("ncclient_check.py", "NCCLIENT OK"),
    ]) {
        let out = Command::new(&python)
            .arg(script(script_name))
            .args([host.as_str(), port.as_str(), "lab", "lab-pw"])
            .output()
            .expect("run python");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(marker),
            "{script_name} failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(guard);
}
