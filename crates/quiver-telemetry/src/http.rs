//! The HTTP side: `/metrics`, `/health`, `/ready`, `/strategies`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::Telemetry;

/// Content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The router, for tests and for embedding.
pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/strategies", get(strategies))
        .with_state(telemetry)
}

/// Binds `addr` (port 0 picks a free port) and serves until `shutdown`
/// resolves. Returns the bound address and the server task.
pub async fn serve(
    addr: SocketAddr,
    telemetry: Arc<Telemetry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(telemetry);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, task))
}

async fn metrics(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    t.before_scrape();
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        t.registry.encode(),
    )
}

/// The process is up and serving; says nothing about the source.
async fn health() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn ready(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    let reasons = t.status.not_ready_reasons();
    if reasons.is_empty() {
        (StatusCode::OK, Json(serde_json::json!({"ready": true})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"ready": false, "reasons": reasons})),
        )
    }
}

async fn strategies(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    Json(t.status.strategies())
}
