//! The service's HTTP server: the telemetry's read-only routes and the
//! runtime's own routes, which change what runs ([`admin`]).
//!
//! The split is one of ownership: quiver-telemetry only reads counters and
//! snapshots; anything that acts on the engine goes through the driver's
//! control channel, which the runtime owns, so it lives here.
//!
//! The server is exposed to whatever can reach its port, so nothing a client
//! does may hold a resource without bound ([`HttpLimits`]): a connection must
//! keep talking, a request must be small and answered in time, and the number
//! of open connections is capped by closing the quietest one, so a flood of
//! idle sockets can neither exhaust file descriptors nor lock `/health` out.

pub mod admin;
mod conn;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use quiver_telemetry::Telemetry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// What one client may hold of the server. Every bound is always on: a
/// server that can be told to wait forever is the problem these solve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Once the first byte of a request arrives, how long the rest of its
    /// request line and headers may take; then the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a connection may move no bytes at all while no handler is
    /// running: waiting for its first or next request (keep-alive), or
    /// writing a response the client does not read. Then it is closed.
    pub idle_timeout: Duration,
    /// From a request's headers to its response's: a handler still running
    /// then is dropped and the client gets 408.
    pub request_timeout: Duration,
    /// Open connections at most. Past it a new connection closes the one
    /// that has been silent longest and has no request in progress; when
    /// every connection has one, the new connection is closed at once.
    pub max_connections: usize,
    /// A request body larger than this gets 413 (on its `Content-Length` at
    /// once, otherwise when a handler reads past it).
    pub max_body_bytes: usize,
    /// The request line and headers together; larger gets 431. At least
    /// [`HttpLimits::MIN_HEADER_BYTES`].
    pub max_header_bytes: usize,
}

impl HttpLimits {
    /// hyper's smallest read buffer, and so the smallest header limit it
    /// can enforce.
    pub const MIN_HEADER_BYTES: usize = 8192;

    /// Why these limits cannot be served, if they cannot: a zero timeout or
    /// cap would refuse every client, and hyper cannot hold a smaller header
    /// buffer.
    pub fn check(&self) -> Result<(), String> {
        let zero = [
            ("header_read_timeout", self.header_read_timeout.is_zero()),
            ("idle_timeout", self.idle_timeout.is_zero()),
            ("request_timeout", self.request_timeout.is_zero()),
            ("max_connections", self.max_connections == 0),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, zero)| *zero) {
            return Err(format!("HTTP limit {name} must be > 0"));
        }
        if self.max_header_bytes < Self::MIN_HEADER_BYTES {
            return Err(format!(
                "HTTP limit max_header_bytes must be >= {}, got {}",
                Self::MIN_HEADER_BYTES,
                self.max_header_bytes
            ));
        }
        Ok(())
    }
}

impl Default for HttpLimits {
    /// Generous for Prometheus, orchestrator probes and operators (small
    /// requests, answered in milliseconds, a scrape every 15 s or more on a
    /// kept-alive connection), tight for anything else.
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves until `shutdown`
/// resolves, within `limits`. Returns the bound address and the server task.
///
/// On shutdown the server stops accepting, closes connections that have no
/// request in progress and lets the others finish their response (each is
/// bounded by the request and idle timeouts), then the task ends.
pub async fn serve(
    addr: SocketAddr,
    telemetry: Arc<Telemetry>,
    admin: admin::Admin,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    limits
        .check()
        .map_err(|message| std::io::Error::new(std::io::ErrorKind::InvalidInput, message))?;
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let routes = quiver_telemetry::http::router(telemetry).merge(admin::router(admin));
    let app = bounded(routes, &limits);
    let task = tokio::spawn(accept_loop(listener, app, limits, shutdown));
    Ok((bound, task))
}

/// `routes` with the per-request limits: the body size and the time to
/// answer. Applied to the merged router so every route, present and future,
/// gets them.
fn bounded(routes: Router, limits: &HttpLimits) -> Router {
    routes
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
}

/// How long to wait after an accept error that is not about one connection
/// (typically EMFILE): retrying at once would spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut live: HashMap<tokio::task::Id, conn::Live> = HashMap::new();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(err) => err.id(),
                };
                live.remove(&id);
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Accepted before the cap is judged, so a full server
                    // closes sockets instead of leaving them in the backlog.
                    if live.len() >= limits.max_connections && !conn::evict_quietest(&mut live) {
                        tracing::debug!(%peer, "http: every connection is busy; refused");
                        continue;
                    }
                    let activity = Arc::new(conn::Activity::new());
                    let handle = tasks.spawn(conn::serve(
                        stream,
                        app.clone(),
                        limits,
                        Arc::clone(&activity),
                        stop_rx.clone(),
                    ));
                    live.insert(handle.id(), conn::Live { activity, handle });
                }
                Err(err) if is_per_connection(&err) => {}
                Err(err) => {
                    tracing::warn!("http: accept failed: {err}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// An accept error about the connection being accepted, which says nothing
/// about the next one.
fn is_per_connection(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, Bytes};
    use axum::http::Request;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    fn limits() -> HttpLimits {
        HttpLimits {
            request_timeout: Duration::from_millis(100),
            max_body_bytes: 16,
            ..HttpLimits::default()
        }
    }

    /// Routes the real ones do not have yet: one that takes its time and
    /// one that reads its body.
    fn routes() -> Router {
        Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/echo", post(|body: Bytes| async move { body }))
    }

    async fn status(request: Request<Body>) -> StatusCode {
        bounded(routes(), &limits())
            .oneshot(request)
            .await
            .map(|response| response.status())
            .unwrap_or_else(|never| match never {})
    }

    #[tokio::test]
    async fn a_handler_past_the_request_timeout_is_answered_408() {
        let started = std::time::Instant::now();
        let request = Request::get("/slow").body(Body::empty()).unwrap();
        assert_eq!(status(request).await, StatusCode::REQUEST_TIMEOUT);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_413_even_without_a_length() {
        let small = Request::post("/echo")
            .body(Body::from("0123456789"))
            .unwrap();
        assert_eq!(status(small).await, StatusCode::OK);
        // No Content-Length header, so only reading the body can tell.
        let large = Request::post("/echo")
            .body(Body::from("x".repeat(40)))
            .unwrap();
        assert_eq!(status(large).await, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn zero_bounds_and_small_header_buffers_are_refused() {
        assert!(HttpLimits::default().check().is_ok());
        let zero = HttpLimits {
            idle_timeout: Duration::ZERO,
            ..HttpLimits::default()
        };
        assert_eq!(
            zero.check().unwrap_err(),
            "HTTP limit idle_timeout must be > 0"
        );
        let small = HttpLimits {
            max_header_bytes: 4096,
            ..HttpLimits::default()
        };
        assert_eq!(
            small.check().unwrap_err(),
            "HTTP limit max_header_bytes must be >= 8192, got 4096"
        );
    }
}
