//! The HTTP surface of an `esi serve` process: `/metrics` (the Prometheus text exposition of
//! [`Metrics`]) and `/healthz` (`200 ok` while the store answers, `503` otherwise); and, in
//! [`collector`], the CollectorAgent REST API (`POST /targets`, `GET /targets/<id>`,
//! `DELETE /targets/<id>`, monitoring.md §2) over an [`esi_core::collector::Collector`]
//! ([`collector::collector_router`]); in [`devices`], a read-only view of simulated routers
//! (`GET /devices`, `GET /devices/<router>/configuration`) for `esi serve --devices sim`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! let metrics = Arc::new(esi_core::runtime::metrics::Metrics::new());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
//! esi_http::serve(listener, metrics, async { /* shutdown signal */ }).await?;
//! # Ok(()) }
//! ```

pub mod collector;
pub mod devices;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use esi_core::collector::TargetService;
use esi_core::runtime::metrics::Metrics;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The router: `/metrics` and `/healthz` over `metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .with_state(metrics)
}

async fn render_metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], m.render())
}

async fn healthz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.store_up() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n")
    }
}

#[derive(Clone)]
struct DaemonState {
    metrics: Arc<Metrics>,
    targets: Arc<dyn TargetService>,
}

async fn render_daemon_metrics(State(s): State<DaemonState>) -> impl IntoResponse {
    let mut text = s.metrics.render();
    text.push_str(&collector::render_tsdb(&s.targets.tsdb_samples()));
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text)
}

async fn daemon_healthz(State(s): State<DaemonState>) -> impl IntoResponse {
    healthz(State(s.metrics)).await
}

/// The router of a process with the `monitor` role: `/metrics` (the daemon's metrics followed
/// by the tsdb results of the targets polled here), `/healthz` and the CollectorAgent API
/// (`/targets`) over `targets`.
pub fn daemon_router(metrics: Arc<Metrics>, targets: Arc<dyn TargetService>) -> Router {
    Router::new()
        .route("/metrics", get(render_daemon_metrics))
        .route("/healthz", get(daemon_healthz))
        .with_state(DaemonState {
            metrics,
            targets: targets.clone(),
        })
        .merge(collector::targets_router(targets))
}

/// Serves `router` (e.g. [`daemon_router`] merged with [`devices::devices_router`]) on
/// `listener` until `shutdown` completes.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving HTTP");
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the router on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(metrics), shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn fetch(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metrics_and_health_are_served() {
        let metrics = Arc::new(Metrics::new());
        metrics.set_jobs("ready", 3);
        metrics.add_claims(2);
        metrics.observe("heat", "create", std::time::Duration::from_millis(20));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, metrics.clone(), async {
            let _ = rx.await;
        }));
        let m = fetch(addr, "/metrics").await;
        assert!(m.starts_with("HTTP/1.1 200"), "{m}");
        assert!(m.contains("esi_jobs{state=\"ready\"} 3"), "{m}");
        assert!(m.contains("esi_claims_total 2"), "{m}");
        assert!(
            m.contains("esi_heat_request_seconds_bucket{operation=\"create\",le=\"0.05\"} 1"),
            "{m}"
        );
        assert!(fetch(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        metrics.set_store_up(false);
        assert!(fetch(addr, "/healthz").await.starts_with("HTTP/1.1 503"));
        let _ = tx.send(());
        server.await.expect("joins").expect("serves");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simulated_routers_are_shown_masked_and_read_only() {
        use esi_core::device::{SimFabric, SimRouter};
        let fabric = Arc::new(SimFabric::new());
        fabric.add(
            SimRouter::new("edge-a", "192.0.2.11", 830)
                .with_configuration(
                    "protocols {\n bgp {\n group G {\n authentication-key \"s3cret-key\";\n }\n }\n }\n",
                )
                .expect("config"),
        );
        let app = router(Arc::new(Metrics::new())).merge(devices::devices_router(fabric));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_router(listener, app, async {
            let _ = rx.await;
        }));
        let all = fetch(addr, "/devices").await;
        assert!(all.starts_with("HTTP/1.1 200"), "{all}");
        assert!(all.contains("\"edge-a\""), "{all}");
        assert!(all.contains("authentication-key"), "{all}");
        assert!(!all.contains("s3cret-key"), "the key is masked: {all}");
        let one = fetch(addr, "/devices/edge-a/configuration").await;
        assert!(one.starts_with("HTTP/1.1 200"), "{one}");
        assert!(
            one.contains("group G") && !one.contains("s3cret-key"),
            "{one}"
        );
        assert!(fetch(addr, "/devices/nope/configuration")
            .await
            .starts_with("HTTP/1.1 404"));
        let _ = tx.send(());
        server.await.expect("joins").expect("serves");
    }
}
