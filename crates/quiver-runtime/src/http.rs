//! The service's HTTP server: the telemetry's read-only routes and the
//! runtime's own routes, which change what runs ([`admin`]).
//!
//! The split is one of ownership: quiver-telemetry only reads counters and
//! snapshots; anything that acts on the engine goes through the driver's
//! control channel, which the runtime owns, so it lives here.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use quiver_driver::ControlHandle;
use quiver_telemetry::Telemetry;

/// Binds `addr` (port 0 picks a free port) and serves until `shutdown`
/// resolves. Returns the bound address and the server task.
pub async fn serve(
    addr: SocketAddr,
    telemetry: Arc<Telemetry>,
    control: ControlHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = quiver_telemetry::http::router(telemetry).merge(admin::router(control));
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, task))
}

/// Routes that act on the running engine (pause, resume, stop, reset a
/// strategy; reload), each a [`quiver_driver::Request`] sent through the
/// control channel and answered with the transitions it made. They are
/// mounted here, behind the operator token, once hostile input is bounded
/// everywhere the server reads it; until then the router is empty.
pub mod admin {
    use axum::Router;
    use quiver_driver::ControlHandle;

    /// The mutation routes, with the handle they send commands through.
    pub fn router(control: ControlHandle) -> Router {
        Router::new().with_state(control)
    }
}
