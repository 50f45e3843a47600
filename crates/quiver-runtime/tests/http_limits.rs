//! The HTTP server under hostile clients, over real sockets: the real
//! `quiver_runtime::http::serve` on 127.0.0.1 with small limits, spoken to
//! byte by byte. Silent and slow connections are closed by the timeouts that
//! name them, a flood of idle connections past the cap cannot lock `/health`
//! out, and oversized bodies and header blocks are refused.
//!
//! Each test bounds every wait with a deadline and, where it matters, makes
//! the other limits long, so the limit under test is the only explanation of
//! what the client sees.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_runtime::http::{self, HttpLimits};
use quiver_telemetry::{Catalog, Telemetry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Longer than any test takes: a limit set to it never fires.
const NEVER: Duration = Duration::from_secs(60);
/// How long anything that should happen promptly may take on a loaded
/// 2-core machine.
const PROMPTLY: Duration = Duration::from_secs(3);

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: HttpLimits) -> Server {
        let telemetry = Arc::new(Telemetry::new(&Catalog::default()).unwrap());
        let (control, _receiver) = quiver_driver::control_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let (addr, task) = http::serve(
            "127.0.0.1:0".parse().unwrap(),
            telemetry,
            http::admin::Admin {
                control,
                token: None,
                reload: None,
            },
            limits,
            async {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }
}

/// Limits where nothing fires unless a test lowers it.
fn lenient() -> HttpLimits {
    HttpLimits {
        header_read_timeout: NEVER,
        idle_timeout: NEVER,
        request_timeout: NEVER,
        max_connections: 64,
        max_body_bytes: 1024,
        max_header_bytes: HttpLimits::MIN_HEADER_BYTES,
    }
}

/// Reads until the server closes the connection (end of stream or reset)
/// and returns what it sent; panics if it is still open at `deadline`.
async fn until_closed(stream: &mut TcpStream, deadline: Instant) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!("connection still open at the deadline"),
            Ok(Ok(0)) | Ok(Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Whether the server closes the connection within `wait`.
async fn closes_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// One response: status code and body, read by its Content-Length.
async fn response(stream: &mut TcpStream) -> (u16, String) {
    let deadline = Instant::now() + PROMPTLY;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = find(&received, b"\r\n\r\n") {
            let head = String::from_utf8(received[..end].to_vec()).unwrap();
            let status = head[9..12].parse().unwrap();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let body_start = end + 4;
            if received.len() >= body_start + length {
                let body = &received[body_start..body_start + length];
                return (status, String::from_utf8(body.to_vec()).unwrap());
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut buf))
            .await
            .expect("no complete response before the deadline")
            .unwrap();
        assert!(n > 0, "closed mid-response: {received:?}");
        received.extend_from_slice(&buf[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn get_health(stream: &mut TcpStream) -> (u16, String) {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: quiver\r\n\r\n")
        .await
        .unwrap();
    response(stream).await
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(500);
    let server = Server::start(HttpLimits {
        idle_timeout: idle,
        header_read_timeout: Duration::from_millis(100),
        ..lenient()
    })
    .await;
    // Before connecting, so the server's clock cannot have started earlier.
    let opened = Instant::now();
    let mut silent = server.connect().await;
    let sent = until_closed(&mut silent, opened + idle + PROMPTLY).await;
    // Not the header timeout: no request had begun, so it never started.
    assert!(
        opened.elapsed() >= idle,
        "closed after {:?}",
        opened.elapsed()
    );
    assert!(sent.is_empty(), "{sent:?}");
}

#[tokio::test]
async fn headers_trickled_byte_by_byte_are_cut_off_by_the_header_timeout() {
    let header = Duration::from_millis(300);
    let server = Server::start(HttpLimits {
        header_read_timeout: header,
        ..lenient()
    })
    .await;
    let started = Instant::now();
    let stream = server.connect().await;
    let (mut reader, mut writer) = stream.into_split();
    // Bytes keep moving, so only the header deadline can close this.
    let trickle = tokio::spawn(async move {
        writer.write_all(b"GET /health HTTP/1.1\r\n").await?;
        loop {
            writer.write_all(b"X").await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(header + PROMPTLY, async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open while headers trickle in");
    assert!(
        started.elapsed() >= header,
        "closed after {:?}",
        started.elapsed()
    );
    trickle.abort();
}

#[tokio::test]
async fn a_kept_alive_connection_waits_for_the_idle_timeout_not_the_header_timeout() {
    let header = Duration::from_millis(200);
    let idle = Duration::from_millis(2_000);
    let server = Server::start(HttpLimits {
        header_read_timeout: header,
        idle_timeout: idle,
        ..lenient()
    })
    .await;
    let mut stream = server.connect().await;
    assert_eq!(
        get_health(&mut stream).await,
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    // Waiting for the next request is idling, not reading headers.
    tokio::time::sleep(header * 3).await;
    // Before asking, so the server's idle clock starts after this.
    let asked = Instant::now();
    assert_eq!(get_health(&mut stream).await.0, 200);
    until_closed(&mut stream, asked + idle + PROMPTLY).await;
    assert!(
        asked.elapsed() >= idle,
        "closed after {:?}",
        asked.elapsed()
    );
}

#[tokio::test]
async fn past_the_cap_the_quietest_connections_make_room_and_health_answers() {
    const CAP: usize = 8;
    const SILENT: usize = 20;
    // No timeout can fire during the test: whatever closes is the cap.
    let server = Server::start(HttpLimits {
        max_connections: CAP,
        ..lenient()
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..SILENT {
        silent.push(server.connect().await);
    }
    let mut probe = server.connect().await;
    let asked = Instant::now();
    assert_eq!(get_health(&mut probe).await.0, 200);
    assert!(
        asked.elapsed() < PROMPTLY,
        "answered after {:?}",
        asked.elapsed()
    );

    // The cap holds the probe and the CAP - 1 newest silent connections;
    // every older one was closed, oldest first, to make room.
    let kept = CAP - 1;
    let (closed, open) = silent.split_at_mut(SILENT - kept);
    for (i, stream) in closed.iter_mut().enumerate() {
        assert!(
            closes_within(stream, PROMPTLY).await,
            "silent connection {i} of {SILENT} is still open"
        );
    }
    for (i, stream) in open.iter_mut().enumerate() {
        assert!(
            !closes_within(stream, Duration::from_millis(200)).await,
            "silent connection {} of {SILENT} was closed",
            SILENT - kept + i
        );
    }
    // The probe is still served on its kept-alive connection.
    assert_eq!(get_health(&mut probe).await.0, 200);
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let server = Server::start(HttpLimits {
        max_body_bytes: 1024,
        ..lenient()
    })
    .await;
    let mut small = server.connect().await;
    small
        .write_all(b"POST /health HTTP/1.1\r\nHost: quiver\r\nContent-Length: 10\r\n\r\n0123456789")
        .await
        .unwrap();
    // Within the limit, the route answers for itself: /health is GET only.
    assert_eq!(response(&mut small).await.0, 405);

    let mut large = server.connect().await;
    // Refused on the declared length, before a byte of the body is sent.
    large
        .write_all(b"POST /health HTTP/1.1\r\nHost: quiver\r\nContent-Length: 4096\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(response(&mut large).await.0, 413);
}

#[tokio::test]
async fn a_header_block_over_the_limit_gets_431() {
    let limit = HttpLimits::MIN_HEADER_BYTES;
    let server = Server::start(HttpLimits {
        max_header_bytes: limit,
        ..lenient()
    })
    .await;
    let head = "GET /health HTTP/1.1\r\nHost: quiver\r\nX-Fill: ";

    let mut fits = server.connect().await;
    let request = format!("{head}{}\r\n\r\n", "a".repeat(limit / 2));
    fits.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(response(&mut fits).await.0, 200);

    let mut over = server.connect().await;
    // Exactly the limit and still unfinished: the server reads all of it
    // (so it closes without a reset) and can only refuse.
    let request = format!("{head}{}", "a".repeat(limit - head.len()));
    assert_eq!(request.len(), limit);
    over.write_all(request.as_bytes()).await.unwrap();
    let sent = until_closed(&mut over, Instant::now() + PROMPTLY).await;
    let sent = String::from_utf8_lossy(&sent);
    assert!(sent.starts_with("HTTP/1.1 431 "), "{sent:?}");
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_idle_connections() {
    let mut server = Server::start(lenient()).await;
    let mut silent = server.connect().await;
    let mut kept_alive = server.connect().await;
    assert_eq!(get_health(&mut kept_alive).await.0, 200);
    server.stop.take().unwrap().send(()).unwrap();
    let ended = tokio::time::timeout(PROMPTLY, &mut server.task).await;
    assert!(ended.expect("server still running").unwrap().is_ok());
    assert!(closes_within(&mut silent, PROMPTLY).await);
    assert!(closes_within(&mut kept_alive, PROMPTLY).await);
    assert!(TcpStream::connect(server.addr).await.is_err());
}
