//! The HTTP surfaces of esi (axum).
//!
//! * [`collector`]: the CollectorAgent REST API (`POST /targets`, `GET /targets/<id>`,
//!   `DELETE /targets/<id>`, monitoring.md §2) over an [`esi_core::collector::Collector`].
//!
//! ```no_run
//! # async fn demo(collector: std::sync::Arc<esi_core::collector::Collector>) -> std::io::Result<()> {
//! let app = esi_http::collector::collector_router(collector);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7070").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

pub mod collector;
