//! The read-only HTTP routes: `/metrics`, `/health`, `/ready`,
//! `/strategies`. The runtime serves them (`quiver_runtime::http`) beside
//! its own routes that change things.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::Telemetry;

/// Content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The read-only routes, served by the runtime (and by tests).
pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/strategies", get(strategies))
        .route("/strategies/{id}", get(strategy))
        .route("/config", get(config))
        .with_state(telemetry)
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

/// The strategy set serving: its source, version and the latest reload.
async fn config(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    Json(t.status.config())
}

async fn strategies(State(t): State<Arc<Telemetry>>) -> impl IntoResponse {
    Json(t.status.strategies())
}

/// One strategy's row with its latest lifecycle changes.
async fn strategy(
    State(t): State<Arc<Telemetry>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::response::Response {
    match t.status.strategy(&id) {
        Some((row, transitions)) => {
            let mut body = serde_json::to_value(row).unwrap_or_default();
            if let Some(object) = body.as_object_mut() {
                object.insert(
                    "transitions".to_owned(),
                    serde_json::to_value(transitions).unwrap_or_default(),
                );
            }
            Json(body).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": format!("no strategy {id:?}")})),
        )
            .into_response(),
    }
}
