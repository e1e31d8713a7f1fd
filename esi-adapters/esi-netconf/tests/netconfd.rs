//! esi-netconf against the real yuma123 netconfd behind OpenSSH (RFC 6241, candidate).
//! Start it with `bash .ci/services/20-netconf.sh start` and export the variables it prints.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use esi_core::device::{
    load_with_retry, ConfigChange, Credentials, DeviceAddress, DeviceError, DeviceRegistry,
    RetryPolicy,
};
use esi_core::secret::Secret;
use esi_netconf::framing::Framing;
use esi_netconf::{
    Auth, ConfirmedCommit, FnCheck, HostKeyPolicy, NetconfOptions, NetconfRegistry, Profile,
    ProfileChoice, Session, SessionOptions, Target,
};

const IGNORE: &str = "needs netconfd: bash .ci/services/20-netconf.sh start";

/// netconfd has one datastore: the tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

struct Server {
    host: String,
    port: u16,
    user: String,
    pass: String,
}

fn server() -> Server {
    let ep = std::env::var("NETCONF_ENDPOINT")
        .unwrap_or_else(|_| panic!("NETCONF_ENDPOINT is not set ({IGNORE})"));
    let (host, port) = ep
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("NETCONF_ENDPOINT={ep} is not host:port"));
    Server {
        host: host.into(),
        port: port.parse().expect("NETCONF_ENDPOINT port"),
        user: std::env::var("NETCONF_USER")
            .unwrap_or_else(|_| panic!("NETCONF_USER is not set ({IGNORE})")),
        pass: std::env::var("NETCONF_PASS")
            .unwrap_or_else(|_| panic!("NETCONF_PASS is not set ({IGNORE})")),
    }
}

impl Server {
    fn target(&self) -> Target {
        Target {
            host: self.host.clone(),
            port: self.port,
            username: self.user.clone(),
        }
    }
    fn auth(&self) -> Auth {
        Auth::Password(Secret::new(self.pass.clone()))
    }
    fn address(&self) -> DeviceAddress {
        DeviceAddress {
            host: self.host.clone(),
            port: Some(self.port),
        }
    }
    fn login(&self) -> Credentials {
        Credentials::Login {
            username: self.user.clone(),
            password: Secret::new(self.pass.clone()),
        }
    }
    async fn session(&self, base11: bool) -> Session {
        Session::connect(&self.target(), &self.auth(), &session_options(base11))
            .await
            .expect("NETCONF session")
    }
    async fn running(&self) -> String {
        let mut s = self.session(true).await;
        let r = s
            .rpc("<get-config><source><running/></source></get-config>")
            .await
            .unwrap();
        s.close().await;
        r.raw
    }
}

fn session_options(base11: bool) -> SessionOptions {
    SessionOptions {
        host_keys: HostKeyPolicy::Insecure,
        connect_timeout: Duration::from_secs(10),
        rpc_timeout: Duration::from_secs(10),
        base11,
    }
}

fn options() -> NetconfOptions {
    NetconfOptions {
        session: session_options(true),
        ..Default::default()
    }
}

fn unit_xml(ifname: &str, unit: u32, vlan: u32) -> String {
    format!("<interfaces xmlns=\"urn:esi:test\"><interface><name>{ifname}</name><unit><name>{unit}</name><description>esi {ifname}</description><vlan-id>{vlan}</vlan-id></unit></interface></interfaces>")
}

fn change(resource: &str, xml: String) -> ConfigChange {
    ConfigChange {
        resource: resource.into(),
        merge_text: xml,
        ..Default::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
#[ignore = "needs netconfd: bash .ci/services/20-netconf.sh start"]
fn sessions_with_both_framings() {
    let _g = serial();
    let srv = server();
    rt().block_on(async {
        for (base11, framing) in [(true, Framing::Chunked), (false, Framing::EndOfMessage)] {
            let mut s = srv.session(base11).await;
            assert_eq!(s.framing(), framing);
            assert!(s.has_capability("urn:ietf:params:netconf:capability:candidate"));
            assert!(s.session_id().is_some());
            let r = s
                .rpc("<get-config><source><running/></source></get-config>")
                .await
                .unwrap();
            assert!(r.raw.contains("<data"), "{}", r.raw);
            // message ids keep matching over several RPCs
            for _ in 0..3 {
                s.rpc("<get-config><source><candidate/></source></get-config>")
                    .await
                    .unwrap();
            }
            s.close().await;
        }
    });
}

#[test]
#[ignore = "needs netconfd: bash .ci/services/20-netconf.sh start"]
fn generic_payload_edit_config_and_errors() {
    let _g = serial();
    let srv = server();
    rt().block_on(async {
        let reg = NetconfRegistry::new(options());
        let dev = reg.connect(&srv.address(), &srv.login()).await.unwrap();
        dev.load_config(&change("gw/generic", unit_xml("ge-0/0/1", 122, 122)))
            .await
            .unwrap();
        let cfg = dev.configuration().await.unwrap();
        assert!(cfg.contains("<vlan-id>122</vlan-id>"), "{cfg}");
        // a range violation: typed load error naming device and resource, lock released
        let e = dev
            .load_config(&change("gw/bad", unit_xml("ge-0/0/1", 123, 5000)))
            .await
            .unwrap_err();
        assert!(
            matches!(e, DeviceError::LoadFailed { ref resource, ref message, .. } if resource == "gw/bad" && message.starts_with("edit-config")),
            "{e}"
        );
        let mut other = srv.session(true).await;
        other
            .rpc("<lock><target><candidate/></target></lock>")
            .await
            .expect("lock must be free after the failed transaction");
        other.rpc("<unlock><target><candidate/></target></unlock>").await.unwrap();
        other.close().await;
        // Junos text on a generic device, and the Junos RPC forced onto it: Unsupported
        let e = dev
            .load_config(&ConfigChange {
                resource: "gw/text".into(),
                merge_text: "interfaces { ae0 { unit 5 { vlan-id 5; } } }".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(e, DeviceError::Unsupported { .. }), "{e}");
        let mut o = options();
        o.profile = ProfileChoice::Force(Profile::Junos);
        let junos = NetconfRegistry::new(o);
        let e = junos
            .connect(&srv.address(), &srv.login())
            .await
            .unwrap()
            .load_config(&ConfigChange {
                resource: "gw/junos".into(),
                merge_text: "interfaces { ae0 { unit 5 { vlan-id 5; } } }".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(e, DeviceError::Unsupported { ref rpc, .. } if rpc == "load-configuration"),
            "{e}"
        );
        assert!(!e.is_retryable());
        junos.close_all().await;
        reg.close_all().await;
    });
}

#[test]
#[ignore = "needs netconfd: bash .ci/services/20-netconf.sh start"]
fn lock_contention_then_success_within_the_budget() {
    let _g = serial();
    let srv = server();
    rt().block_on(async {
        let mut holder = srv.session(true).await;
        holder
            .rpc("<lock><target><candidate/></target></lock>")
            .await
            .unwrap();
        let reg = NetconfRegistry::new(options());
        let dev = reg.connect(&srv.address(), &srv.login()).await.unwrap();
        let c = change("gw/lock", unit_xml("ge-0/0/2", 7, 7));
        let e = dev.load_config(&c).await.unwrap_err();
        assert!(matches!(e, DeviceError::LockDenied { .. }), "{e}");
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            holder
                .rpc("<unlock><target><candidate/></target></unlock>")
                .await
                .unwrap();
            holder.close().await;
        });
        let t = std::time::Instant::now();
        load_with_retry(
            dev.as_ref(),
            &c,
            RetryPolicy {
                budget: Duration::from_secs(15),
                interval: Duration::from_millis(300),
            },
        )
        .await
        .unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(900),
            "{:?}",
            t.elapsed()
        );
        release.await.unwrap();
        assert!(srv.running().await.contains("<name>ge-0/0/2</name>"));
        reg.close_all().await;
    });
}

#[test]
#[ignore = "needs netconfd: bash .ci/services/20-netconf.sh start"]
fn confirmed_commit_confirmed_and_cancelled() {
    let _g = serial();
    let srv = server();
    rt().block_on(async {
        let mut o = options();
        o.confirmed = Some(ConfirmedCommit {
            timeout: Duration::from_secs(30),
            check: Arc::new(FnCheck::new("unit-3-forbidden", |ifs: &[String]| {
                let _ = ifs;
                Ok(())
            })),
        });
        let reg = NetconfRegistry::new(o);
        let dev = reg.connect(&srv.address(), &srv.login()).await.unwrap();
        dev.load_config(&change("gw/confirmed", unit_xml("ge-0/0/3", 3, 3)))
            .await
            .unwrap();
        assert!(srv.running().await.contains("<name>ge-0/0/3</name>"));
        reg.close_all().await;
        // a failing check: cancel-commit, the running configuration is as before
        let mut o = options();
        o.confirmed = Some(ConfirmedCommit {
            timeout: Duration::from_secs(30),
            check: Arc::new(FnCheck::new("always-fails", |_: &[String]| {
                Err("probe says no".to_string())
            })),
        });
        let reg = NetconfRegistry::new(o);
        let dev = reg.connect(&srv.address(), &srv.login()).await.unwrap();
        let e = dev
            .load_config(&change("gw/cancelled", unit_xml("ge-0/0/4", 4, 4)))
            .await
            .unwrap_err();
        assert!(
            matches!(e, DeviceError::HealthCheckFailed { ref check, ref resource, .. } if check == "always-fails" && resource == "gw/cancelled"),
            "{e}"
        );
        let running = srv.running().await;
        assert!(!running.contains("<name>ge-0/0/4</name>"), "{running}");
        assert!(running.contains("<name>ge-0/0/3</name>"), "{running}");
        reg.close_all().await;
    });
}

#[test]
#[ignore = "needs netconfd: bash .ci/services/20-netconf.sh start"]
fn session_dropped_before_confirming_is_rolled_back() {
    let _g = serial();
    let srv = server();
    rt().block_on(async {
        let mut s = srv.session(true).await;
        s.rpc("<lock><target><candidate/></target></lock>")
            .await
            .unwrap();
        s.rpc(&format!(
            "<edit-config><target><candidate/></target><config>{}</config></edit-config>",
            unit_xml("ge-0/0/5", 5, 5)
        ))
        .await
        .unwrap();
        s.rpc("<commit><confirmed/><confirm-timeout>120</confirm-timeout></commit>")
            .await
            .unwrap();
        assert!(srv.running().await.contains("<name>ge-0/0/5</name>"));
        s.abort().await;
        let mut rolled_back = false;
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if !srv.running().await.contains("<name>ge-0/0/5</name>") {
                rolled_back = true;
                break;
            }
        }
        assert!(
            rolled_back,
            "netconfd kept the unconfirmed commit after the session dropped"
        );
    });
}
