//! One connection under the server's [`HttpLimits`].
//!
//! hyper enforces the header size, and the header deadline through the
//! timer it is given; everything else comes from [`Activity`], which the
//! connection's socket, its requests and its responses keep up to date, and
//! which the accept loop reads to choose a connection to close.
//!
//! The header deadline is hyper's `header_read_timeout` with one change:
//! hyper starts it when it begins waiting for a request, which would make it
//! the keep-alive idle time as well. [`HeaderTimer`] holds it until the
//! request's first byte arrives, so waiting is bounded by the idle timeout
//! and reading headers by the header timeout, each as documented.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use super::HttpLimits;

/// A connection the accept loop tracks.
pub(super) struct Live {
    pub activity: Arc<Activity>,
    pub handle: tokio::task::AbortHandle,
}

/// Closes the connection that has moved no bytes for longest among those
/// with no request in progress, to make room for a new one. False when every
/// connection has a request in progress: those end within the request and
/// idle timeouts, and closing one would fail a client that did nothing wrong.
pub(super) fn evict_quietest(live: &mut HashMap<tokio::task::Id, Live>) -> bool {
    let quietest = live
        .iter()
        .filter(|(_, conn)| !conn.activity.is_busy())
        .min_by_key(|(_, conn)| conn.activity.last_io())
        .map(|(id, _)| *id);
    match quietest.and_then(|id| live.remove(&id)) {
        Some(conn) => {
            // Dropping the task drops the socket: the descriptor is free now.
            conn.handle.abort();
            tracing::debug!("http: connection limit reached; closed the quietest connection");
            true
        }
        None => false,
    }
}

/// What a connection is doing, as far as the limits care. Relaxed atomics:
/// the accept loop reads them only to pick a connection to close, where a
/// value a moment old chooses as well.
pub(super) struct Activity {
    epoch: Instant,
    /// Nanoseconds after `epoch` of the last byte read or written, or of the
    /// end of the last handler (the response starts being written then).
    last_io: AtomicU64,
    /// Reads that returned data; the header deadline starts when it moves.
    reads: AtomicU64,
    /// Requests whose handler is running: the idle timeout waits for them,
    /// since the request timeout already bounds them.
    handling: AtomicUsize,
    /// Requests received and not yet fully answered: a connection with one
    /// is never closed to make room, nor on shutdown before it is answered.
    busy: AtomicUsize,
}

impl Activity {
    pub(super) fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last_io: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_io.store(nanos, Ordering::Relaxed);
    }

    fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn last_io(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.last_io.load(Ordering::Relaxed))
    }

    fn is_handling(&self) -> bool {
        self.handling.load(Ordering::Relaxed) > 0
    }

    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed) > 0
    }

    /// A request's headers were read; the guards end its handler and its
    /// response.
    fn request(self: &Arc<Self>) -> (Handling, Busy) {
        self.busy.fetch_add(1, Ordering::Relaxed);
        self.handling.fetch_add(1, Ordering::Relaxed);
        (Handling(Arc::clone(self)), Busy(Arc::clone(self)))
    }
}

/// A running handler; dropped when it returns or is cancelled.
struct Handling(Arc<Activity>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A request not yet fully answered; dropped with its response body, which
/// hyper does once the body is written or the connection is gone.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one connection until the client closes it, a limit closes it, or
/// the server stops (`stop` changes).
pub(super) async fn serve(
    stream: TcpStream,
    app: Router,
    limits: HttpLimits,
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Tracked {
        stream,
        activity: Arc::clone(&activity),
    });
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let app = app.clone();
        let (handling, busy) = requests.request();
        async move {
            let Ok(response) = app.oneshot(request).await;
            drop(handling);
            Ok::<_, Infallible>(response.map(|body| Answering { body, _busy: busy }))
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(HeaderTimer(Arc::clone(&activity)))
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let idle_since = if activity.is_handling() {
            Instant::now()
        } else {
            activity.last_io()
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!("http: connection closed: {err}");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                // Nothing of a request that has not been read is lost by
                // closing now; one being answered is let finish.
                if !activity.is_busy() {
                    return;
                }
                conn.as_mut().graceful_shutdown();
                stopping = true;
            }
            () = tokio::time::sleep_until(idle_since + limits.idle_timeout) => {
                let quiet = activity.last_io() + limits.idle_timeout <= Instant::now();
                if quiet && !activity.is_handling() {
                    tracing::debug!("http: no bytes for {:?}; connection closed", limits.idle_timeout);
                    return;
                }
            }
        }
    }
}

/// A response body that keeps its request counted as in progress until
/// hyper has written it (or given up on it).
struct Answering {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for Answering {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, noting in [`Activity`] every byte that moves.
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read();
        }
        result
    }
}

impl Tracked {
    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        if matches!(result, Poll::Ready(Ok(n)) if *n > 0) {
            self.activity.touch();
        }
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// hyper's timer for one connection. hyper uses it for nothing but the
/// header deadline, which it asks for each time it starts waiting for a
/// request.
#[derive(Clone)]
struct HeaderTimer(Arc<Activity>);

impl hyper::rt::Timer for HeaderTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeaderDeadline {
            reads_at_start: self.0.reads(),
            activity: Arc::clone(&self.0),
            timeout: duration,
            sleep: None,
        })
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep(deadline.saturating_duration_since(std::time::Instant::now()))
    }
}

/// `timeout` after the first byte read since hyper began waiting for a
/// request; before that byte, never (the idle timeout covers the wait).
struct HeaderDeadline {
    activity: Arc<Activity>,
    reads_at_start: u64,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl std::future::Future for HeaderDeadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.sleep.is_none() {
            // Pending with no wake-up registered is sound here: hyper polls
            // this only after a read of the socket came up short, and that
            // read wakes the connection when the next bytes arrive, which
            // is the only thing that can start the deadline.
            if self.activity.reads() == self.reads_at_start {
                return Poll::Pending;
            }
            let timeout = self.timeout;
            self.sleep = Some(Box::pin(tokio::time::sleep(timeout)));
        }
        match self.sleep.as_mut() {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl hyper::rt::Sleep for HeaderDeadline {}
