//! A read-only view of the simulated routers of an `esi serve --devices sim` process, so that
//! what esi committed can be checked from outside the daemon (tests, demos):
//!
//! | request | answer |
//! |---|---|
//! | `GET /devices` | `200` + `{"<router>": {"host": …, "port": …, "configuration": "<text>"}}` |
//! | `GET /devices/<router>/configuration` | `200` + the running configuration as Junos text; `404` for an unknown router |
//!
//! The configuration is [`SimRouter::config_text`]: secrets masked exactly as `esi plan` and
//! `esi run` show router configurations (the same function produces both), so a masked
//! prediction compares with a masked observation. Nothing here changes a router.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use esi_core::device::SimFabric;
use serde_json::{json, Map, Value};

/// The routes `GET /devices` and `GET /devices/<router>/configuration` over `fabric`.
pub fn devices_router(fabric: Arc<SimFabric>) -> Router {
    Router::new()
        .route("/devices", get(list))
        .route("/devices/{name}/configuration", get(configuration))
        .with_state(fabric)
}

async fn list(State(f): State<Arc<SimFabric>>) -> Response {
    let mut out = Map::new();
    for r in f.routers() {
        out.insert(
            r.router_name().to_string(),
            json!({"host": r.host(), "port": r.port(), "configuration": r.config_text()}),
        );
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        Value::Object(out).to_string(),
    )
        .into_response()
}

async fn configuration(State(f): State<Arc<SimFabric>>, Path(name): Path<String>) -> Response {
    match f.router(&name) {
        Some(r) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            r.config_text(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": format!("no simulated router named {name}")}).to_string(),
        )
            .into_response(),
    }
}
