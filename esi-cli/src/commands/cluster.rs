//! Commands against a running system (`--etcd`): apply, delete, get, jobs, watch, status.
//! The logic is `esi_core::runtime::client`; this module reads files and formats.

use crate::worlddir::{read_document, world_files};
use crate::{emit, Output};
use anyhow::{bail, Context, Result};
use esi_core::model::ResourceRef;
use esi_core::runtime::client::{self, ApplySet, ResourceStatus};
use esi_core::runtime::stored::load_catalog;
use esi_core::store::{Store, StoreError};
use esi_core::Catalog;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Runs an async client command on a small runtime.
pub fn block_on<F: std::future::Future<Output = Result<ExitCode>>>(f: F) -> Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

/// `TYPE/ID` → a resource reference.
pub fn parse_ref(s: &str) -> Result<ResourceRef> {
    match s.split_once('/') {
        Some((t, i)) if !t.is_empty() && !i.is_empty() => Ok(ResourceRef::new(t, i)),
        _ => bail!("expected TYPE/ID, got `{s}`"),
    }
}

/// Reads FILE or every YAML/JSON file below DIR (skipping `changes.*`) into an apply set.
pub fn load_set(path: &Path) -> Result<ApplySet> {
    let files = world_files(path)?;
    let mut set = ApplySet::default();
    for f in &files {
        let doc = read_document(f)?;
        set.add(&doc, &f.display().to_string())
            .with_context(|| format!("loading {}", f.display()))?;
    }
    Ok(set)
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, header.to_vec());
    for r in rows {
        line(&mut out, r.iter().map(String::as_str).collect());
    }
    out
}

fn dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

fn monitoring_text(m: &Option<Value>) -> String {
    match m {
        Some(Value::Object(o)) => o
            .iter()
            .filter(|(k, _)| k.as_str() != "version")
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(","),
        _ => "-".into(),
    }
}

/// The `esi get` table.
pub fn rows_text(rows: &[ResourceStatus]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("{}/{}", r.resource_type, r.id),
                if r.marked_for_deletion {
                    format!("{} (deleting)", r.version)
                } else {
                    r.version.to_string()
                },
                dash(&r.worker_state),
                dash(&r.orchestration_state),
                monitoring_text(&r.monitoring),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "RESOURCE",
            "VERSION",
            "WORKER_STATE",
            "ORCHESTRATION_STATE",
            "MONITORING",
            "ERROR",
        ],
        &body,
    )
}

/// `esi apply -f PATH [--wait]`.
pub async fn apply(
    store: Arc<dyn Store>,
    path: &Path,
    wait: bool,
    timeout: Option<Duration>,
    output: Output,
) -> Result<ExitCode> {
    let set = load_set(path)?;
    let wanted = set.resources().to_vec();
    let lines = client::apply(store.as_ref(), set).await?;
    let mut text = String::new();
    for l in &lines {
        let what = match &l.outcome {
            client::Applied::Created => "created".to_string(),
            client::Applied::Updated(v) => format!("updated (v{v})"),
            client::Applied::Unchanged => "unchanged".to_string(),
        };
        let _ = writeln!(text, "{} {what}", l.what);
    }
    if !wait {
        match output {
            Output::Text => emit(&text)?,
            Output::Json => emit(&format!("{}\n", json!({ "applied": lines })))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    if output == Output::Text {
        emit(&text)?;
    }
    let rows = client::wait_final(store.as_ref(), &wanted, timeout, Duration::from_secs(2)).await?;
    let errors: Vec<&ResourceStatus> = rows.iter().filter(|r| r.is_error()).collect();
    match output {
        Output::Text => {
            emit(&rows_text(&rows))?;
            for r in &errors {
                eprintln!(
                    "esi: {}/{} ended in {}: {}",
                    r.resource_type,
                    r.id,
                    dash(&r.worker_state),
                    r.error.as_deref().unwrap_or("(no reason recorded)")
                );
            }
        }
        Output::Json => emit(&format!(
            "{}\n",
            json!({ "applied": lines, "resources": rows, "errors": errors.len() })
        ))?,
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `esi delete TYPE/ID [--wait]`.
pub async fn delete(
    store: Arc<dyn Store>,
    what: &str,
    wait: bool,
    timeout: Option<Duration>,
    output: Output,
) -> Result<ExitCode> {
    let r = parse_ref(what)?;
    let version = client::delete(store.as_ref(), &r).await?;
    if wait {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            match client::get(store.as_ref(), Some(&r), None).await {
                Err(client::ClientError::Missing(_)) => break,
                Err(e) => return Err(e.into()),
                Ok(rows) => {
                    if let Some(row) = rows.iter().find(|x| x.is_final() && x.is_error()) {
                        eprintln!(
                            "esi: {r} ended in {}: {}",
                            dash(&row.worker_state),
                            row.error.as_deref().unwrap_or("")
                        );
                        return Ok(ExitCode::from(1));
                    }
                }
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                bail!("timed out waiting for the deletion of {r}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    match output {
        Output::Text => emit(&format!(
            "{r} marked for deletion (v{version}){}\n",
            if wait { ", deleted" } else { "" }
        ))?,
        Output::Json => emit(&format!(
            "{}\n",
            json!({"resource": r.to_string(), "version": version, "deleted": wait})
        ))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `esi get [TYPE[/ID]]`.
pub async fn get(store: Arc<dyn Store>, what: Option<&str>, output: Output) -> Result<ExitCode> {
    let (filter, ty) = match what {
        Some(w) if w.contains('/') => (Some(parse_ref(w)?), None),
        Some(t) => (None, Some(t)),
        None => (None, None),
    };
    let rows = client::get(store.as_ref(), filter.as_ref(), ty).await?;
    match output {
        Output::Text => emit(&rows_text(&rows))?,
        Output::Json => emit(&format!("{}\n", serde_json::to_string(&rows)?))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `esi jobs`.
pub async fn jobs(store: Arc<dyn Store>, output: Output) -> Result<ExitCode> {
    let jobs = client::list_jobs(store.as_ref()).await?;
    match output {
        Output::Json => emit(&format!("{}\n", serde_json::to_string(&jobs)?))?,
        Output::Text => {
            let rows: Vec<Vec<String>> = jobs
                .iter()
                .map(|j| {
                    vec![
                        j.id.clone(),
                        j.queue.clone(),
                        j.resource.to_string(),
                        j.action.clone(),
                        j.version.to_string(),
                        dash(&j.holder),
                        if j.dependencies.is_empty() {
                            "-".into()
                        } else {
                            j.dependencies.join(",")
                        },
                    ]
                })
                .collect();
            emit(&table(
                &[
                    "JOB",
                    "QUEUE",
                    "RESOURCE",
                    "ACTION",
                    "VERSION",
                    "HOLDER",
                    "DEPENDS_ON",
                ],
                &rows,
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `esi status`.
pub async fn status(
    store: Arc<dyn Store>,
    endpoints: &[String],
    output: Output,
) -> Result<ExitCode> {
    let st = client::status(store.as_ref()).await?;
    let health = crate::backend::etcd_health(endpoints).await;
    match output {
        Output::Json => {
            let eps: Vec<Value> = health
                .iter()
                .map(|(ep, r)| match r {
                    Ok(s) => json!({"endpoint": ep, "healthy": true, "status": s}),
                    Err(e) => json!({"endpoint": ep, "healthy": false, "error": e}),
                })
                .collect();
            emit(&format!("{}\n", json!({"status": st, "endpoints": eps})))?
        }
        Output::Text => {
            let mut t = String::new();
            let _ = writeln!(t, "etcd:      revision {}", st.revision);
            for (ep, r) in &health {
                match r {
                    Ok(s) => {
                        let _ = writeln!(t, "  {ep}  healthy ({s})");
                    }
                    Err(e) => {
                        let _ = writeln!(t, "  {ep}  UNHEALTHY: {e}");
                    }
                }
            }
            let _ = writeln!(t, "leader:    {}", st.leader.as_deref().unwrap_or("(none)"));
            let _ = writeln!(
                t,
                "resources: {} ({} final, {} in error)",
                st.resources, st.final_resources, st.errors
            );
            let q: Vec<String> = st.queues.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(t, "jobs:      {}", q.join(" "));
            let _ = writeln!(t, "processes: {}", st.processes.len());
            for p in &st.processes {
                let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
                let roles: Vec<String> = p
                    .get("roles")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                let _ = writeln!(
                    t,
                    "  {}  roles={}  jobs={}  started={}{}",
                    s("name"),
                    roles.join(","),
                    p.get("jobs").and_then(Value::as_u64).unwrap_or(0),
                    s("started"),
                    if p.get("leader").and_then(Value::as_bool) == Some(true) {
                        "  (leader)"
                    } else {
                        ""
                    }
                );
            }
            emit(&t)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `esi watch [TYPE[/ID]]`: prints resource changes until interrupted.
pub async fn watch(store: Arc<dyn Store>, what: Option<&str>, output: Output) -> Result<ExitCode> {
    let (ty, id) = match what {
        Some(w) if w.contains('/') => {
            let r = parse_ref(w)?;
            (Some(r.resource_type), Some(r.resource_id))
        }
        Some(t) => (Some(t.to_string()), None),
        None => (None, None),
    };
    let mut catalog = load_catalog(store.as_ref(), &Catalog::default()).await?;
    let mut from = store.revision().await? + 1;
    loop {
        let mut w = store.watch("/", from).await?;
        loop {
            let ev = tokio::select! {
                ev = w.next() => ev,
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            };
            let ev = match ev {
                Some(Ok(ev)) => ev,
                // A closed watch resumes after the last event shown; a compacted one from now.
                None => break,
                Some(Err(StoreError::Compacted { .. })) => {
                    eprintln!("esi: watch history compacted; some changes were skipped");
                    from = store.revision().await? + 1;
                    break;
                }
                Some(Err(e)) => return Err(e.into()),
            };
            from = ev.revision() + 1;
            if esi_core::runtime::stored::is_catalog_key(ev.key()) {
                catalog = load_catalog(store.as_ref(), &Catalog::default()).await?;
            }
            let Some(c) = client::describe_change(&catalog, &ev, ty.as_deref(), id.as_deref())
            else {
                continue;
            };
            let line = match output {
                Output::Json => serde_json::to_string(&c)?,
                Output::Text => {
                    let what = if c.deleted {
                        "deleted".to_string()
                    } else {
                        match c.kind {
                            "config" => format!(
                                "v{}{}",
                                c.version.unwrap_or(0),
                                if c.marked_for_deletion {
                                    " marked for deletion"
                                } else {
                                    ""
                                }
                            ),
                            "state" => format!(
                                "v{} {} {}{}",
                                c.version.unwrap_or(0),
                                dash(&c.worker_state),
                                dash(&c.orchestration_state),
                                c.detail
                                    .as_ref()
                                    .and_then(Value::as_str)
                                    .map(|e| format!(" error: {e}"))
                                    .unwrap_or_default()
                            ),
                            _ => format!(
                                "v{} {}",
                                c.version.unwrap_or(0),
                                c.detail.as_ref().map(Value::to_string).unwrap_or_default()
                            ),
                        }
                    };
                    format!(
                        "{:>8}  {:<10}  {}/{}  {what}",
                        c.revision, c.kind, c.resource_type, c.id
                    )
                }
            };
            emit(&format!("{line}\n"))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_and_ages_parse() {
        assert!(parse_ref("port/1").is_ok());
        assert!(parse_ref("port").is_err());
        assert!(parse_ref("/1").is_err());
        let t = table(&["A", "B"], &[vec!["long-cell".into(), "x".into()]]);
        assert_eq!(t, "A          B\nlong-cell  x\n");
    }
}
