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
use esi_core::collector::Collector;
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

async fn create(State(c): State<Arc<Collector>>, body: Bytes) -> Response {
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
    match c.register(&request) {
        Ok(doc) => {
            let id = doc.get("id").and_then(|v| v.as_str()).unwrap_or("?");
            tracing::info!(id, "POST /targets");
            json_response(StatusCode::CREATED, doc)
        }
        Err(e) => {
            tracing::info!(error = %e, "POST /targets refused");
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

async fn show(State(c): State<Arc<Collector>>, Path(id): Path<String>) -> Response {
    match c.target(&id) {
        Some(doc) => json_response(StatusCode::OK, doc),
        None => error(StatusCode::NOT_FOUND, format!("target {id}: not found")),
    }
}

async fn remove(State(c): State<Arc<Collector>>, Path(id): Path<String>) -> Response {
    if c.unregister(&id) {
        tracing::info!(id, "DELETE /targets");
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("target {id}: not found"))
    }
}

/// The CollectorAgent routes over `collector` (merge into the daemon's router).
pub fn collector_router(collector: Arc<Collector>) -> Router {
    Router::new()
        .route("/targets", post(create))
        .route("/targets/{id}", get(show).delete(remove))
        .with_state(collector)
}

#[cfg(test)]
mod tests {
    use super::*;

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
