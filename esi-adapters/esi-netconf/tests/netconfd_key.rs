//! Key authentication against the real yuma123 netconfd behind OpenSSH, with the host key
//! checked against a known_hosts file.
//!
//! Needs `bash .ci/services/20-netconf.sh start` (prints `NETCONF_ENDPOINT`, `NETCONF_USER`,
//! `NETCONF_KEY`, `NETCONF_KNOWN_HOSTS`).

use std::path::PathBuf;

use esi_core::secret::Secret;
use esi_netconf::{Auth, HostKeyPolicy, NetconfError, Session, SessionOptions, Target, BASE_10};

const NEEDS: &str =
    "needs netconfd: bash .ci/services/20-netconf.sh start and export what it prints";

fn var(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{name} is not set ({NEEDS})"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs netconfd: bash .ci/services/20-netconf.sh start"]
async fn key_authentication_with_known_hosts() {
    let endpoint = var("NETCONF_ENDPOINT");
    let (host, port) = endpoint.rsplit_once(':').expect("HOST:PORT");
    let target = Target {
        host: host.into(),
        port: port.parse().expect("port"),
        username: var("NETCONF_USER"),
    };
    let options = SessionOptions {
        host_keys: HostKeyPolicy::KnownHosts(PathBuf::from(var("NETCONF_KNOWN_HOSTS"))),
        ..SessionOptions::default()
    };
    let key = Auth::KeyFile {
        path: PathBuf::from(var("NETCONF_KEY")),
        passphrase: None,
    };
    let mut s = Session::connect(&target, &key, &options)
        .await
        .expect("session with the key");
    assert!(s.has_capability(BASE_10));
    let reply = s
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .expect("get-config");
    assert!(reply.raw.contains("data"), "{}", reply.raw);
    s.close().await;

    // A key the server does not know: an authentication error naming the user.
    let dir = std::env::temp_dir().join(format!("esi-netconfd-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let other = russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
        .expect("key");
    let path = dir.join("other_ed25519");
    std::fs::write(
        &path,
        other
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .expect("encode")
            .as_bytes(),
    )
    .expect("write");
    let e = match Session::connect(
        &target,
        &Auth::KeyFile {
            path: path.clone(),
            passphrase: None,
        },
        &options,
    )
    .await
    {
        Ok(_) => panic!("an unknown key logged in"),
        Err(e) => e,
    };
    assert!(matches!(e, NetconfError::Auth { .. }), "{e:?}");
    // A key file that is not there is an error naming the file, not a panic.
    let missing = match Session::connect(
        &target,
        &Auth::KeyFile {
            path: dir.join("missing"),
            passphrase: Some(Secret::new("pw".into())),
        },
        &options,
    )
    .await
    {
        Ok(_) => panic!("a missing key file logged in"),
        Err(e) => e,
    };
    assert!(missing.to_string().contains("missing"), "{missing}");
    let _ = std::fs::remove_dir_all(dir);
}
