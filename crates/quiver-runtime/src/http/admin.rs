//! The routes that act on the running engine: `POST /strategies/{id}/pause`,
//! `/resume`, `/stop` and `/reset`, and `POST /reload`, each a [`Request`] sent through the
//! driver's control channel and answered with the transitions it made.
//!
//! Every mutation needs `Authorization: Bearer <quiver.admin_token>`. With no
//! token configured they are refused with 403 (the routes exist, so a client
//! learns why); a missing or wrong token is 401. Tokens are compared in
//! constant time.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use quiver_driver::{ControlHandle, Request};
use quiver_engine::ControlError;

/// How long a mutation waits for the driver: it answers between two
/// batches, so anything near this means the engine is stuck.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the mutation routes need.
#[derive(Clone)]
pub struct Admin {
    pub control: ControlHandle,
    /// `quiver.admin_token`; `None` refuses every mutation.
    pub token: Option<String>,
    /// Reloads the strategy set (`POST /reload`); `None` when the service
    /// does not reload.
    pub reload: Option<crate::service::ReloadHandle>,
}

/// The mutation routes.
pub fn router(admin: Admin) -> Router {
    Router::new()
        .route("/strategies/{id}/{action}", post(act))
        .route("/reload", post(reload))
        .with_state(admin)
}

/// `POST /reload`: reloads now and answers what it did: 200 applied or
/// unchanged, 422 refused (the running set still serving), with why.
async fn reload(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    use crate::service::ReloadOutcome;
    if let Err(refusal) = authorize(admin.token.as_deref(), &headers) {
        return refusal;
    }
    let Some(handle) = admin.reload else {
        return error(
            StatusCode::NOT_FOUND,
            "this service does not reload its strategies".to_owned(),
        );
    };
    match handle.reload("POST /reload").await {
        Some(ReloadOutcome::Applied { diff, version }) => Json(serde_json::json!({
            "result": "applied", "changes": diff, "version": version
        }))
        .into_response(),
        Some(ReloadOutcome::Unchanged { version }) => {
            Json(serde_json::json!({"result": "unchanged", "version": version})).into_response()
        }
        Some(ReloadOutcome::Refused(reason)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({"result": "refused", "error": reason})),
        )
            .into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is shutting down".to_owned(),
        ),
    }
}

async fn act(
    State(admin): State<Admin>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = authorize(admin.token.as_deref(), &headers) {
        return refusal;
    }
    let request = match action.as_str() {
        "pause" => Request::Pause(id),
        "resume" => Request::Resume(id),
        "stop" => Request::Stop(id),
        "reset" => Request::Reset(id),
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no action {other:?} (expected pause, resume, stop or reset)"),
            )
        }
    };
    let Ok(answer) = admin.control.send(request) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine has stopped".to_owned(),
        );
    };
    let reply = tokio::task::spawn_blocking(move || answer.recv_timeout(REPLY_TIMEOUT)).await;
    match reply {
        Ok(Ok(Ok(transitions))) => {
            let changes: Vec<_> = transitions
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "from": t.from.as_str(),
                        "to": t.to.as_str(),
                        "cause": t.cause.as_str(),
                        "seq": t.seq,
                        "ts_ns": t.ts_ns,
                    })
                })
                .collect();
            Json(serde_json::json!({"transitions": changes})).into_response()
        }
        Ok(Ok(Err(refused))) => {
            let status = match refused {
                ControlError::UnknownId(_) | ControlError::NoSuchIndex(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::CONFLICT,
            };
            error(status, refused.to_string())
        }
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine did not answer in time".to_owned(),
        ),
    }
}

/// 403 without a configured token, 401 without the right one.
#[allow(clippy::result_large_err)]
fn authorize(token: Option<&str>, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = token else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "mutations are disabled: no quiver.admin_token is configured".to_owned(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if same(given.as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err((
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({"error": "a valid bearer token is required"})),
        )
            .into_response()),
    }
}

/// Equality that takes the same time wherever the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({"error": message}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
    }

    #[test]
    fn mutations_need_a_configured_token_and_the_right_bearer() {
        let mut headers = HeaderMap::new();
        let status = |r: Result<(), Response>| r.err().map(|r| r.status());
        assert_eq!(
            status(authorize(None, &headers)),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            status(authorize(Some("s3"), &headers)),
            Some(StatusCode::UNAUTHORIZED)
        );
        headers.insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
        assert_eq!(
            status(authorize(Some("s3"), &headers)),
            Some(StatusCode::UNAUTHORIZED)
        );
        headers.insert(header::AUTHORIZATION, "Bearer s3".parse().unwrap());
        assert_eq!(status(authorize(Some("s3"), &headers)), None);
    }
}
