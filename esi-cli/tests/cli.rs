//! Integration tests of the `esi` binary (one test binary for the whole CLI).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VPN_GATEWAY: &str = "vpn_gateway/b68f4fe2-48a4-480e-b752-8379c2680db3";

/// The repository root (the example worlds live there).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Runs `esi` from the repository root (relative paths in the output), without colours.
fn esi(args: &[&str]) -> Output {
    esi_env(args, &[])
}

fn esi_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_esi"));
    cmd.args(args).current_dir(repo()).env_remove("ESI_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the esi binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

// ------------------------------------------------------------------------------------------
// esi plan on the example world
// ------------------------------------------------------------------------------------------

#[test]
fn plan_text_of_the_example_world() {
    let out = esi(&["plan", "examples/vpn-gateway"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    insta::assert_snapshot!("plan_vpn_gateway_text", text);
}

#[test]
fn plan_json_of_the_example_world() {
    let out = esi(&["plan", "examples/vpn-gateway", "--output", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!("plan_vpn_gateway_json", stdout(&out));
}

#[test]
fn plan_is_deterministic() {
    let a = esi(&["plan", "examples/vpn-gateway", "--output", "json"]);
    let b = esi(&["plan", "examples/vpn-gateway", "--output", "json"]);
    assert_eq!(a.stdout, b.stdout);
}

/// The configurations the vpn_gateway's stack loads on one router, from the JSON plan.
fn gateway_configs(plan: &Value, device_ip: &str) -> Vec<String> {
    let (ty, id) = VPN_GATEWAY.split_once('/').unwrap_or_default();
    plan["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["device"]["device_ip"] == device_ip)
        .flat_map(|d| d["configs"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["resource"]["resource_type"] == ty && c["resource"]["resource_id"] == id)
        .map(|c| c["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn plan_shows_the_gateway_configuration_of_both_edge_routers() {
    let plan = json_of(&esi(&["plan", "examples/vpn-gateway", "--output", "json"]));
    // edge-a (192.0.2.11) carries the gateway on xe-0/0/2, edge-b (192.0.2.12) on xe-0/0/3.
    for (ip, port) in [("192.0.2.11", "xe-0/0/2"), ("192.0.2.12", "xe-0/0/3")] {
        let configs = gateway_configs(&plan, ip);
        assert_eq!(configs.len(), 1, "one gateway commit on {ip}: {configs:?}");
        let text = &configs[0];
        for expected in [
            format!("{port} {{\nunit 2101 {{\n"),
            "vlan-id 2101;".to_string(),
            "description \"example-corp-osaka - VPN gateway for the Osaka offices\";".into(),
            "policer VPNGW-example-corp-osaka-POLICER {".into(),
            "bandwidth-limit 10m;".into(),
            "routing-instances {\nVRF-example-corp-osaka {\n".into(),
            format!("interface {port}.2101;"),
            "route 10.30.0.0/16 next-hop 10.20.0.10;".into(),
            // the VRRP group comes from the ha_router stack, which does not exist yet
            "apply-groups (known after apply: ha_router/7c374bb1-eb56-4fa0-9007-bd7d5f999034 output vrrp_group_name);".into(),
        ] {
            assert!(text.contains(&expected), "{ip}: missing {expected:?} in\n{text}");
        }
    }
    // the device section names both routers and lists them in the text output too
    let text = stdout(&esi(&["plan", "examples/vpn-gateway"]));
    let devices = text.split("═══ devices").nth(1).expect("a device section");
    for header in [
        "esi-netconf@192.0.2.11:830  edge_router/90dcde27-9ca4-4bc7-92f6-c5c5e978d269 (edge-a)",
        "esi-netconf@192.0.2.12:830  edge_router/a32a3f54-dfd3-44e4-8a41-6e926f96e3f2 (edge-b)",
    ] {
        assert!(devices.contains(header), "missing {header}");
    }
    assert_eq!(
        devices
            .matches(&format!("load  {VPN_GATEWAY}  netconf_"))
            .count(),
        2,
        "the gateway's configuration appears once per router"
    );
}

#[test]
fn plan_of_one_resource() {
    let out = esi(&[
        "plan",
        "examples/vpn-gateway",
        "--resource",
        VPN_GATEWAY,
        "--output",
        "json",
    ]);
    assert!(out.status.success());
    let plan = json_of(&out);
    assert_eq!(plan["resources"].as_array().map(Vec::len), Some(1));
    assert_eq!(plan["resources"][0]["resource_type"], "vpn_gateway");
    let devices = plan["devices"].as_array().cloned().unwrap_or_default();
    assert_eq!(devices.len(), 2, "the two routers it touches");
    for d in &devices {
        assert_eq!(
            d["configs"].as_array().map(Vec::len),
            Some(1),
            "only its own configs"
        );
    }
    // the job still depends on the earlier jobs of the simulation
    let deps = &plan["resources"][0]["jobs"][0]["dependencies"];
    assert_eq!(deps.as_array().map(Vec::len), Some(4), "{deps}");

    let out = esi(&[
        "plan",
        "examples/vpn-gateway",
        "--resource",
        "vpn_gateway/nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vpn_gateway/nope"));
    let out = esi(&["plan", "examples/vpn-gateway", "--resource", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plan_placeholders_for_outputs_of_stacks_not_created_yet() {
    let plan = json_of(&esi(&["plan", "examples/vpn-gateway", "--output", "json"]));
    let port = plan["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["resource_id"] == "044d4328-3ee9-4bda-82c7-65688bfda859")
        .cloned()
        .unwrap_or_default();
    let stack = &port["jobs"][0]["stack"];
    assert_eq!(
        stack["jinja"]["jinja_subnets"],
        json!(["(known after apply: subnet/3d158ce2-a3df-496f-993f-638b5fdf9b3b output id)"])
    );
    let template = stack["template"].as_str().unwrap_or_default();
    assert!(
        template.contains(
            "subnet_id: (known after apply: subnet/3d158ce2-a3df-496f-993f-638b5fdf9b3b output id)"
        ),
        "{template}"
    );
    // the port's monitoring target was still resolved from the rendered stack
    let targets = port["jobs"][0]["targets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["request"]["type"], "virtual_machine_interface");
}

// ------------------------------------------------------------------------------------------
// Broken templates are reported, the plan goes on
// ------------------------------------------------------------------------------------------

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("esi-cli-{name}"));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn write_world(name: &str, world: &Value) -> PathBuf {
    let path = scratch(name).join("world.json");
    std::fs::write(&path, serde_json::to_vec_pretty(world).unwrap_or_default())
        .expect("world written");
    path
}

#[test]
fn plan_reports_a_broken_template_and_goes_on() {
    let world = json!({
        "name": "broken",
        "schemas": {"a": {"template_path": "Ca"}, "b": {"template_path": "Cb"}},
        "heat_templates": {
            "a": {"parameter_mappings": {"x": "Px"}, "template_file": "x: {% if %}"},
            "b": {"parameter_mappings": {"heat_timeout": "C2"}, "template_file": "heat_template_version: 2013-05-23\n"}
        },
        "resources": {
            "a": {"a1": {"version": 1, "body": {"id": "a1", "x": 1}}},
            "b": {"b1": {"version": 1, "body": {"id": "b1"}}}
        }
    });
    let path = write_world("broken", &world);
    let path = path.to_string_lossy();
    let out = esi(&["plan", &path]);
    assert_eq!(out.status.code(), Some(1), "errors give exit code 1");
    let text = stdout(&out);
    assert!(text.contains("1 errors"), "{text}");
    assert!(
        text.contains("ERROR a/a1: job create:heat_worker:a:a1:1:") && text.contains("template a"),
        "{text}"
    );
    assert!(
        text.contains("stack b_b1  create  template b  timeout 2 min"),
        "{text}"
    );
    let plan = json_of(&esi(&["plan", &path, "--output", "json"]));
    assert_eq!(plan["summary"]["errors"], 1);
    assert_eq!(plan["resources"][0]["jobs"][0]["stack"], Value::Null);
    assert!(plan["resources"][1]["jobs"][0]["stack"].is_object());
}

// ------------------------------------------------------------------------------------------
// Secrets
// ------------------------------------------------------------------------------------------

/// Planted values that `plan` and `expand` must both hide: they sit in secret-named fields
/// (passwords, communities, keys) of resource bodies and reach secret-named params.
const PLANTED: [&str; 3] = [
    "PLANTED-router-password-7f3a",
    "PLANTED-snmp-community-91c2",
    "PLANTED-bgp-auth-key-0d4e",
];

/// A password nested in an object param with a neutral name (`credentials.password`): every
/// output must mask it by its member name.
const PLANTED_NESTED: &str = "PLANTED-nested-password-c8a1";

/// A value behind a neutral name that only the template declares `hidden: true`. Only the plan
/// renders templates, so only the plan can know it is secret; `esi expand` prints job records.
const PLANTED_HIDDEN: &str = "PLANTED-hidden-banner-5b8e";

const SECRET_TEMPLATE: &str = r#"heat_template_version: 2013-05-23
description: "router {{ jinja_name }} (login {{ jinja_password }})"
parameters:
  device_ip: {type: string}
  device_password: {type: string, hidden: true}
  community: {type: string, hidden: true}
  login_banner: {type: string, hidden: true}
  admin_password: {type: string}
  credentials: {type: json}
  bgp_auth_key: {type: string}
resources:
  netconf_box:
    type: OS::Contrail::NetconfNamedConfigs
    properties:
      device_ip: {get_param: device_ip}
      port: 830
      username: admin
      password: {get_param: device_password}
      configs:
        - path:
            - {config_type: tag, xml_type: tag, tag: system}
            - {config_type: tag, xml_type: tag, tag: login}
          config:
            str_replace:
              template: "message \"BANNER\";\nuser admin { authentication { plain-text-password-value \"PW\"; } }\nkey KEY;\n"
              params: {BANNER: {get_param: login_banner}, PW: {get_param: admin_password}, KEY: {get_param: bgp_auth_key}}
  monitor:
    type: ESI::Monitoring::MonitoringTarget
    properties:
      type: snmp_device
      resource_type: boxes
      resource_id: box-1
      properties:
        device_ip: {get_param: device_ip}
        community_name: {get_param: community}
        password: {get_param: device_password}
        note: {get_param: login_banner}
        credentials: {get_param: credentials}
"#;

fn secret_world() -> Value {
    json!({
        "name": "secrets",
        "schemas": {"box": {"template_path": "Cbox"}},
        "heat_templates": {
            "box": {
                "parameter_mappings": {
                    "heat_timeout": "C5",
                    "device_ip": "Pip",
                    "device_password": "Ppassword",
                    "community": "Psnmp_community",
                    "login_banner": "Pbanner",
                    "admin_password": "Ppassword",
                    "credentials": "Pcredentials",
                    "bgp_auth_key": "Pauth_key",
                    "jinja_name": "Pname",
                    "jinja_password": "Ppassword"
                },
                "template_file": SECRET_TEMPLATE
            }
        },
        "resources": {
            "box": {"box-1": {"version": 1, "body": {
                "id": "box-1",
                "name": "box-one",
                "ip": "192.0.2.99",
                "password": PLANTED[0],
                "snmp_community": PLANTED[1],
                "auth_key": PLANTED[2],
                "credentials": {"username": "admin", "password": PLANTED_NESTED},
                "banner": PLANTED_HIDDEN
            }}}
        }
    })
}

#[test]
fn no_planted_secret_appears_in_any_output() {
    let path = write_world("secrets", &secret_world());
    let path = path.to_string_lossy().into_owned();
    let debug = [("ESI_LOG", "debug")];
    let runs: Vec<(Vec<&str>, bool)> = vec![
        (vec!["plan", &path], true),
        (vec!["plan", &path, "--output", "json"], true),
        (vec!["plan", &path, "--resource", "box/box-1"], true),
        (vec!["expand", &path], false),
        (vec!["expand", &path, "--output", "json"], false),
        (vec!["run", &path], false),
        (vec!["run", &path, "--output", "json"], false),
    ];
    let out = esi_env(&["expand", &path, "--output", "json"], &debug);
    assert!(
        !stdout(&out).contains(PLANTED_NESTED),
        "expand --output json redacts nested members"
    );
    for (args, is_plan) in runs {
        let out = esi_env(&args, &debug);
        let all = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{args:?} failed:\n{all}");
        assert!(
            all.contains("box-1"),
            "{args:?} printed nothing useful:\n{all}"
        );
        for planted in PLANTED.iter().chain([&PLANTED_NESTED]) {
            assert!(!all.contains(planted), "{args:?} leaks {planted}:\n{all}");
        }
        if is_plan {
            assert!(
                !all.contains(PLANTED_HIDDEN),
                "{args:?} leaks {PLANTED_HIDDEN}:\n{all}"
            );
            // the plan did render and compose what carries the secrets (masked, not dropped)
            assert!(all.contains("******"), "{args:?}:\n{all}");
            assert!(all.contains("system"), "{args:?}: no device config:\n{all}");
        }
    }
}

#[test]
fn the_secret_world_plan_masks_in_place() {
    let path = write_world("secrets-shape", &secret_world());
    let plan = json_of(&esi(&["plan", &path.to_string_lossy(), "--output", "json"]));
    let job = &plan["resources"][0]["jobs"][0];
    let params = job["stack"]["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let by_name = |n: &str| {
        params
            .iter()
            .find(|p| p["name"] == n)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by_name("login_banner")["heat"], "******", "hidden");
    assert_eq!(by_name("login_banner")["value"], "******");
    assert_eq!(by_name("admin_password")["value"], "******", "secret name");
    assert_eq!(
        by_name("credentials")["value"]["password"],
        "******",
        "nested"
    );
    assert_eq!(by_name("credentials")["value"]["username"], "admin");
    assert_eq!(
        by_name("device_ip")["value"],
        "192.0.2.99",
        "the rest stays"
    );
    let template = job["stack"]["template"].as_str().unwrap_or_default();
    assert!(
        template.contains("router box-one (login ******)"),
        "{template}"
    );
    let config = plan["devices"][0]["configs"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(config.contains("message \"******\";"), "{config}");
    assert!(
        config.contains("plain-text-password-value \"******\";"),
        "{config}"
    );
    assert!(config.contains("key ******;"), "{config}");
}

/// `esi run` on the example world, then the scripted modify and deletes: the routers'
/// configuration follows each change.
#[test]
fn run_follows_each_change_on_the_routers() {
    let world = repo().join("examples/vpn-gateway");
    let changes = world.join("changes.yaml");
    let (w, c) = (world.display().to_string(), changes.display().to_string());
    let out = esi(&["run", &w, "--changes", &c, "--output", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json_of(&out);
    let phases = doc["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 5, "load + 4 changes");
    let routers = |p: &Value| -> Vec<String> {
        p["devices"]
            .as_object()
            .expect("devices")
            .values()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let row = |p: &Value, ty: &str| -> Value {
        p["resources"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["type"] == ty)
            .cloned()
            .unwrap_or(Value::Null)
    };
    // after the load: both routers carry the gateway with the 10M policer
    let load = routers(&phases[0]);
    assert_eq!(load.len(), 2);
    assert!(
        load.iter()
            .all(|c| c.contains("bandwidth-limit 10m") && c.contains("VPNGW-")),
        "{load:?}"
    );
    assert_eq!(
        row(&phases[0], "vpn_gateway")["worker_state"],
        "CREATE_COMPLETED"
    );
    // after the modify: 50M on both, 10M gone; the gateway is at version 2
    let modified = routers(&phases[1]);
    assert!(
        modified
            .iter()
            .all(|c| c.contains("bandwidth-limit 50m") && !c.contains("bandwidth-limit 10m")),
        "{modified:?}"
    );
    assert_eq!(row(&phases[1], "vpn_gateway")["version"], 2);
    assert_eq!(
        row(&phases[1], "vpn_gateway")["worker_state"],
        "MODIFY_COMPLETED"
    );
    // after the deletes: the gateway and its interface are gone from the store and the routers
    let last = phases.last().expect("last");
    assert_eq!(row(last, "vpn_gateway")["version"], Value::Null, "deleted");
    assert!(
        routers(last).iter().all(|c| !c.contains("VPNGW-")),
        "{:?}",
        routers(last)
    );
    assert!(
        routers(last)
            .iter()
            .all(|c| c.contains("flexible-vlan-tagging")),
        "the HA interface stays"
    );
    // the top-level shape scripts rely on
    assert_eq!(doc["resources"], last["resources"]);
    for r in doc["resources"].as_array().expect("rows") {
        for field in [
            "type",
            "id",
            "version",
            "worker_state",
            "orchestration_state",
            "monitoring",
            "error",
        ] {
            assert!(r.get(field).is_some(), "missing {field} in {r}");
        }
    }
}

#[test]
fn run_text_shows_states_and_router_configuration() {
    let world = repo().join("examples/vpn-gateway").display().to_string();
    let out = esi(&["run", &world]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("CREATE_COMPLETED") && text.contains("READ_COMPLETE"),
        "{text}"
    );
    assert!(
        text.contains("router 192.0.2.11:") && text.contains("router 192.0.2.12:"),
        "{text}"
    );
    assert!(!text.contains("example-secret"), "no secret in the output");
}

/// `esi plan | head -n 1`: a reader that stops early is not an error and never a panic.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let world = repo().join("examples/vpn-gateway").display().to_string();
    for args in [
        vec!["plan", world.as_str()],
        vec!["run", world.as_str()],
        vec!["expand", world.as_str()],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_esi"))
            .args(&args)
            .current_dir(repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("esi starts");
        let mut first = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut first).expect("one line");
        } // the pipe closes here
        let out = child.wait_with_output().expect("esi ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!first.is_empty(), "{args:?}: no output");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
    }
}

// ------------------------------------------------------------------------------------------
// Issue 11: one redaction policy. A distinct secret in every place a secret can sit, grepped
// from every command's stdout and stderr, both formats, at trace level.
// ------------------------------------------------------------------------------------------

/// Every planted secret, by where it sits.
const EVERYWHERE: [(&str, &str); 11] = [
    ("hidden Heat parameter (neutral name)", "SEC01-hidden-motd"),
    ("secret-named field (password)", "SEC02-device-password"),
    ("secret-named field (token)", "SEC03-api-token"),
    ("authentication-key (neutral param)", "SEC04-bgp-md5"),
    ("pre-shared-key ascii-text (neutral param)", "SEC05-ike-psk"),
    ("secret (neutral param)", "SEC06-radius"),
    ("encrypted-password (neutral param)", "SEC07-root-hash"),
    ("SNMP community (neutral param)", "SEC08-snmp-comm"),
    ("authentication-password (neutral param)", "SEC09-usm-auth"),
    ("privacy-password (Jinja inlined)", "SEC10-usm-priv"),
    ("secret-named field (snmp community)", "SEC11-field-comm"),
];

const EVERYWHERE_TEMPLATE: &str = r#"heat_template_version: 2013-05-23
description: box {{ jinja_name }}
parameters:
  device_ip: {type: string}
  device_password: {type: string}
  motd:
    type: string
    hidden: true
  peer: {type: string}
  ike: {type: string}
  radius: {type: string}
  root: {type: string}
  comm: {type: string}
  usm: {type: string}
  api: {type: string}
resources:
  netconf_box:
    type: OS::Contrail::NetconfNamedConfigs
    properties:
      device_ip: {get_param: device_ip}
      port: 830
      username: admin
      password: {get_param: device_password}
      configs:
        - path:
            - {config_type: tag, xml_type: tag, tag: system}
          config:
            str_replace:
              template: "system { login { message \"MOTD\"; } root-authentication { encrypted-password \"ROOTHASH\"; } radius-server { 192.0.2.1 { secret RADIUSKEY; } } }\nprotocols { bgp { group g { authentication-key PEERKEY; } } }\nsecurity { ike { policy p { pre-shared-key ascii-text \"IKEKEY\"; } } }\nsnmp { community COMMNAME { authorization read-only; } v3 { usm { local-engine { user u { authentication-sha { authentication-password USMAUTH; } privacy-aes128 { privacy-password {{ jinja_priv }}; } } } } } }\n"
              params: {MOTD: {get_param: motd}, ROOTHASH: {get_param: root}, RADIUSKEY: {get_param: radius}, PEERKEY: {get_param: peer}, IKEKEY: {get_param: ike}, COMMNAME: {get_param: comm}, USMAUTH: {get_param: usm}}
  monitor:
    type: ESI::Monitoring::MonitoringTarget
    properties:
      type: snmp_device
      resource_type: boxes
      resource_id: box-1
      properties:
        device_ip: {get_param: device_ip}
        community_name: {get_param: comm}
        api: {get_param: api}
"#;

fn everywhere_world() -> Value {
    let s = |i: usize| EVERYWHERE[i].1;
    json!({
        "name": "everywhere",
        "schemas": {"box": {"template_path": "Cbox"}},
        "heat_templates": {
            "box": {
                "parameter_mappings": {
                    "heat_timeout": "C5",
                    "device_ip": "Pip",
                    "device_password": "Ppassword",
                    "motd": "Pmotd",
                    "peer": "Ppeer",
                    "ike": "Pike",
                    "radius": "Pradius",
                    "root": "Proot",
                    "comm": "Pcomm",
                    "usm": "Pusm",
                    "api": "Pauth_token",
                    "jinja_name": "Pname",
                    "jinja_priv": "Ppriv"
                },
                "template_file": EVERYWHERE_TEMPLATE
            }
        },
        "resources": {
            "box": {"box-1": {"version": 1, "body": {
                "id": "box-1", "name": "box-one", "ip": "192.0.2.98",
                "motd": s(0), "password": s(1), "auth_token": s(2), "peer": s(3),
                "ike": s(4), "radius": s(5), "root": s(6), "comm": s(7), "usm": s(8),
                "priv": s(9), "snmp_community": s(10)
            }}}
        }
    })
}

/// A temp corpus: the world, and a `jobs` case whose expectation is wrong (so its diff prints
/// the job, with every param).
fn everywhere_corpus() -> PathBuf {
    let root = scratch("everywhere-corpus");
    std::fs::create_dir_all(root.join("worlds")).expect("dir");
    std::fs::create_dir_all(root.join("cases")).expect("dir");
    std::fs::write(
        root.join("worlds/everywhere.json"),
        serde_json::to_vec(&everywhere_world()).unwrap_or_default(),
    )
    .expect("world");
    let body = everywhere_world()["resources"]["box"]["box-1"]["body"].clone();
    // expected: the job as `esi expand` prints it, masked: every secret param differs
    let world = write_world("everywhere-expected", &everywhere_world());
    let expanded = json_of(&esi(&[
        "expand",
        &world.to_string_lossy(),
        "--output",
        "json",
    ]));
    let mut job = expanded["resources"][0]["jobs"][0].clone();
    if let Some(key) = job["key"]
        .as_str()
        .map(|k| format!("{}*", k.trim_end_matches(|c| c != ':')))
    {
        job["key"] = json!(key);
    }
    let expected = json!([job]);
    let case = json!({
        "id": "everywhere/jobs-box", "kind": "jobs", "world": "everywhere",
        "event": {"action": "create", "resource_type": "box", "resource_id": "box-1",
                  "version": 1, "marked_for_deletion": false, "body": body},
        "overrides": {}, "in_flight": [],
        "expected": expected
    });
    std::fs::write(
        root.join("cases/jobs-box.json"),
        serde_json::to_vec(&case).unwrap_or_default(),
    )
    .expect("case");
    root
}

#[test]
fn no_secret_of_any_kind_appears_in_any_output() {
    let world = write_world("everywhere", &everywhere_world());
    let world = world.to_string_lossy().into_owned();
    let corpus = everywhere_corpus();
    let cases = corpus.join("cases").to_string_lossy().into_owned();
    let trace = [("ESI_LOG", "trace")];
    for output in ["text", "json"] {
        for cmd in ["expand", "plan", "run", "conformance"] {
            let target = if cmd == "conformance" { &cases } else { &world };
            let out = esi_env(&[cmd, target, "--output", output], &trace);
            let all = format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if cmd == "conformance" {
                assert_eq!(out.status.code(), Some(1), "the case fails:\n{all}");
            } else {
                assert!(out.status.success(), "{cmd} {output} failed:\n{all}");
            }
            assert!(
                all.contains("box-1"),
                "{cmd} {output} printed nothing useful:\n{all}"
            );
            assert!(
                all.contains("******"),
                "{cmd} {output} masks in place:\n{all}"
            );
            for (place, secret) in EVERYWHERE {
                assert!(
                    !all.contains(secret),
                    "{cmd} --output {output} leaks the {place} {secret}:\n{all}"
                );
            }
        }
    }
    // the plan did compose every statement, masked at the value token
    let plan = esi(&["plan", &world]);
    let text = stdout(&plan);
    for kept in [
        "pre-shared-key ascii-text \"******\"",
        "community ****** {",
        "authentication-key ******",
    ] {
        assert!(text.contains(kept), "{kept}:\n{text}");
    }
}

// ------------------------------------------------------------------------------------------
// Issue 11: one validation for expand, plan and run; exit 2 with the same message
// ------------------------------------------------------------------------------------------

fn chain_world(resources: Value) -> Value {
    json!({
        "name": "chain",
        "schemas": {
            "node": {"template_path": "Cnode", "relations": {"next_id": "node"}},
            "box": {"template_path": "Cbox"}
        },
        "heat_templates": {
            "node": {"parameter_mappings": {"heat_timeout": "C5"}, "template_file": "heat_template_version: 2013-05-23\n"},
            "box": {"parameter_mappings": {"heat_timeout": "C5", "device_ip": "Pmanagement_ip"},
                    "template_file": "heat_template_version: 2013-05-23\nparameters:\n  device_ip: {type: string}\nresources: {}\n"}
        },
        "resources": resources
    })
}

/// Runs expand, plan and run on a world file: all three exit 2 with the same message.
fn rejected_alike(name: &str, world: &Value, expect: &str) {
    let path = write_world(name, world);
    let path = path.to_string_lossy().into_owned();
    let mut messages = Vec::new();
    for cmd in ["expand", "plan", "run"] {
        let out = esi(&[cmd, &path]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{cmd} on {name}: {err}");
        assert!(err.contains(expect), "{cmd} on {name}: {err}");
        messages.push(err);
    }
    assert!(messages.windows(2).all(|w| w[0] == w[1]), "{messages:#?}");
}

#[test]
fn expand_plan_and_run_reject_the_same_worlds_with_the_same_message() {
    let mut unknown_key = chain_world(json!({"node": {"a": {"body": {"id": "a"}}}}));
    unknown_key["resourcez"] = unknown_key["resources"].take();
    unknown_key.as_object_mut().map(|o| o.remove("resources"));
    rejected_alike(
        "v-key",
        &unknown_key,
        "unknown top-level key `resourcez` (did you mean `resources`?)",
    );
    rejected_alike(
        "v-empty",
        &chain_world(json!({})),
        "the world has no resources",
    );
    rejected_alike(
        "v-type",
        &chain_world(json!({"nodes": {"a": {"body": {"id": "a"}}}})),
        "nodes/a: unknown resource type `nodes` (did you mean `node`?)",
    );
    rejected_alike(
        "v-id",
        &chain_world(json!({"node": {"a": {"body": {"id": "b"}}}})),
        "node/a: body `id` is `b`, not the key `a`",
    );
    rejected_alike(
        "v-field",
        &chain_world(json!({"box": {"x": {"body": {"id": "x"}}}})),
        "box/x: field `management_ip` is missing",
    );
    rejected_alike(
        "v-cycle",
        &chain_world(json!({"node": {
            "a": {"body": {"id": "a", "next_id": "b"}},
            "b": {"body": {"id": "b", "next_id": "a"}}
        }})),
        "relation cycle: node/a → node/b → node/a",
    );
    // a resource defined in two files of a world directory
    let dir = scratch("v-twice");
    let one = chain_world(json!({"node": {"a": {"body": {"id": "a"}}}}));
    std::fs::write(dir.join("a.json"), one.to_string()).expect("write");
    std::fs::write(
        dir.join("b.json"),
        json!({"resources": {"node": {"a": {"body": {"id": "a"}}}}}).to_string(),
    )
    .expect("write");
    for cmd in ["expand", "plan", "run"] {
        let out = esi(&[cmd, &dir.to_string_lossy()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("resource node/a: defined twice"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn a_relation_chain_25000_deep_goes_through_every_command() {
    let n = 25_000;
    let mut nodes = serde_json::Map::new();
    for i in 0..n {
        let mut body = json!({"id": format!("n{i}")});
        if i + 1 < n {
            body["next_id"] = json!(format!("n{}", i + 1));
        }
        nodes.insert(format!("n{i}"), json!({"version": 1, "body": body}));
    }
    let path = write_world("deep", &chain_world(json!({"node": nodes})));
    let path = path.to_string_lossy().into_owned();
    for cmd in ["expand", "plan", "run"] {
        let out = esi(&[cmd, &path, "--output", "json"]);
        assert!(
            out.status.success(),
            "{cmd}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ------------------------------------------------------------------------------------------
// Issue 11: conformance input errors (exit 2) and colour only on terminals
// ------------------------------------------------------------------------------------------

#[test]
fn conformance_refuses_unusable_input() {
    let empty = scratch("conf-empty");
    let out = esi(&["conformance", &empty.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no conformance case"));

    let cases = [
        ("conf-notacase", json!({}), "not a conformance case"),
        (
            "conf-kind",
            json!({"kind": "telepathy"}),
            "unknown case kind `telepathy`",
        ),
        (
            "conf-outside",
            json!({"kind": "jobs", "world": "../../etc/passwd"}),
            "resolves outside the corpus",
        ),
    ];
    for (name, case, expect) in cases {
        let root = scratch(name);
        std::fs::create_dir_all(root.join("worlds")).expect("dir");
        let file = root.join("case.json");
        std::fs::write(&file, case.to_string()).expect("write");
        for target in [root.clone(), file] {
            let out = esi(&["conformance", &target.to_string_lossy()]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name}: {err}");
            assert!(err.contains(expect), "{name}: {err}");
        }
    }
}

#[test]
fn logs_carry_no_colour_when_stderr_is_a_file() {
    let out = esi_env(&["run", "examples/vpn-gateway"], &[("ESI_LOG", "debug")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DEBUG") || err.contains("INFO"),
        "logs were written: {err}"
    );
    assert!(!err.contains('\x1b'), "no escape codes in a file: {err}");
}

#[test]
fn an_unbounded_template_loop_is_a_typed_error_naming_template_and_resource() {
    let looping = "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}{% endfor %}heat_template_version: 2013-05-23\n";
    let world = json!({
        "name": "looping",
        "schemas": {"a": {"template_path": "Ca"}},
        "heat_templates": {"a": {"parameter_mappings": {"heat_timeout": "C5"}, "template_file": looping}},
        "resources": {"a": {"a1": {"version": 1, "body": {"id": "a1"}}}}
    });
    let path = write_world("looping", &world);
    let out = esi(&["plan", &path.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("a/a1")
            && text.contains("cannot render template a: rendering ran out of fuel"),
        "{text}"
    );
}
