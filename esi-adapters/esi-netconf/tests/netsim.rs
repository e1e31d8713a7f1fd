//! esi-netconf's client against `esi netsim` routers served in-process (real SSH, real
//! NETCONF on loopback): the transaction, session reuse, host keys, bad passwords, dead
//! ports, a server that never answers, load errors, lock contention, confirmed commit with a
//! health check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use esi_core::device::{
    load_with_retry, ConfigChange, Credentials, DeviceAddress, DeviceError, DeviceRegistry,
    RetryPolicy, SimRouter, VrrpState,
};
use esi_core::secret::Secret;
use esi_netconf::netsim::{Netsim, NetsimOptions};
use esi_netconf::{
    Auth, ConfirmedCommit, FnCheck, HostKeyPolicy, InterfacesUp, NetconfOptions, NetconfRegistry,
    Profile, ProfileChoice, Session, SessionOptions, Target,
};

const PASSWORD: &str = "s3cret-pw";

async fn netsim(n: usize) -> Netsim {
    let routers = (1..=n)
        .map(|i| Arc::new(SimRouter::new(format!("r{i}"), "127.0.0.1", 0)))
        .collect();
    let options = NetsimOptions {
        username: "esi".into(),
        password: Secret::new(PASSWORD.into()),
        ..Default::default()
    };
    Netsim::start(routers, "127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap()
}

fn options(policy: HostKeyPolicy) -> NetconfOptions {
    NetconfOptions {
        session: SessionOptions {
            host_keys: policy,
            connect_timeout: Duration::from_secs(5),
            rpc_timeout: Duration::from_secs(2),
            base11: true,
        },
        ..Default::default()
    }
}

fn address(addr: SocketAddr) -> DeviceAddress {
    DeviceAddress {
        host: addr.ip().to_string(),
        port: Some(addr.port()),
    }
}

fn login(password: &str) -> Credentials {
    Credentials::Login {
        username: "esi".into(),
        password: Secret::new(password.into()),
    }
}

fn change(resource: &str, text: &str) -> ConfigChange {
    ConfigChange {
        resource: resource.into(),
        merge_text: text.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_session_reuse_and_reads() {
    let sim = netsim(1).await;
    let r = &sim.routers()[0];
    let reg = NetconfRegistry::new(options(HostKeyPolicy::Fingerprints(vec![r.fingerprint()])));
    let dev = reg
        .connect(&address(r.addr()), &login(PASSWORD))
        .await
        .unwrap();
    dev.load_config(&change(
        "vpn_gateway/a",
        "interfaces {\nae0 {\nunit 1025 {\nvlan-id 1025;\nfamily inet {\naddress 172.16.101.152/24 {\nvrrp-group 20 {\nvirtual-address 172.16.101.151;\npriority 105;\n }\n }\n }\n }\n }\n }",
    ))
    .await
    .unwrap();
    let mut more = change(
        "vpn_gateway/b",
        "routing-instances { V { interface ae0.1025; } }",
    );
    more.additional_commands = vec!["set routing-instances V instance-type virtual-router".into()];
    more.delete = vec![vec![
        "interfaces".into(),
        "ae0".into(),
        "unit".into(),
        "1025".into(),
        "family".into(),
        "inet".into(),
        "address".into(),
        "172.16.101.152/24".into(),
        "vrrp-group".into(),
        "20".into(),
        "priority".into(),
        "105".into(),
    ]];
    dev.load_config(&more).await.unwrap();
    let text = dev.configuration().await.unwrap();
    assert!(text.contains("vlan-id 1025;"), "{text}");
    assert!(text.contains("instance-type virtual-router;"), "{text}");
    assert!(!text.contains("priority 105"), "{text}");
    assert_eq!(text.trim(), r.running_text().trim());
    assert_eq!(r.commits().await, 2);
    // the same registry hands out the same device: one SSH session for everything
    let again = reg
        .connect(&address(r.addr()), &login(PASSWORD))
        .await
        .unwrap();
    assert_eq!(
        again.vrrp_status("ae0.1025", 20).await.unwrap(),
        VrrpState::Master
    );
    assert_eq!(
        again.interface_status("ae0.1025").await.unwrap(),
        esi_core::device::OperStatus::Up
    );
    assert!(matches!(
        again.interface_status("ae9.1").await,
        Err(DeviceError::NotConfigured { .. })
    ));
    assert_eq!(
        r.sim().rpc_log().iter().filter(|l| *l == "commit").count(),
        2
    );
    assert_eq!(r.lock_holder().await, None);
    // Debug output never shows the password
    assert!(!format!("{reg:?}").contains(PASSWORD));
    reg.close_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_key_mismatch_is_typed_and_not_retried() {
    let sim = netsim(2).await;
    let (r1, r2) = (&sim.routers()[0], &sim.routers()[1]);
    // pinned fingerprint of another router
    let reg = NetconfRegistry::new(options(HostKeyPolicy::Fingerprints(vec![r2.fingerprint()])));
    let dev = reg
        .connect(&address(r1.addr()), &login(PASSWORD))
        .await
        .unwrap();
    let e = dev.load_config(&change("x/1", "a b;")).await.unwrap_err();
    assert!(
        matches!(e, DeviceError::HostKeyRejected { ref reason, .. } if reason.contains(&r1.fingerprint())),
        "{e}"
    );
    assert!(!e.is_retryable());
    // known_hosts with r2's key recorded under r1's address: a changed key
    let dir = std::env::temp_dir().join(format!("esi-netconf-kh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kh = dir.join("known_hosts");
    let r2_line = sim
        .known_hosts()
        .lines()
        .find(|l| l.starts_with(&format!("[127.0.0.1]:{} ", r2.addr().port())))
        .unwrap()
        .to_string();
    let wrong = r2_line.replace(
        &format!("]:{} ", r2.addr().port()),
        &format!("]:{} ", r1.addr().port()),
    ) + "\n";
    std::fs::write(&kh, wrong).unwrap();
    let reg = NetconfRegistry::new(options(HostKeyPolicy::KnownHosts(kh.clone())));
    let e = reg
        .connect(&address(r1.addr()), &login(PASSWORD))
        .await
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert!(matches!(e, DeviceError::HostKeyRejected { .. }), "{e}");
    // the right known_hosts file is accepted
    std::fs::write(&kh, sim.known_hosts()).unwrap();
    let reg = NetconfRegistry::new(options(HostKeyPolicy::KnownHosts(kh)));
    reg.connect(&address(r1.addr()), &login(PASSWORD))
        .await
        .unwrap()
        .ping()
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(r1.commits().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_dead_port_are_typed_and_quick() {
    let sim = netsim(1).await;
    let r = &sim.routers()[0];
    let reg = NetconfRegistry::new(options(HostKeyPolicy::Insecure));
    let t = Instant::now();
    let e = reg
        .connect(&address(r.addr()), &login("wrong"))
        .await
        .unwrap()
        .load_config(&change("x/1", "a b;"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, DeviceError::AuthenticationFailed { ref username, .. } if username == "esi"),
        "{e}"
    );
    assert!(!e.to_string().contains("wrong"));
    assert!(t.elapsed() < Duration::from_secs(5));
    // a port nobody listens on
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let t = Instant::now();
    let e = reg
        .connect(
            &DeviceAddress {
                host: "127.0.0.1".into(),
                port: Some(port),
            },
            &login(PASSWORD),
        )
        .await
        .unwrap()
        .load_config(&change("x/1", "a b;"))
        .await
        .unwrap_err();
    assert!(matches!(e, DeviceError::Unreachable { .. }), "{e}");
    assert!(e.is_retryable());
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(r.lock_holder().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out_and_leaves_no_lock() {
    let sim = netsim(1).await;
    let r = &sim.routers()[0];
    let reg = NetconfRegistry::new(options(HostKeyPolicy::Insecure));
    let dev = reg
        .connect(&address(r.addr()), &login(PASSWORD))
        .await
        .unwrap();
    dev.load_config(&change("x/1", "system { host-name a; }"))
        .await
        .unwrap();
    r.set_stall(true);
    let t = Instant::now();
    let e = dev
        .load_config(&change("x/2", "system { host-name b; }"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, DeviceError::Timeout { ref operation, .. } if operation == "discard-changes"),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    r.set_stall(false);
    // the broken session was dropped: the server released everything, a new session works
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(r.lock_holder().await, None);
    dev.load_config(&change("x/3", "system { host-name c; }"))
        .await
        .unwrap();
    assert!(r.running_text().contains("host-name c;"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_syntax_error_is_typed_and_releases_the_lock() {
    let sim = netsim(1).await;
    let r = &sim.routers()[0];
    let reg = NetconfRegistry::new(options(HostKeyPolicy::Insecure));
    let dev = reg
        .connect(&address(r.addr()), &login(PASSWORD))
        .await
        .unwrap();
    dev.load_config(&change("x/1", "system { host-name a; }"))
        .await
        .unwrap();
    let e = dev
        .load_config(&change("gw/broken", "interfaces { ae0 { unit 5 {"))
        .await
        .unwrap_err();
    match &e {
        DeviceError::LoadFailed {
            device,
            resource,
            message,
        } => {
            assert_eq!(device, &r.addr().to_string());
            assert_eq!(resource, "gw/broken");
            assert!(message.contains("syntax error"), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(!e.is_retryable());
    assert_eq!(r.lock_holder().await, None);
    assert_eq!(r.running_text(), "system {\n    host-name a;\n}\n");
    // an RPC the device lacks: the generic profile forced onto a Junos device
    let mut o = options(HostKeyPolicy::Insecure);
    o.profile = ProfileChoice::Force(Profile::Generic);
    let reg = NetconfRegistry::new(o);
    let dev = reg
        .connect(&address(r.addr()), &login(PASSWORD))
        .await
        .unwrap();
    let e = dev
        .load_config(&change("x/2", "<system><host-name>z</host-name></system>"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, DeviceError::Unsupported { ref rpc, .. } if rpc == "edit-config"),
        "{e}"
    );
    assert!(!e.is_retryable());
    assert_eq!(r.lock_holder().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_contention_is_retried_until_the_other_session_unlocks() {
    let sim = netsim(1).await;
    let r = &sim.routers()[0];
    let target = Target {
        host: "127.0.0.1".into(),
        port: r.addr().port(),
        username: "esi".into(),
    };
    let auth = Auth::Password(Secret::new(PASSWORD.into()));
    let mut other = Session::connect(&target, &auth, &SessionOptions::default())
        .await
        .unwrap();
    other.rpc("<lock-configuration/>").await.unwrap();
    let reg = NetconfRegistry::new(options(HostKeyPolicy::Insecure));
    let dev = reg
        .connect(&address(r.addr()), &login(PASSWORD))
        .await
        .unwrap();
    let first = dev
        .load_config(&change("x/1", "system { host-name a; }"))
        .await
        .unwrap_err();
    assert!(matches!(first, DeviceError::LockDenied { .. }), "{first}");
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        other.rpc("<unlock-configuration/>").await.unwrap();
        other
    });
    let policy = RetryPolicy {
        budget: Duration::from_secs(5),
        interval: Duration::from_millis(200),
    };
    load_with_retry(
        dev.as_ref(),
        &change("x/1", "system { host-name a; }"),
        policy,
    )
    .await
    .unwrap();
    assert!(r.running_text().contains("host-name a;"));
    release.await.unwrap().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_commit_confirms_or_cancels_on_the_health_check() {
    let sim = netsim(1).await;
    let r = &sim.routers()[0];
    let mut o = options(HostKeyPolicy::Insecure);
    o.confirmed = Some(ConfirmedCommit {
        timeout: Duration::from_secs(90),
        check: Arc::new(InterfacesUp),
    });
    let reg = NetconfRegistry::new(o);
    let dev = reg
        .connect(&address(r.addr()), &login(PASSWORD))
        .await
        .unwrap();
    dev.load_config(&change(
        "x/1",
        "interfaces { ae0 { unit 5 { vlan-id 5; } } }",
    ))
    .await
    .unwrap();
    assert!(!r.commit_pending().await);
    assert!(r.running_text().contains("vlan-id 5;"));
    // the same change on a unit forced down: the check fails, the commit is cancelled
    r.sim().set_interface_down("ae0.6", true);
    let e = dev
        .load_config(&change(
            "x/2",
            "interfaces { ae0 { unit 6 { vlan-id 6; } } }",
        ))
        .await
        .unwrap_err();
    match &e {
        DeviceError::HealthCheckFailed {
            check,
            resource,
            message,
            ..
        } => {
            assert_eq!(check, "interfaces-up");
            assert_eq!(resource, "x/2");
            assert!(message.contains("ae0.6"), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(!r.commit_pending().await);
    assert!(!r.running_text().contains("vlan-id 6;"));
    assert!(r.running_text().contains("vlan-id 5;"));
    assert_eq!(r.lock_holder().await, None);
    // a closure check
    let mut o = options(HostKeyPolicy::Insecure);
    o.confirmed = Some(ConfirmedCommit {
        timeout: Duration::from_secs(60),
        check: Arc::new(FnCheck::new("no-ae0.7", |ifs: &[String]| {
            if ifs.iter().any(|i| i == "ae0.7") {
                Err("ae0.7 is reserved".into())
            } else {
                Ok(())
            }
        })),
    });
    let reg = NetconfRegistry::new(o);
    let dev = reg
        .connect(&address(r.addr()), &login(PASSWORD))
        .await
        .unwrap();
    let e = dev
        .load_config(&change(
            "x/3",
            "interfaces { ae0 { unit 7 { vlan-id 7; } } }",
        ))
        .await
        .unwrap_err();
    assert!(matches!(e, DeviceError::HealthCheckFailed { ref check, .. } if check == "no-ae0.7"));
    assert!(!r.running_text().contains("vlan-id 7;"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netsim_rolls_back_an_unconfirmed_commit() {
    let routers = vec![Arc::new(SimRouter::new("r1", "127.0.0.1", 0))];
    let sim = Netsim::start(
        routers,
        "127.0.0.1:0".parse().unwrap(),
        NetsimOptions {
            minute: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let r = &sim.routers()[0];
    let target = Target {
        host: "127.0.0.1".into(),
        port: r.addr().port(),
        username: "esi".into(),
    };
    let auth = Auth::Password(Secret::new("esi".into()));
    let mut s = Session::connect(&target, &auth, &SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(s.framing(), esi_netconf::framing::Framing::EndOfMessage);
    s.rpc("<lock-configuration/>").await.unwrap();
    s.rpc("<load-configuration action=\"merge\" format=\"text\"><configuration-text>system { host-name t; }</configuration-text></load-configuration>").await.unwrap();
    s.rpc("<commit-configuration><confirmed/><confirm-timeout>1</confirm-timeout></commit-configuration>").await.unwrap();
    assert!(r.running_text().contains("host-name t;"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!r.commit_pending().await);
    assert_eq!(r.running_text(), "");
    let diff = s
        .rpc("<get-configuration compare=\"rollback\" rollback=\"1\" format=\"text\"/>")
        .await
        .unwrap();
    assert!(diff.raw.contains("host-name t"), "{}", diff.raw);
    s.close().await;
}
