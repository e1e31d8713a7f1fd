//! Heat stopped in the middle of a stack operation (the process killed), then started again
//! (`.ci/services/30-heat.sh start` reuses its database): the call is `Unavailable` while Heat
//! is down, and the same request succeeds once Heat is back, with nothing lost.
//! Its own test binary: it stops the Heat the other tests use.

mod common;

use std::time::Duration;

use common::*;
use esi_core::exec::stack::StackOperation;
use esi_core::heat::{Heat, HeatError};
use esi_heat::OpenStackHeat;
use serde_json::json;

const SLOW: &str = "heat_template_version: 2016-10-14
parameters:
  vlan: {type: number}
resources:
  slow:
    type: OS::Heat::TestResource
    properties: {value: {get_param: vlan}, wait_secs: 6}
outputs:
  vlan: {value: {get_attr: [slow, output]}}
";

fn heat_pid() -> i32 {
    let dir = std::env::var("CI_HEAT_DIR").unwrap_or_else(|_| "/tmp/heat-ci".into());
    let path = format!("{dir}/heat.pid");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}: was Heat started by {HEAT}?"))
        .trim()
        .parse()
        .expect("pid")
}

#[tokio::test]
#[ignore = "needs heat: bash .ci/services/30-heat.sh start"]
async fn heat_killed_mid_create_is_unavailable_then_the_retry_succeeds() {
    let mut cfg = noauth();
    cfg.request_timeout = Duration::from_secs(5);
    // give up at once while Heat is down (the daemon's default waits for it: serve_heat.rs)
    cfg.retry.unavailable_patience = Duration::ZERO;
    let heat = OpenStackHeat::new(cfg).unwrap();
    let name = unique("restart");
    let req = request(&name, StackOperation::Create, SLOW, json!({"vlan": 42}));

    let pid = heat_pid();
    let (result, ()) = tokio::join!(heat.create(&req), async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // a crash, not a clean stop
        let st = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        assert!(st.map(|s| s.success()).unwrap_or(false), "kill {pid}");
    });
    let err = result.unwrap_err();
    assert!(matches!(err, HeatError::Unavailable(_)), "{err:?}");
    // still down: every call is Unavailable, quickly
    let err = heat.get(&name).await.unwrap_err();
    assert!(matches!(err, HeatError::Unavailable(_)), "{err:?}");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/services/30-heat.sh");
    let out = std::process::Command::new("bash")
        .args([script, "start"])
        .output()
        .expect("restart heat");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("HEAT_URL="),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // the job's retry: the stack exists (left in progress by the dead engine) and is updated
    let out = heat.create(&req).await.unwrap();
    assert!(!out.failed(), "{out:?}");
    assert!(out.status.ends_with("_COMPLETE"), "{out:?}");
    assert_eq!(output(&out.outputs, "vlan"), json!("42")); // TestResource outputs text
    assert_eq!(heat.delete(&name).await.unwrap().status, "DELETE_COMPLETE");
    assert_eq!(heat.get(&name).await.unwrap(), None);
}
