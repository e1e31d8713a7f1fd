//! Several `esi serve` processes on the 3-member etcd cluster with a real OpenStack Heat, under
//! faults: the leading manager's process SIGKILLed, a process killed mid-job and restarted, an
//! etcd member stopped and restarted; and a leader paused (SIGSTOP) past its lease whose writes
//! after SIGCONT are all refused.
//!
//! Needs the etcd cluster (`bash .ci/services/10-etcd.sh start` prints `ETCD_CLUSTER_ENDPOINTS`
//! and `ESI_ETCD_SERVICE`, the script that stops and restarts one member; its `CI_ETCD_*` knobs
//! must be exported as they were at start) and, for the world test, a noauth Heat
//! (`bash .ci/services/30-heat.sh start` prints `HEAT_URL`). Each run works in its own etcd key
//! namespace and gives the world's resources ids unique to the run, so its Heat stacks (named
//! `<type>_<id>`) are its own.

mod common;

use common::{
    base64, count_by, curl_json, exclusive, free_port, parse_rfc3339, signal, tempdir, unique,
    wait_exit, wait_until, Cluster, Daemon, MemberDown,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

const NEEDS_HEAT: &str = "HEAT_URL is not set: start a noauth Heat with \
     `bash .ci/services/30-heat.sh start` and export the HEAT_URL it prints";

/// Lease TTL of the daemons (claims and leadership), seconds.
const TTL: f64 = 3.0;

/// The generated world of `n` resources with ids unique to this run (`<type><tag>-NNNNNN`) and
/// templates that declare the parameters their mappings send (a real Heat refuses undeclared
/// ones; the embedded Heat does not check).
fn world(n: usize, tag: &str) -> Value {
    let doc = esi_core::generate::world_document(n);
    let mut text = serde_json::to_string(&doc).expect("serialises");
    for ty in ["zone", "region", "site", "rack", "switch", "port"] {
        text = text.replace(&format!("\"{ty}-"), &format!("\"{ty}{tag}-"));
    }
    let mut doc: Value = serde_json::from_str(&text).expect("parses");
    let template = "heat_template_version: 2013-05-23\nparameters:\n\
        \x20 name: {type: string, default: \"\"}\n\
        \x20 tenant_id: {type: string, default: \"\"}\n\
        \x20 version: {type: string, default: \"\"}\n\
        \x20 zone_name: {type: string, default: \"\"}\n\
        \x20 site_out: {type: string, default: \"\"}\n\
        \x20 site_name: {type: string, default: \"\"}\n\
        \x20 region_label: {type: string, default: \"\"}\n\
        \x20 rack_out: {type: string, default: \"\"}\n\
        \x20 switch_out: {type: string, default: \"\"}\n\
        \x20 vlan: {type: number, default: 0}\n\
        \x20 uplinks: {type: json, default: []}\n\
        \x20 peers: {type: json, default: []}\n\
        resources:\n  node:\n    type: OS::Heat::None\n\
        outputs:\n  id:\n    value: {get_resource: node}\n";
    if let Some(Value::Object(templates)) = doc.get_mut("heat_templates") {
        for t in templates.values_mut() {
            t["template_file"] = Value::String(template.into());
        }
    }
    // Each generated port reads the stack outputs of the two ports before it, so the ports form
    // one chain of sequential Heat creates (300 of 500 resources, about 0.5 s each on a real
    // Heat). Here they read the ports 10 and 20 before: ten chains of 30, the same kind of
    // dependency, a few minutes less.
    if let Some(Value::Object(ports)) = doc.pointer_mut("/resources/port") {
        for (id, port) in ports.iter_mut() {
            let i: usize = id
                .rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let body = &mut port["body"];
            if let Some(o) = body.as_object_mut() {
                o.remove("peer_ports");
                if i >= 20 {
                    let peer = |k: usize| Value::String(format!("port{tag}-{k:06}"));
                    o.insert(
                        "peer_ports".into(),
                        Value::Array(vec![peer(i - 10), peer(i - 20)]),
                    );
                }
            }
        }
    }
    doc
}

/// Every `(type, id)` of a world document.
fn resources_of(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(Value::Object(types)) = doc.get("resources") {
        for (ty, ids) in types {
            if let Value::Object(ids) = ids {
                out.extend(ids.keys().map(|id| (ty.clone(), id.clone())));
            }
        }
    }
    out
}

/// Every stack record Heat holds (deleted ones too), paginated.
fn heat_stacks(heat_url: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut url = format!("{heat_url}/stacks?show_deleted=True&limit=500");
        if let Some(m) = &marker {
            url.push_str(&format!("&marker={m}"));
        }
        let page = curl_json(&url);
        let stacks = page["stacks"].as_array().cloned().unwrap_or_default();
        if stacks.is_empty() {
            break;
        }
        marker = stacks
            .last()
            .and_then(|s| s["id"].as_str())
            .map(str::to_string);
        all.extend(stacks);
    }
    all
}

/// Processes with a claimed (working) job, from `esi jobs`.
fn holders(c: &Cluster) -> BTreeMap<String, usize> {
    let jobs = c
        .try_json(&["jobs", "--output", "json"])
        .unwrap_or(Value::Null);
    let mut m = BTreeMap::new();
    for j in jobs.as_array().into_iter().flatten() {
        if j["queue"] == "working" {
            if let Some(h) = j["holder"].as_str() {
                let process = h.split('/').next().unwrap_or(h).to_string();
                *m.entry(process).or_insert(0) += 1;
            }
        }
    }
    m
}

/// Seconds since the epoch of the first log line at or after `since` whose message is `msg`.
fn logged_at(log: &Path, msg: &str, since: f64) -> Option<f64> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.pointer("/fields/message").and_then(Value::as_str) == Some(msg))
        .filter_map(|v| v["timestamp"].as_str().and_then(parse_rfc3339))
        .find(|t| *t >= since)
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[test]
#[ignore = "needs etcd and heat: bash .ci/services/10-etcd.sh start; bash .ci/services/30-heat.sh start"]
fn two_daemons_process_a_500_resource_world_through_kills_and_an_etcd_member_restart() {
    let heat_url = std::env::var("HEAT_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .expect(NEEDS_HEAT);
    let _one_at_a_time = exclusive();
    let c = Cluster::new("world");
    let tag = unique();
    let dir = tempdir(&format!("cluster-world-{tag}"));
    let doc = world(500, &tag);
    let file = dir.join("world.json");
    std::fs::write(&file, serde_json::to_vec(&doc).expect("json")).expect("world file");
    let expected = resources_of(&doc);
    assert_eq!(expected.len(), 500);

    let ttl = TTL.to_string();
    let args = |name: &str| -> Vec<String> {
        [
            "--jobs",
            "4",
            "--lease-ttl",
            ttl.as_str(),
            "--heat",
            "openstack",
            "--heat-url",
            heat_url.as_str(),
            "--device-resources",
            "esi",
            "--name",
            name,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let log = |name: &str| dir.join(format!("{name}.log"));
    let mut procs: BTreeMap<String, Daemon> = BTreeMap::new();
    for name in ["w-a", "w-b"] {
        procs.insert(name.into(), c.serve(&args(name), &log(name)));
    }
    let t0 = Instant::now();
    let leader = wait_until(Duration::from_secs(30), "a leader", || c.leader());
    let out = c.esi(&["apply", "-f", file.to_str().expect("utf-8 path")]);
    assert!(
        out.status.success(),
        "apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("applied 500 resources after {:?}", t0.elapsed());
    // Polls tolerate a client command that fails (a request timing out while a member is
    // down is the client's honest answer); the final checks below do not.
    let final_count = |c: &Cluster| {
        c.try_json(&["get", "--output", "json"])
            .as_ref()
            .and_then(Value::as_array)
            .map_or(0, |rows| {
                rows.iter()
                    .filter(|r| r["worker_state"] == "CREATE_COMPLETED")
                    .count()
            })
    };

    // 1. SIGKILL the leading manager's process once work is under way; the other takes over.
    wait_until(Duration::from_secs(120), "50 resources final", || {
        (final_count(&c) >= 50).then_some(())
    });
    let killed_at = SystemTime::now();
    let killed = Instant::now();
    {
        let victim = procs.get_mut(&leader).expect("leader is ours");
        signal(&victim.0, "-KILL");
        let _ = victim.0.wait();
    }
    let new_leader = wait_until(
        Duration::from_secs_f64(TTL * 4.0),
        "a new leader after the SIGKILL",
        || c.leader().filter(|l| *l != leader),
    );
    let failover = killed.elapsed();
    let logged = logged_at(
        &log(&new_leader),
        "became the job manager",
        epoch(killed_at),
    )
    .expect("the new leader logged its election");
    let logged_failover = logged - epoch(killed_at);
    eprintln!(
        "leader {leader} SIGKILLed; {new_leader} leads after {failover:?} (its log: {logged_failover:.2} s; lease TTL {TTL} s)"
    );
    assert!(
        logged_failover < TTL + 2.0,
        "failover took {logged_failover:.2} s in the logs, lease TTL {TTL} s"
    );
    // The killed process is restarted (a new instance, under a new name).
    let restarted = format!("{leader}-2");
    procs.insert(
        restarted.clone(),
        c.serve(&args(&restarted), &log(&restarted)),
    );

    // 2. Kill a process that holds a job (the non-leader if it has one), then restart it.
    let (mid_job, jobs_held) = wait_until(Duration::from_secs(60), "a process mid-job", || {
        let h = holders(&c);
        let lead = c.leader();
        let mut alive: Vec<(String, usize)> = h
            .into_iter()
            .filter(|(p, n)| *n > 0 && procs.get_mut(p).is_some_and(|d| d.alive()))
            .collect();
        alive.sort_by_key(|(p, _)| Some(p) == lead.as_ref());
        alive.into_iter().next()
    });
    {
        let d = procs.get_mut(&mid_job).expect("ours");
        signal(&d.0, "-KILL");
        let _ = d.0.wait();
    }
    eprintln!("{mid_job} SIGKILLed holding {jobs_held} job(s)");
    std::thread::sleep(Duration::from_secs(1));
    let again = format!("{mid_job}-r");
    procs.insert(again.clone(), c.serve(&args(&again), &log(&again)));

    // 3. Stop one etcd member while the work goes on, then start it again.
    let before = final_count(&c);
    let member = MemberDown::stop(&c, 2);
    let stopped = Instant::now();
    wait_until(
        Duration::from_secs(120),
        "progress with a member down",
        || (final_count(&c) >= before + 20).then_some(()),
    );
    eprintln!(
        "etcd member 2 down for {:?}: {} -> {} resources final",
        stopped.elapsed(),
        before,
        final_count(&c)
    );
    member.start();

    // Everything converges.
    let rows = wait_until(Duration::from_secs(600), "every resource final", || {
        let rows = c.try_json(&["get", "--output", "json"])?;
        let done = rows.as_array().is_some_and(|r| {
            r.len() == 500
                && r.iter().all(|x| {
                    x["jobs"] == 0
                        && x["state_version"] == x["version"]
                        && x["worker_state"].is_string()
                })
        });
        done.then_some(rows)
    });
    let took = t0.elapsed();
    for r in rows.as_array().into_iter().flatten() {
        assert_eq!(r["worker_state"], "CREATE_COMPLETED", "{r}");
        assert!(r["error"].is_null(), "{r}");
    }
    assert!(
        c.json(&["jobs", "--output", "json"])
            .as_array()
            .is_some_and(Vec::is_empty),
        "no job record left"
    );
    eprintln!("500 resources final after {took:?}");

    // Heat's record: exactly one stack per resource name, none deleted, none extra.
    let stacks: Vec<Value> = heat_stacks(&heat_url)
        .into_iter()
        .filter(|s| s["stack_name"].as_str().is_some_and(|n| n.contains(&tag)))
        .collect();
    let per_name = count_by(&stacks, |s| {
        s["stack_name"].as_str().unwrap_or("").to_string()
    });
    let mut updated = 0;
    for (ty, id) in &expected {
        let name = format!("{ty}_{id}");
        assert_eq!(
            per_name.get(&name).copied(),
            Some(1),
            "stack {name} created once"
        );
    }
    for s in &stacks {
        assert!(s["deletion_time"].is_null(), "deleted: {s}");
        let status = s["stack_status"].as_str().unwrap_or("");
        assert!(
            status == "CREATE_COMPLETE" || status == "UPDATE_COMPLETE",
            "{s}"
        );
        updated += usize::from(status == "UPDATE_COMPLETE");
    }
    assert_eq!(stacks.len(), 500, "no stack beyond the world's");
    // Create requests as the daemons logged them: a job re-run after a kill finds its stack
    // and updates it; two racing creates of one name get 409 from Heat and one updates.
    let mut creates: BTreeMap<String, usize> = BTreeMap::new();
    for name in procs.keys() {
        let text = std::fs::read_to_string(log(name)).unwrap_or_default();
        for v in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            if v.pointer("/fields/message").and_then(Value::as_str) == Some("heat stack create") {
                if let Some(s) = v.pointer("/fields/stack").and_then(Value::as_str) {
                    *creates.entry(s.to_string()).or_insert(0) += 1;
                }
            }
        }
    }
    let retried: Vec<_> = creates.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "heat: {} stacks, each created once; {updated} updated by a re-run job; {} create requests logged by the processes, {} names requested more than once: {retried:?}",
        stacks.len(),
        creates.values().sum::<usize>(),
        retried.len()
    );

    for (name, d) in procs.iter_mut() {
        if d.alive() {
            signal(&d.0, "-TERM");
            let status = wait_exit(&mut d.0, Duration::from_secs(40));
            assert!(status.success(), "{name}: exit status {status:?}");
        }
    }
}

/// A counter of a daemon's `/metrics`.
fn metric(port: u16, name: &str) -> u64 {
    let o = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&o.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("{name} not in /metrics of :{port}: {text}"))
}

/// Every write etcd applied under `ns` from revision `from` on, grouped by revision: the
/// `put:KEY:HASH` / `delete:KEY` items (keys without the namespace) of each revision.
fn history(eps: &str, ns: &str, from: i64) -> BTreeMap<i64, Vec<String>> {
    let o = std::process::Command::new("timeout")
        .args([
            "5",
            "etcdctl",
            "--endpoints",
            eps,
            "watch",
            "--prefix",
            "-w",
            "json",
        ])
        .arg(format!("--rev={from}"))
        .arg(format!("{ns}/"))
        .env("ETCDCTL_API", "3")
        .output()
        .expect("etcdctl runs");
    let mut by_rev: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        for ev in v["Events"].as_array().into_iter().flatten() {
            let kv = &ev["kv"];
            let key =
                String::from_utf8_lossy(&base64(kv["key"].as_str().unwrap_or(""))).into_owned();
            let key = key.strip_prefix(ns).unwrap_or(&key).to_string();
            let rev = kv["mod_revision"].as_i64().unwrap_or(0);
            let item = if ev["type"] == 1 {
                format!("delete:{key}")
            } else {
                let value = String::from_utf8_lossy(&base64(kv["value"].as_str().unwrap_or("")))
                    .into_owned();
                format!(
                    "put:{key}:{:016x}",
                    esi_core::runtime::manager::fnv1a(&value)
                )
            };
            by_rev.entry(rev).or_default().push(item);
        }
    }
    by_rev
}

/// `(timestamp, ops)` of the manager log lines with this message.
fn fenced_lines(log: &Path, msg: &str) -> Vec<(f64, String)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.pointer("/fields/message").and_then(Value::as_str) == Some(msg))
        .filter_map(|v| {
            let t = v["timestamp"].as_str().and_then(parse_rfc3339)?;
            let ops = v.pointer("/fields/ops")?.as_str()?.to_string();
            Some((t, ops))
        })
        .collect()
}

#[test]
#[ignore = "needs etcd: bash .ci/services/10-etcd.sh start"]
fn a_leader_paused_past_its_lease_has_every_write_refused_after_it_resumes() {
    let _one_at_a_time = exclusive();
    let c = Cluster::new("fence");
    let dir = tempdir(&format!("cluster-fence-{}", unique()));
    let file = dir.join("world.json");
    let doc = esi_core::generate::world_document(400);
    std::fs::write(&file, serde_json::to_vec(&doc).expect("json")).expect("world file");
    let ttl = TTL;
    let ttl_arg = ttl.to_string();
    let names = ["f-a", "f-b"];
    let ports = [free_port(), free_port()];
    let log = |name: &str| dir.join(format!("{name}.log"));
    let mut procs: Vec<Daemon> = names
        .iter()
        .zip(ports)
        .map(|(name, port)| {
            let args: Vec<String> = [
                "--jobs",
                "4",
                "--lease-ttl",
                ttl_arg.as_str(),
                "--name",
                name,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            // Fenced writes are logged at debug level (keys and value hashes).
            c.serve_filtered(&args, &log(name), "info,esi_core::runtime::manager=debug")
        })
        .collect();
    let out = c.esi(&["apply", "-f", file.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut attempts_after_resume = 0;
    let mut refused_total = 0;
    for round in 1..=5 {
        let leader = wait_until(Duration::from_secs(30), "a leader", || c.leader());
        let i = names
            .iter()
            .position(|n| *n == leader)
            .expect("one of ours leads");
        let other = names[1 - i];
        if round > 1 {
            // Fresh work for this round (the first world may be done): new resources to expand.
            let more = dir.join(format!("world-{round}.json"));
            let doc = world(150, &format!("r{round}"));
            std::fs::write(&more, serde_json::to_vec(&doc).expect("json")).expect("world file");
            let out = c.esi(&["apply", "-f", more.to_str().expect("utf-8")]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Pause it while it works (resources are still being processed).
        std::thread::sleep(Duration::from_millis(300));
        let refused_before = metric(ports[i], "esi_refused_writes_total");
        signal(&procs[i].0, "-STOP");
        let stopped = Instant::now();
        let took_over = wait_until(
            Duration::from_secs_f64(ttl * 6.0),
            "the other process to take over",
            || (c.leader().as_deref() == Some(other)).then(|| stopped.elapsed()),
        );
        std::thread::sleep(Duration::from_millis(500));
        let rev_cont = c.leader_and_revision().1;
        assert!(rev_cont > 0, "etcd revision");
        let cont_at = epoch(SystemTime::now());
        signal(&procs[i].0, "-CONT");
        std::thread::sleep(Duration::from_secs(3));
        let refused = metric(ports[i], "esi_refused_writes_total") - refused_before;
        assert_eq!(
            metric(ports[i], "esi_leader"),
            0,
            "{leader} no longer believes it leads"
        );
        // Its log: each fenced write it sent after resuming, and each refused one.
        let sent: Vec<String> = fenced_lines(&log(&leader), "fenced write")
            .into_iter()
            .filter(|(t, _)| *t >= cont_at)
            .map(|(_, ops)| ops)
            .collect();
        let refused_logged: Vec<String> =
            fenced_lines(&log(&leader), "fenced write refused: no longer the leader")
                .into_iter()
                .filter(|(t, _)| *t >= cont_at)
                .map(|(_, ops)| ops)
                .collect();
        for s in &sent {
            assert!(
                refused_logged.contains(s),
                "{leader} sent a fenced write after resuming that was not refused: {s}"
            );
        }
        assert_eq!(
            refused as usize,
            refused_logged.len(),
            "/metrics and the log agree"
        );
        // etcd: no revision from the resume on holds a write the old leader attempted.
        let hist = history(&c.eps, &c.ns, rev_cont);
        for ops in &refused_logged {
            let wanted: Vec<&str> = ops.split(' ').filter(|o| !o.starts_with("get:")).collect();
            for (rev, items) in &hist {
                let landed = wanted.iter().all(|w| items.iter().any(|i| i == w));
                assert!(
                    !landed,
                    "a refused write of {leader} is in etcd at revision {rev}: {ops}"
                );
            }
        }
        eprintln!(
            "round {round}: {leader} paused; {other} took over after {took_over:?} (lease TTL {ttl} s); after SIGCONT {leader} sent {} fenced write(s), {refused} refused, none in etcd ({} revisions checked)",
            sent.len(),
            hist.len()
        );
        attempts_after_resume += sent.len().max(refused as usize);
        refused_total += refused;
        if refused_total > 0 {
            break;
        }
    }
    assert!(
        refused_total > 0,
        "in 5 rounds the resumed leader never attempted a write (nothing to show)"
    );
    eprintln!("{refused_total} refused fenced write(s) over {attempts_after_resume} attempt(s) after resuming");
    for d in procs.iter_mut() {
        signal(&d.0, "-TERM");
        let status = wait_exit(&mut d.0, Duration::from_secs(40));
        assert!(status.success(), "exit status {status:?}");
    }
}
