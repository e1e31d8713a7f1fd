//! `esi netsim` routers served in-process: key authentication, the device map (address
//! override and pinned host key, errors naming the router as the resources do), and state
//! kept in a directory across restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use esi_core::device::{
    ConfigChange, Credentials, DeviceAddress, DeviceError, DeviceRegistry, SimRouter,
};
use esi_core::secret::Secret;
use esi_netconf::netsim::{Netsim, NetsimOptions};
use esi_netconf::{DeviceMap, HostKeyPolicy, NetconfOptions, NetconfRegistry};
use russh::keys::{Algorithm, PrivateKey};

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("esi-netsim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

fn write_key(dir: &Path, name: &str) -> (PathBuf, PrivateKey) {
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("key");
    let path = dir.join(name);
    std::fs::write(
        &path,
        key.to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .expect("encode")
            .as_bytes(),
    )
    .expect("write key");
    (path, key)
}

fn login(password: &str) -> Credentials {
    Credentials::Login {
        username: "esi".into(),
        password: Secret::new(password.into()),
    }
}

fn change(text: &str) -> ConfigChange {
    ConfigChange {
        resource: "test/1".into(),
        merge_text: text.into(),
        ..Default::default()
    }
}

fn fast(o: NetconfOptions) -> NetconfOptions {
    let mut o = o;
    o.session.connect_timeout = Duration::from_secs(5);
    o.session.rpc_timeout = Duration::from_secs(5);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_authentication_through_the_device_map() {
    let dir = tempdir("keys");
    let (key_path, key) = write_key(&dir, "client_ed25519");
    let (other_path, _) = write_key(&dir, "other_ed25519");
    let sim = Netsim::start(
        vec![Arc::new(SimRouter::new("192.0.2.21", "192.0.2.21", 830))],
        "127.0.0.1:0".parse().expect("addr"),
        NetsimOptions {
            password: Secret::new("not-the-key".into()),
            authorized_keys: vec![key.public_key().clone()],
            ..NetsimOptions::default()
        },
    )
    .await
    .expect("netsim");
    let router = &sim.routers()[0];
    // exactly the line esi netsim prints, as a device map
    let map = DeviceMap::parse(&sim.listing(), "listing").expect("map");
    let entry = map.lookup("192.0.2.21", 830).expect("mapped");
    assert_eq!(entry.port, router.addr().port());
    assert_eq!(
        entry.fingerprint.as_deref(),
        Some(router.fingerprint().as_str())
    );
    let address = DeviceAddress {
        host: "192.0.2.21".into(),
        port: Some(830),
    };

    // The authorized key logs in (the resource's password is not the router's).
    let mut options = fast(
        NetconfOptions::default()
            .with_host_keys(HostKeyPolicy::Fingerprints(Vec::new()))
            .with_device_map(map.clone()),
    );
    options.key_file = Some((key_path, None));
    let registry = NetconfRegistry::new(options);
    let device = registry
        .connect(&address, &login("wrong"))
        .await
        .expect("device");
    device
        .load_config(&change("interfaces { ae0 { unit 7 { vlan-id 7; } } }"))
        .await
        .expect("committed with the key");
    assert!(
        router.running_text().contains("vlan-id 7;"),
        "{}",
        router.running_text()
    );
    registry.close_all().await;

    // Another key is refused: a typed error naming the router as the resources do.
    let mut options = fast(
        NetconfOptions::default()
            .with_host_keys(HostKeyPolicy::Fingerprints(Vec::new()))
            .with_device_map(map),
    );
    options.key_file = Some((other_path, None));
    let registry = NetconfRegistry::new(options);
    let device = registry
        .connect(&address, &login("wrong"))
        .await
        .expect("device");
    let e = device
        .load_config(&change("interfaces { ae0 { unit 8 { vlan-id 8; } } }"))
        .await
        .expect_err("unknown key");
    match &e {
        DeviceError::AuthenticationFailed { device, username } => {
            assert!(device.starts_with("192.0.2.21:830"), "{device}");
            assert_eq!(username, "esi");
        }
        other => panic!("{other:?}"),
    }
    assert!(!router.running_text().contains("vlan-id 8;"));
    assert_eq!(router.lock_holder().await, None);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_map_pinning_another_key_is_a_host_key_error_naming_the_router() {
    let sim = Netsim::start(
        vec![
            Arc::new(SimRouter::new("192.0.2.31", "192.0.2.31", 830)),
            Arc::new(SimRouter::new("192.0.2.32", "192.0.2.32", 830)),
        ],
        "127.0.0.1:0".parse().expect("addr"),
        NetsimOptions::default(),
    )
    .await
    .expect("netsim");
    let (a, b) = (&sim.routers()[0], &sim.routers()[1]);
    let text = format!("192.0.2.31 {} {}\n", a.addr(), b.fingerprint());
    let registry = NetconfRegistry::new(fast(
        NetconfOptions::default()
            .with_host_keys(HostKeyPolicy::Fingerprints(Vec::new()))
            .with_device_map(DeviceMap::parse(&text, "map").expect("map")),
    ));
    let device = registry
        .connect(
            &DeviceAddress {
                host: "192.0.2.31".into(),
                port: None,
            },
            &login("esi"),
        )
        .await
        .expect("device");
    let e = device
        .load_config(&change("system { host-name x; }"))
        .await
        .expect_err("mismatch");
    match &e {
        DeviceError::HostKeyRejected { device, reason } => {
            assert!(device.starts_with("192.0.2.31:830"), "{device}");
            assert!(reason.contains(&a.fingerprint()), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // nothing reached the router behind the address
    assert!(a.running_text().trim().is_empty());
    assert_eq!(a.commits().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_directory_keeps_host_keys_and_configurations_across_restarts() {
    let dir = tempdir("state");
    let start = |dir: PathBuf| async move {
        Netsim::start(
            vec![Arc::new(SimRouter::new("r1", "127.0.0.1", 0))],
            "127.0.0.1:0".parse().expect("addr"),
            NetsimOptions {
                state_dir: Some(dir),
                ..NetsimOptions::default()
            },
        )
        .await
        .expect("netsim")
    };
    let sim = start(dir.clone()).await;
    let fingerprint = sim.routers()[0].fingerprint();
    let registry = NetconfRegistry::new(fast(
        NetconfOptions::default()
            .with_host_keys(HostKeyPolicy::Fingerprints(vec![fingerprint.clone()])),
    ));
    let addr = sim.routers()[0].addr();
    let device = registry
        .connect(
            &DeviceAddress {
                host: addr.ip().to_string(),
                port: Some(addr.port()),
            },
            &login("esi"),
        )
        .await
        .expect("device");
    device
        .load_config(&change(
            "interfaces { ae0 { unit 9 { vlan-id 9; } } }\nsystem { root-authentication { encrypted-password \"$6$abc\"; } }",
        ))
        .await
        .expect("commit");
    registry.close_all().await;
    drop(sim);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["r1.key", "r1.conf"] {
            let mode = std::fs::metadata(dir.join(f))
                .expect(f)
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} is private: {mode:o}");
        }
    }

    // Restarted on the same directory: same host key, same running configuration.
    let again = start(dir.clone()).await;
    let r = &again.routers()[0];
    assert_eq!(r.fingerprint(), fingerprint);
    assert!(
        r.running_text().contains("vlan-id 9;"),
        "{}",
        r.running_text()
    );
    assert!(
        r.sim().running().to_text(false).contains("$6$abc"),
        "the secret is kept in the saved state"
    );
    // A corrupt state file is a typed error naming the file, not a panic.
    drop(again);
    std::fs::write(dir.join("r1.conf"), "interfaces { ae0 {").expect("write");
    let e = Netsim::start(
        vec![Arc::new(SimRouter::new("r1", "127.0.0.1", 0))],
        "127.0.0.1:0".parse().expect("addr"),
        NetsimOptions {
            state_dir: Some(dir.clone()),
            ..NetsimOptions::default()
        },
    )
    .await
    .expect_err("corrupt state");
    assert!(e.to_string().contains("r1.conf"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vrrp_check_confirms_active_groups_and_cancels_a_group_stuck_in_init() {
    use esi_netconf::{AllOf, ConfirmedCommit, HealthCheck, InterfacesUp, VrrpActive};
    let sim = Netsim::start(
        vec![Arc::new(SimRouter::new("r1", "127.0.0.1", 0))],
        "127.0.0.1:0".parse().expect("addr"),
        NetsimOptions::default(),
    )
    .await
    .expect("netsim");
    let r = &sim.routers()[0];
    let vrrp = |unit: u32| {
        format!(
            "interfaces {{ ae0 {{ unit {unit} {{ vlan-id {unit}; family inet {{ address 10.0.{unit}.2/24 {{ vrrp-group {unit} {{ virtual-address 10.0.{unit}.1; priority 200; }} }} }} }} }} }}"
        )
    };
    let checked = |check: Arc<dyn HealthCheck>| {
        let mut o = fast(
            NetconfOptions::default()
                .with_host_keys(HostKeyPolicy::Fingerprints(vec![r.fingerprint()])),
        );
        o.confirmed = Some(ConfirmedCommit {
            timeout: Duration::from_secs(120),
            check,
        });
        NetconfRegistry::new(o)
    };
    let address = DeviceAddress {
        host: "127.0.0.1".into(),
        port: Some(r.addr().port()),
    };
    // An active group: confirmed.
    let both: Arc<dyn HealthCheck> = Arc::new(AllOf::new(vec![
        Arc::new(InterfacesUp),
        Arc::new(VrrpActive),
    ]));
    assert_eq!(both.name(), "interfaces-up+vrrp-active");
    let registry = checked(both);
    let device = registry
        .connect(&address, &login("esi"))
        .await
        .expect("device");
    device
        .load_config(&change(&vrrp(5)))
        .await
        .expect("confirmed");
    assert!(r.running_text().contains("vrrp-group 5"));
    assert!(!r.commit_pending().await);
    registry.close_all().await;

    // A group whose interface is down stays in init: the VRRP check alone catches it, the
    // commit is cancelled and the error names the check and the group.
    r.sim().set_interface_down("ae0.6", true);
    let registry = checked(Arc::new(VrrpActive));
    let device = registry
        .connect(&address, &login("esi"))
        .await
        .expect("device");
    let e = device
        .load_config(&change(&vrrp(6)))
        .await
        .expect_err("init group");
    match &e {
        DeviceError::HealthCheckFailed { check, message, .. } => {
            assert_eq!(check, "vrrp-active");
            assert!(
                message.contains("vrrp group 6 on ae0.6 is init"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !r.running_text().contains("vrrp-group 6"),
        "{}",
        r.running_text()
    );
    assert!(r.running_text().contains("vrrp-group 5"));
    assert!(!r.commit_pending().await);
    assert_eq!(r.lock_holder().await, None);
}
