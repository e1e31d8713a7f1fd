//! The CollectorAgent REST API (monitoring.md §2), JSON in and out:
//!
//! | request | answer |
//! |---|---|
//! | `POST /targets` with a target body | `201` + the document with `id`, `created_at`, `monitorer`, `link`; `400` for a body that is not JSON or not a target |
//! | `GET /targets/<id>` | `200` + the document, with `values` once polled; `404` |
//! | `DELETE /targets/<id>` | `204`; `404` for an unknown id (decision O2) |
//!
//! Secrets (communities, passwords …) are never returned: every member with a secret name is
//! `"***"`, as in the recorded responses (decision O3). Errors are `{"error": "<message>"}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use esi_core::collector::{Collector, CollectorError, TargetService};
use esi_core::secret::is_secret_name;
use serde_json::{json, Value};

/// What a secret is shown as in API answers (the recorded agent's mask).
pub const API_MASK: &str = "***";

/// Replaces, recursively, every member whose name is a secret name with [`API_MASK`].
pub fn mask_secrets(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if is_secret_name(k) && !child.is_null() {
                    *child = Value::String(API_MASK.into());
                } else {
                    mask_secrets(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

fn json_response(status: StatusCode, mut body: Value) -> Response {
    mask_secrets(&mut body);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, message: String) -> Response {
    json_response(status, json!({ "error": message }))
}

fn refused(e: CollectorError) -> Response {
    let status = match e {
        CollectorError::Malformed { .. } => StatusCode::BAD_REQUEST,
        CollectorError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e.to_string())
}

type Targets = Arc<dyn TargetService>;

async fn create(State(c): State<Targets>, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "monitoring target: body: not a JSON object".into(),
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("monitoring target: body: invalid JSON ({e})"),
            )
        }
    };
    match c.create(&request).await {
        Ok(doc) => {
            let id = doc.get("id").and_then(|v| v.as_str()).unwrap_or("?");
            tracing::info!(id, "POST /targets");
            json_response(StatusCode::CREATED, doc)
        }
        Err(e) => {
            tracing::info!(error = %e, "POST /targets refused");
            refused(e)
        }
    }
}

async fn show(State(c): State<Targets>, Path(id): Path<String>) -> Response {
    match c.show(&id).await {
        Ok(Some(doc)) => json_response(StatusCode::OK, doc),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("target {id}: not found")),
        Err(e) => refused(e),
    }
}

async fn remove(State(c): State<Targets>, Path(id): Path<String>) -> Response {
    match c.remove(&id).await {
        Ok(true) => {
            tracing::info!(id, "DELETE /targets");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, format!("target {id}: not found")),
        Err(e) => refused(e),
    }
}

/// The CollectorAgent routes over the in-process `collector` (merge into the daemon's router).
pub fn collector_router(collector: Arc<Collector>) -> Router {
    targets_router(collector)
}

/// The CollectorAgent routes over any target registry (the in-process collector, or the
/// registry shared through the store).
pub fn targets_router(targets: Arc<dyn TargetService>) -> Router {
    Router::new()
        .route("/targets", post(create))
        .route("/targets/{id}", get(show).delete(remove))
        .with_state(targets)
}

/// A Prometheus metric name from a recorded tsdb metric name: characters outside
/// `[A-Za-z0-9_:]` become `_` (`traffic.bytes` → `traffic_bytes`).
pub fn prometheus_name(metric: &str) -> String {
    let mut out: String = metric
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

fn label_name(tag: &str) -> String {
    prometheus_name(tag).replace(':', "_")
}

fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The tsdb results (monitoring.md §5) in the Prometheus text format: one gauge per recorded
/// metric name (dots as underscores), the recorded tags as labels, plus `key` (the report key,
/// e.g. `traffic.in`) and `target` (the target id).
pub fn render_tsdb(samples: &[esi_core::collector::TsdbSample]) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write;
    let mut by_metric: BTreeMap<String, Vec<&esi_core::collector::TsdbSample>> = BTreeMap::new();
    for s in samples {
        by_metric
            .entry(prometheus_name(&s.metric))
            .or_default()
            .push(s);
    }
    let mut out = String::new();
    for (name, list) in by_metric {
        let _ = writeln!(
            out,
            "# HELP {name} Monitoring result {} (tsdb syncer).\n# TYPE {name} gauge",
            list.first().map(|s| s.metric.as_str()).unwrap_or("")
        );
        for s in list {
            let mut labels: BTreeMap<String, String> = s
                .tags
                .iter()
                .map(|(k, v)| (label_name(k), label_value(v)))
                .collect();
            labels
                .entry("key".into())
                .or_insert_with(|| label_value(&s.key));
            labels
                .entry("target".into())
                .or_insert_with(|| label_value(&s.target));
            let labels: Vec<String> = labels
                .into_iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {}", labels.join(","), s.value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsdb_samples_render_with_the_recorded_names_and_tags() {
        use esi_core::collector::TsdbSample;
        let sample = |key: &str, dir: &str, value: f64| TsdbSample {
            target: "t-1".into(),
            key: key.into(),
            metric: "traffic.bytes".into(),
            tags: [("resource_id", "p\"1"), ("direction", dir)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        };
        let text = render_tsdb(&[
            sample("traffic.in", "in", 7000000012345.0),
            sample("traffic.out", "out", 14.0),
        ]);
        assert_eq!(
            text.matches("# TYPE traffic_bytes gauge").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains(
                "traffic_bytes{direction=\"in\",key=\"traffic.in\",resource_id=\"p\\\"1\",target=\"t-1\"} 7000000012345\n"
            ),
            "{text}"
        );
        assert_eq!(prometheus_name("cpu.user"), "cpu_user");
        assert_eq!(prometheus_name("9x"), "_9x");
    }

    #[test]
    fn masks_every_secret_member() {
        let mut v = json!({"properties": {"community_name": "c0mm", "device_ip": "1.2.3.4",
            "primary": {"password": "pw", "login": "esi"}}, "list": [{"auth_token": "t"}]});
        mask_secrets(&mut v);
        let text = v.to_string();
        for s in ["c0mm", "\"pw\"", "\"t\""] {
            assert!(!text.contains(s), "{s} in {text}");
        }
        assert_eq!(v["properties"]["device_ip"], json!("1.2.3.4"));
        assert_eq!(v["properties"]["primary"]["login"], json!("esi"));
    }
}
