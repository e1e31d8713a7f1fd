//! Against real agents: Net-SNMP snmpd and snmpsim started by `.ci/services/40-snmp.sh`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use esi_core::collector::{Clock, Collector, CollectorConfig, MonitoringWrite, SystemClock};
use esi_snmp::{
    known, SnmpAuth, SnmpClient, SnmpConfig, SnmpError, SnmpRegistry, SnmpRoute, SnmpValue,
    V3Credentials,
};
use serde_json::{json, Value};

const NEEDS: &str = "needs snmp agents: bash .ci/services/40-snmp.sh start";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set ({NEEDS})"))
}
fn addr(name: &str) -> SocketAddr {
    env(name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not host:port"))
}
fn fast() -> SnmpConfig {
    SnmpConfig {
        timeout: Duration::from_millis(500),
        retries: 1,
        ..SnmpConfig::default()
    }
}
fn v3(context: &str) -> V3Credentials {
    V3Credentials::sha_aes(
        env("SNMP_V3_USER"),
        env("SNMP_V3_AUTH"),
        env("SNMP_V3_PRIV"),
    )
    .with_context(context)
}

/// `snmpset` on snmpsim's writable ifOperStatus row.
fn set_oper_status(index: u32, value: u32) {
    let out = std::process::Command::new("snmpset")
        .args(["-v2c", "-c", "public", "-r", "1", "-t", "2", "-On"])
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

#[tokio::test]
#[ignore = "needs snmp agents: bash .ci/services/40-snmp.sh start"]
async fn v2c_get_getnext_walk_on_snmpd_and_snmpsim() {
    let d = SnmpClient::new(
        addr("SNMPD_ENDPOINT"),
        SnmpAuth::community("public"),
        fast(),
    );
    let up = d.get(&[known::sys_uptime()]).await.unwrap();
    assert!(matches!(up[0].1, SnmpValue::Timeticks(_)), "{up:?}");
    let (next, _) = d.get_next(&known::if_name()).await.unwrap();
    assert!(next.starts_with(&known::if_name()), "{next}");
    let names = d.walk(&known::if_name()).await.unwrap();
    assert!(
        names
            .iter()
            .any(|(_, v)| v.as_text().as_deref() == Some("lo")),
        "{names:?}"
    );

    let s = SnmpClient::new(
        addr("SNMPSIM_ENDPOINT"),
        SnmpAuth::community("public"),
        fast(),
    );
    let names = s.walk(&known::if_name()).await.unwrap();
    let texts: Vec<String> = names.iter().filter_map(|(_, v)| v.as_text()).collect();
    assert_eq!(texts[0], "xe-0/0/3.1025");
    assert!(texts.len() >= 8, "{texts:?}");
    // a walk at the end of the MIB stops on endOfMibView
    let tail = s.walk(&known::if_hc_out_octets()).await.unwrap();
    assert_eq!(tail.len(), texts.len());
    assert!(tail
        .iter()
        .all(|(_, v)| matches!(v, SnmpValue::Counter64(_))));
    let bulk = s.get_bulk(&[known::if_oper_status()], 0, 3).await.unwrap();
    assert_eq!(bulk.len(), 3);
    assert_eq!(bulk[0].0, known::if_oper_status().child(1));
}

#[tokio::test]
#[ignore = "needs snmp agents: bash .ci/services/40-snmp.sh start"]
async fn v3_auth_priv_get_and_walk() {
    let d = SnmpClient::new(addr("SNMPD_ENDPOINT"), SnmpAuth::V3(v3("")), fast());
    let up = d.get(&[known::sys_uptime()]).await.unwrap();
    assert!(matches!(up[0].1, SnmpValue::Timeticks(_)), "{up:?}");
    let s = SnmpClient::new(addr("SNMPSIM_ENDPOINT"), SnmpAuth::V3(v3("public")), fast());
    let names = s.walk(&known::if_name()).await.unwrap();
    assert_eq!(names[0].1.as_text().as_deref(), Some("xe-0/0/3.1025"));
    // the v3 password never shows in Debug output
    let dbg = format!("{s:?} {:?}", v3("public"));
    assert!(!dbg.contains(&env("SNMP_V3_AUTH")) && !dbg.contains(&env("SNMP_V3_PRIV")));
}

#[tokio::test]
#[ignore = "needs snmp agents: bash .ci/services/40-snmp.sh start"]
async fn bad_credentials_and_dead_agents_are_typed_errors() {
    let wrong = SnmpClient::new(
        addr("SNMPD_ENDPOINT"),
        SnmpAuth::community("nope-secret"),
        fast(),
    );
    let e = wrong.get(&[known::sys_uptime()]).await.unwrap_err();
    assert!(matches!(e, SnmpError::Timeout { attempts: 2, .. }), "{e}");
    assert!(!e.to_string().contains("nope-secret"));
    let mut bad = v3("");
    bad.auth_password = esi_core::secret::Secret::new("wrongpass99".into());
    let c = SnmpClient::new(addr("SNMPD_ENDPOINT"), SnmpAuth::V3(bad), fast());
    let e = c.get(&[known::sys_uptime()]).await.unwrap_err();
    assert!(!e.is_unreachable(), "{e}");
    assert!(!e.to_string().contains("wrongpass99"), "{e}");
    let dead = SnmpClient::new(
        "127.0.0.1:16109".parse().unwrap(),
        SnmpAuth::community("public"),
        fast(),
    );
    let e = dead.get(&[known::sys_uptime()]).await.unwrap_err();
    assert!(e.is_unreachable(), "{e}");
}

/// Runs `collector` on real time until `done(etcd)` or `limit`, applying its writes to a map.
async fn run_until(
    collector: &Collector,
    etcd: &mut BTreeMap<String, Value>,
    limit: Duration,
    done: impl Fn(&BTreeMap<String, Value>) -> bool,
) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        for w in collector.poll(SystemClock.now()).await {
            match w {
                MonitoringWrite::Set { key, value, .. } => {
                    etcd.insert(key, value);
                }
                MonitoringWrite::Delete { key } => {
                    etcd.remove(&key);
                }
            }
        }
        if done(etcd) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

fn port_target(
    id: &str,
    device_ip: &str,
    community: &str,
    if_name: &str,
    hold: Option<f64>,
) -> Value {
    let mut etcd = json!({"status": {"key": "port"}});
    if let Some(t) = hold {
        etcd["hold_options"] = json!({"positive_status": ["UP"], "time_seconds": t});
    }
    json!({"type": "snmp_ports_status", "resource_type": "ese_physical_ports", "resource_id": id,
           "tenant_id": "t", "version": 1, "field_name": "port",
           "properties": {"community_name": community, "device_ip": device_ip, "if_name": if_name},
           "syncer_properties": {"etcd": etcd}})
}

fn key(id: &str) -> String {
    format!("/monitoring/v2.0/ese_physical_ports/{id}")
}

fn registry() -> Arc<SnmpRegistry> {
    let r = SnmpRegistry::new(fast());
    r.route(
        "10.0.0.1",
        SnmpRoute {
            addr: addr("SNMPSIM_ENDPOINT"),
            auth: None,
        },
    );
    r.route(
        "10.0.0.3",
        SnmpRoute {
            addr: addr("SNMPSIM_ENDPOINT"),
            auth: Some(SnmpAuth::V3(v3("public"))),
        },
    );
    r.route(
        "10.0.0.2",
        SnmpRoute {
            addr: addr("SNMPD_ENDPOINT"),
            auth: None,
        },
    );
    r.route(
        "10.0.0.4",
        SnmpRoute {
            addr: addr("SNMPD_ENDPOINT"),
            auth: Some(SnmpAuth::V3({
                let mut c = v3("");
                c.auth_password = esi_core::secret::Secret::new("wrongpass99".into());
                c
            })),
        },
    );
    r.route(
        "10.0.0.9",
        SnmpRoute {
            addr: "127.0.0.1:16109".parse().unwrap(),
            auth: None,
        },
    );
    Arc::new(r)
}

fn collector(registry: Arc<SnmpRegistry>, interval: f64) -> Collector {
    Collector::new(
        registry,
        Arc::new(SystemClock),
        CollectorConfig {
            interval_secs: interval,
            fail_threshold: 2,
            ..CollectorConfig::default()
        },
    )
}

#[tokio::test]
#[ignore = "needs snmp agents: bash .ci/services/40-snmp.sh start"]
async fn port_target_goes_up_then_down_after_snmpset_v2c_and_v3() {
    // rows 4 (xe-0/0/3.1027, v2c) and 5 (xe-0/0/3.1028, v3) belong to this test
    set_oper_status(4, 1);
    set_oper_status(5, 1);
    let reg = registry();
    let c = collector(reg.clone(), 1.0);
    c.register(&port_target(
        "p4",
        "10.0.0.1",
        "public",
        "xe-0/0/3.1027",
        Some(30.0),
    ))
    .unwrap();
    c.register(&port_target(
        "p5",
        "10.0.0.3",
        "ignored",
        "xe-0/0/3.1028",
        Some(30.0),
    ))
    .unwrap();
    let device = c
        .register(
            &json!({"type": "snmp_device", "resource_type": "ese_devices",
        "resource_id": "d1", "version": 1, "field_name": "switch",
        "properties": {"community_name": "public", "device_ip": "10.0.0.2"},
        "syncer_properties": {"etcd": {"status": {"key": "switch"}}}}),
        )
        .unwrap();
    assert_eq!(device["properties"]["community_name"], json!("******"));
    let mut etcd = BTreeMap::new();
    run_until(&c, &mut etcd, Duration::from_secs(10), |e| e.len() == 3).await;
    assert_eq!(
        etcd.get(&key("p4")),
        Some(&json!({"port": "UP", "version": 1}))
    );
    assert_eq!(
        etcd.get(&key("p5")),
        Some(&json!({"port": "UP", "version": 1}))
    );
    assert_eq!(
        etcd.get("/monitoring/v2.0/ese_devices/d1"),
        Some(&json!({"switch": "UP", "version": 1}))
    );
    // the UP ended the hold: flipping the rows is published within one interval
    set_oper_status(4, 2);
    set_oper_status(5, 2);
    let took = run_until(&c, &mut etcd, Duration::from_secs(5), |e| {
        e.get(&key("p4")) == Some(&json!({"port": "DOWN", "version": 1}))
            && e.get(&key("p5")) == Some(&json!({"port": "DOWN", "version": 1}))
    })
    .await;
    assert_eq!(etcd[&key("p4")]["port"], json!("DOWN"));
    assert_eq!(etcd[&key("p5")]["port"], json!("DOWN"));
    assert!(took <= Duration::from_millis(1600), "took {took:?}");
    // one socket per agent and credentials, whatever the number of targets
    assert_eq!(reg.session_count(), 3);
    set_oper_status(4, 1);
    set_oper_status(5, 1);
}

#[tokio::test]
#[ignore = "needs snmp agents: bash .ci/services/40-snmp.sh start"]
async fn down_port_is_withheld_inside_the_hold_window() {
    set_oper_status(6, 2); // xe-0/0/3.1029
    let c = collector(registry(), 0.5);
    c.register(&port_target(
        "p6",
        "10.0.0.1",
        "public",
        "xe-0/0/3.1029",
        Some(3.0),
    ))
    .unwrap();
    let mut etcd = BTreeMap::new();
    run_until(&c, &mut etcd, Duration::from_millis(1500), |e| {
        !e.is_empty()
    })
    .await;
    assert!(
        etcd.is_empty(),
        "DOWN written inside the hold window: {etcd:?}"
    );
    run_until(&c, &mut etcd, Duration::from_secs(6), |e| !e.is_empty()).await;
    assert_eq!(
        etcd.get(&key("p6")),
        Some(&json!({"port": "DOWN", "version": 1}))
    );
    let id = c.target_ids().pop().unwrap();
    let doc = c.target(&id).unwrap();
    assert_eq!(doc["values"][0]["value"], json!("DOWN"));
    assert!(c.unregister(&id));
    run_until(&c, &mut etcd, Duration::from_millis(200), |e| e.is_empty()).await;
    assert!(etcd.is_empty(), "key not deleted with the target");
}

#[tokio::test]
#[ignore = "needs snmp agents: bash .ci/services/40-snmp.sh start"]
async fn wrong_community_wrong_v3_password_and_dead_agent_fail() {
    let c = collector(registry(), 0.5);
    c.register(&port_target(
        "good",
        "10.0.0.1",
        "public",
        "xe-0/0/3.1025",
        None,
    ))
    .unwrap();
    c.register(&port_target(
        "badcomm",
        "10.0.0.2",
        "not-the-community",
        "lo",
        None,
    ))
    .unwrap();
    c.register(&port_target("badv3", "10.0.0.4", "x", "lo", None))
        .unwrap();
    c.register(&port_target(
        "dead",
        "10.0.0.9",
        "public",
        "xe-0/0/3.1025",
        None,
    ))
    .unwrap();
    c.register(&port_target("noif", "10.0.0.1", "public", "xe-9/9/9", None))
        .unwrap();
    let mut etcd = BTreeMap::new();
    let start = Instant::now();
    let mut failed_once = false;
    run_until(&c, &mut etcd, Duration::from_secs(12), |e| {
        e.values().filter(|v| v["port"] == json!("FAIL")).count() == 4
    })
    .await;
    for id in ["badcomm", "badv3", "dead", "noif"] {
        assert_eq!(
            etcd.get(&key(id)),
            Some(&json!({"port": "FAIL", "version": 1})),
            "{id}: {etcd:?}"
        );
        failed_once = true;
    }
    assert!(failed_once);
    // nothing else broke: the good target is UP
    assert_eq!(
        etcd.get(&key("good")),
        Some(&json!({"port": "UP", "version": 1}))
    );
    // FAIL only after two failed polls: never before the second interval
    assert!(start.elapsed() >= Duration::from_millis(1000));
}
