//! End-to-end behaviour of the live service, `quiver run`, and of
//! `quiver publish`: replay parity, HTTP endpoints and the Prometheus
//! exposition (checked by `promtool`), SIGTERM drain, and against a real
//! redis-server: exactly-once signal streams across `kill -9` restarts,
//! correlation ids, dead letters and partitions.
//!
//! The Redis tests read the server's URL from `QUIVER_TEST_REDIS_URL`
//! (`eval "$(scripts/redis.sh start)"` sets it; `scripts/test.sh` does that).
//! Without it they print a notice and pass, unless `QUIVER_REQUIRE_REDIS=1`
//! (set by `scripts/test.sh`), in which case they fail: CI must never skip
//! them silently. The same goes for `promtool`. Each test uses its own key
//! prefix, so they share one server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{quiver, read_text, tempdir, write};

const TICK_LATENCY: &str = "market_tick_process_latency_ms";
const STRATEGY_PROCESSING: &str = "strategy_processing_duration_ms";
const INFERENCE_LATENCY: &str = "strategy_inference_latency_ms";
const DEMO_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/demo.yaml");
/// Live runs are compared with `quiver replay` byte for byte; an inference
/// that timed out on a loaded test machine would be a HOLD replay never
/// gives, so the demo's ML strategies get a timeout no run reaches.
const NO_INFERENCE_TIMEOUT: &str = "600";

fn required() -> bool {
    std::env::var("QUIVER_REQUIRE_REDIS").as_deref() == Ok("1")
}

/// The test server's URL; `None` (after a notice) when there is none and it
/// is not required.
fn redis_url() -> Option<String> {
    match std::env::var("QUIVER_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !required(),
                "QUIVER_TEST_REDIS_URL is not set but QUIVER_REQUIRE_REDIS=1: start a server with \
                 `eval \"$(scripts/redis.sh start)\"` (scripts/test.sh does this)"
            );
            eprintln!("SKIPPED: no QUIVER_TEST_REDIS_URL (start one with `eval \"$(scripts/redis.sh start)\"`)");
            None
        }
    }
}

/// A key prefix no other test (or earlier run) uses.
fn unique_prefix(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("t{}.{name}.{nanos}", std::process::id())
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `quiver run`.
struct Live {
    child: Child,
    stderr: Arc<Mutex<String>>,
    http: Option<SocketAddr>,
}

impl Live {
    /// Starts `quiver run ARGS` with `env`; when `http` is set, waits for the
    /// endpoints to be up (the service prints their address).
    fn start(args: &[&str], env: &[(String, String)], stdout: Stdio, http: bool) -> Live {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_quiver"));
        cmd.arg("run")
            .args(args)
            .env_remove("QUIVER_LOG")
            .env("STRATEGY__INFERENCE_TIMEOUT_SECONDS", NO_INFERENCE_TIMEOUT)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if http {
            cmd.env("QUIVER__HTTP_ADDR", "127.0.0.1:0");
        } else {
            cmd.env("QUIVER__HTTP_ADDR", "off");
        }
        let mut child = cmd.spawn().expect("starting quiver run");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap_or_else(|p| p.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut live = Live {
            child,
            stderr,
            http: None,
        };
        if http {
            let mut addr = None;
            wait_until(Duration::from_secs(60), "the HTTP endpoints", || {
                if let Ok(Some(status)) = live.child.try_wait() {
                    panic!(
                        "quiver run exited early ({status}); stderr:\n{}",
                        live.stderr()
                    );
                }
                addr = live
                    .stderr()
                    .lines()
                    .find_map(|l| l.split("http on http://").nth(1))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse().ok());
                addr.is_some()
            });
            live.http = addr;
        }
        live
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http.expect("started with http"), path)
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, up to `timeout`.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let mut status = None;
        wait_until(timeout, "quiver run to exit", || {
            status = self.child.try_wait().expect("polling the child");
            status.is_some()
        });
        status.expect("exited")
    }

    /// SIGTERM, then expects a clean exit 0.
    fn terminate(mut self) -> String {
        self.signal("TERM");
        let status = self.wait(Duration::from_secs(60));
        let stderr = self.stderr();
        assert_eq!(
            status.code(),
            Some(0),
            "quiver run did not exit 0 after SIGTERM; stderr:\n{stderr}"
        );
        stderr
    }

    /// `kill -9`: no chance to drain.
    fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

/// A test that fails before stopping its service must not leave it running.
impl Drop for Live {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// `POST path` with a bearer token and no body.
fn http_post(addr: SocketAddr, path: &str, token: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// Runs `promtool check metrics` on `exposition`; `None` when promtool is
/// missing and not required.
fn promtool_check(exposition: &str) -> Option<()> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            assert!(
                !required(),
                "promtool is not installed ({err}) but QUIVER_REQUIRE_REDIS=1: run scripts/redis.sh install"
            );
            eprintln!("SKIPPED promtool check: promtool not installed");
            return None;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("writing to promtool");
    let out = child.wait_with_output().expect("promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 3 is "parsed fine, lint findings". The only finding allowed is the
    // `_ms` suffix of the histograms whose names the seeds and the issues fix
    // (`market_tick_process_latency_ms`, `strategy_processing_duration_ms`,
    // `strategy_inference_latency_ms`).
    let seed_named = |line: &str| {
        line.trim().is_empty()
            || [TICK_LATENCY, STRATEGY_PROCESSING, INFERENCE_LATENCY]
                .iter()
                .any(|n| line == format!("{n} metric names should not contain abbreviated units"))
    };
    let ok =
        out.status.success() || (out.status.code() == Some(3) && report.lines().all(seed_named));
    assert!(
        ok,
        "promtool check metrics failed ({}):\n{report}\nexposition:\n{exposition}",
        out.status
    );
    Some(())
}

/// The value of the sample `series` (name with labels, as exposed).
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Replay signal lines of `signals` (JSONL) grouped by broker, in order.
fn by_broker(signals: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in signals.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("a signal line is JSON");
        let broker = value["broker"].as_str().expect("broker").to_owned();
        out.entry(broker).or_default().push(line.to_owned());
    }
    out
}

/// Generates ticks and replays them through the demo config: (ticks file,
/// expected signals per broker).
fn replayed(
    dir: &Path,
    ticks: u64,
    seed: u64,
) -> (std::path::PathBuf, BTreeMap<String, Vec<String>>) {
    let path = dir.join("ticks.csv");
    quiver([
        "gen",
        "--instruments",
        "50",
        "--ticks",
        &ticks.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        path.to_str().expect("utf-8 path"),
    ])
    .expect_code(0);
    let replay = quiver([
        "replay",
        "--config",
        DEMO_CONFIG,
        "--ticks",
        path.to_str().expect("utf-8 path"),
    ]);
    replay.expect_code(0);
    let expected = by_broker(&replay.stdout_text());
    assert!(
        expected.values().map(Vec::len).sum::<usize>() > 100,
        "the scenario must signal"
    );
    (path, expected)
}

// ------------------------------------------------------------ redis helpers

/// `quiver publish` of `ticks` into `partitions` streams `{prefix}.ticks.{p}`; their names.
fn publish_partitioned(url: &str, ticks: &Path, prefix: &str, partitions: u32) -> Vec<String> {
    let base = format!("{prefix}.ticks");
    quiver([
        "publish",
        "--ticks",
        ticks.to_str().expect("utf-8"),
        "--redis",
        url,
        "--stream",
        &base,
        "--partitions",
        &partitions.to_string(),
    ])
    .expect_code(0);
    (0..partitions).map(|p| format!("{base}.{p}")).collect()
}

fn conn(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// (entries-read, lag, pending) of `group` on `stream`.
fn group_progress(
    con: &mut redis::Connection,
    stream: &str,
    group: &str,
) -> Option<(i64, i64, i64)> {
    let reply: redis::Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query(con)
        .ok()?;
    let redis::Value::Array(groups) = reply else {
        return None;
    };
    for g in groups {
        let redis::Value::Array(flat) = g else {
            continue;
        };
        let mut fields = BTreeMap::new();
        for pair in flat.chunks_exact(2) {
            if let redis::Value::BulkString(k) = &pair[0] {
                fields.insert(String::from_utf8_lossy(k).into_owned(), pair[1].clone());
            }
        }
        let name = match fields.get("name") {
            Some(redis::Value::BulkString(n)) => String::from_utf8_lossy(n).into_owned(),
            _ => continue,
        };
        if name != group {
            continue;
        }
        let int = |k: &str| match fields.get(k) {
            Some(redis::Value::Int(n)) => *n,
            _ => -1,
        };
        return Some((int("entries-read"), int("lag"), int("pending")));
    }
    None
}

/// Waits until `group` has read and acknowledged all `total` entries of every stream.
fn wait_drained(url: &str, streams: &[String], group: &str, total: i64, timeout: Duration) {
    let mut con = conn(url);
    wait_until(
        timeout,
        "the consumer group to read and acknowledge every tick",
        || {
            let mut read = 0;
            for stream in streams {
                match group_progress(&mut con, stream, group) {
                    Some((entries_read, lag, pending)) if lag == 0 && pending == 0 => {
                        read += entries_read
                    }
                    _ => return false,
                }
            }
            read == total
        },
    );
}

/// The `data` field of every entry of `stream`, in stream order.
fn stream_data(con: &mut redis::Connection, stream: &str) -> Vec<String> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(con)
        .unwrap_or_else(|e| panic!("XRANGE {stream}: {e}"));
    reply
        .ids
        .iter()
        .map(|entry| {
            entry
                .get::<String>("data")
                .unwrap_or_else(|| panic!("{stream} entry {} has no data", entry.id))
        })
        .collect()
}

fn stream_fields(con: &mut redis::Connection, stream: &str) -> Vec<BTreeMap<String, String>> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(con)
        .unwrap_or_else(|e| panic!("XRANGE {stream}: {e}"));
    reply
        .ids
        .iter()
        .map(|entry| {
            entry
                .map
                .keys()
                .filter_map(|k| Some((k.clone(), entry.get::<String>(k)?)))
                .collect()
        })
        .collect()
}

/// Environment for one service instance on `prefix`'s streams.
fn redis_env(
    url: &str,
    prefix: &str,
    group: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = vec![
        ("QUIVER__SOURCE".to_owned(), "redis".to_owned()),
        ("QUIVER__REDIS_URL".to_owned(), url.to_owned()),
        (
            "QUIVER__REDIS__STREAM".to_owned(),
            format!("{prefix}.ticks"),
        ),
        ("QUIVER__REDIS__GROUP".to_owned(), group.to_owned()),
        (
            "QUIVER__REDIS__SIGNAL_STREAM_PREFIX".to_owned(),
            format!("{prefix}.{group}.signals."),
        ),
        (
            "QUIVER__REDIS__DEAD_LETTER_STREAM".to_owned(),
            format!("{prefix}.{group}.dlq"),
        ),
        (
            "QUIVER__REDIS__DEDUP_KEY_PREFIX".to_owned(),
            format!("{prefix}:{group}:published:"),
        ),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

fn signal_streams(
    con: &mut redis::Connection,
    prefix: &str,
    group: &str,
    brokers: impl Iterator<Item = String>,
) -> BTreeMap<String, Vec<String>> {
    brokers
        .map(|b| {
            let data = stream_data(con, &format!("{prefix}.{group}.signals.{b}"));
            (b, data)
        })
        .collect()
}

fn assert_same_streams(
    actual: &BTreeMap<String, Vec<String>>,
    expected: &BTreeMap<String, Vec<String>>,
    what: &str,
) {
    for (broker, lines) in expected {
        let got = &actual[broker];
        if got != lines {
            let first = got
                .iter()
                .zip(lines)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(lines.len()));
            panic!(
                "{what}: signals.{broker} differs from `quiver replay`: {} entries, expected {}; first difference at {first}:\n  got      {:?}\n  expected {:?}",
                got.len(),
                lines.len(),
                got.get(first),
                lines.get(first)
            );
        }
    }
}

/// A settings file with [`NO_INFERENCE_TIMEOUT`].
fn no_timeout_settings(dir: &Path) -> String {
    let path = dir.join("settings.yaml");
    std::fs::write(
        &path,
        format!("strategy:\n  inference_timeout_seconds: {NO_INFERENCE_TIMEOUT}\n"),
    )
    .expect("writing settings");
    path.display().to_string()
}

// ------------------------------------------------------------------ tests

/// `quiver run` on `config` with `ticks` as an unpaced replay source, no
/// HTTP and no inference timeout, plus `extra`; signals on stdout.
fn run_on_replay(config: &str, ticks: &Path, dir: &Path, extra: &[&str]) -> support::Run {
    let source = format!("replay:{}", ticks.display());
    let settings = no_timeout_settings(dir);
    let mut args = vec![
        "run",
        "--config",
        config,
        "--source",
        &source,
        "--speed",
        "0",
        "--http",
        "off",
        "--settings",
        &settings,
    ];
    args.extend_from_slice(extra);
    quiver(args)
}

#[test]
fn run_on_a_replay_file_writes_what_replay_writes() {
    let dir = tempdir();
    let (ticks, expected) = replayed(dir.path(), 20_000, 3);
    let run = run_on_replay(DEMO_CONFIG, &ticks, dir.path(), &[]);
    run.expect_code(0);
    assert_eq!(by_broker(&run.stdout_text()), expected);
}

#[test]
fn a_live_paper_desk_books_what_the_backtest_of_the_same_ticks_books() {
    let dir = tempdir();
    let ticks = gen_ticks(dir.path(), 50, 20_000, 5);
    let backtest = dir.path().join("backtest");
    quiver([
        "backtest",
        "--config",
        DEMO_CONFIG,
        "--ticks",
        ticks.to_str().expect("utf-8"),
        "--out",
        backtest.to_str().expect("utf-8"),
    ])
    .expect_code(0);
    let live = dir.path().join("live");
    let report = live.to_str().expect("utf-8");
    let run = run_on_replay(DEMO_CONFIG, &ticks, dir.path(), &["--paper-report", report]);
    run.expect_code(0).expect_stderr_contains(&format!(
        "paper trading report: {}",
        live.join("report.html").display()
    ));
    // The desk sat beside the brokers: the signals are replay's, whole.
    assert!(!run.stdout_text().is_empty());
    for file in ["summary.json", "summary.csv", "trades.csv", "equity.csv"] {
        let read = |d: &Path| std::fs::read_to_string(d.join(file)).expect(file);
        assert!(
            read(&live) == read(&backtest),
            "{file} of the live paper desk differs from the backtest's"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(live.join("summary.json")).expect("json"))
            .expect("JSON");
    assert!(
        summary["total"]["trades"].as_u64() > Some(1_000),
        "{}",
        summary["total"]
    );
}

#[test]
fn with_a_paper_desk_the_risk_controller_gates_what_the_brokers_receive() {
    let dir = tempdir();
    let ticks = gen_ticks(dir.path(), 10, 40_000, 9);
    let on = "[1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010]";
    let config = dir.path().join("strategies.yaml");
    std::fs::write(
        &config,
        format!(
            "risk: {{max_strategy_exposure: 200000, max_instrument_exposure: 150000, max_strategy_drawdown: 0.01}}\n\
             costs: {{spread_bps: 2, taker_fee_bps: 1, edge_bps: 300, min_edge_bps: 3}}\n\
             strategies:\n\
             \x20 - {{id: mom, strategy_type: momentum, parameters: {{lookback_periods: 10, threshold: 0.002}}, brokers: [paper, zerodha], instruments: {on}}}\n\
             \x20 - {{id: mr, strategy_type: mean_reversion, parameters: {{lookback_periods: 20, z_entry: 1.5}}, brokers: [paper], instruments: {on}}}\n"
        ),
    )
    .expect("config");
    let live = dir.path().join("live");
    let run = run_on_replay(
        config.to_str().expect("utf-8"),
        &ticks,
        dir.path(),
        &["--paper-report", live.to_str().expect("utf-8")],
    );
    run.expect_code(0);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(live.join("summary.json")).expect("json"))
            .expect("JSON");
    let brokers = |id: &str| if id == "mom" { 2 } else { 1 };
    let (mut sent, mut refused, mut throttled) = (0u64, 0u64, 0u64);
    let mut reasons = std::collections::BTreeSet::new();
    for row in summary["strategies"].as_array().expect("rows") {
        let id = row["strategy"].as_str().expect("id");
        let v = &row["verdicts"];
        let n = |r: &str| v[r].as_u64().expect(r);
        sent += (n("accepted") + n("throttled") + n("no_change")) * brokers(id);
        for reason in [
            "instrument_limit",
            "strategy_limit",
            "tag_limit",
            "total_limit",
            "strategy_drawdown",
            "total_drawdown",
            "below_edge",
        ] {
            refused += n(reason) * brokers(id);
            if n(reason) > 0 {
                reasons.insert(reason);
            }
        }
        throttled += n("throttled");
    }
    assert!(
        refused > 100 && throttled > 10,
        "the desk must refuse and throttle: {summary}"
    );
    // What left is what the desk let through; the rest is dead-lettered.
    let lines = run.stdout_text().lines().count() as u64;
    assert_eq!(lines, sent);
    run.expect_stderr_contains(&format!("{refused} refused by the paper desk"));
    assert!(reasons.len() >= 2, "{reasons:?}");
    for reason in &reasons {
        run.expect_stderr_contains(&format!("dead letter: refused by the paper desk: {reason}"));
    }
    // A throttled signal leaves with the size the desk ordered: the trades
    // of a fill on each broker line's tick carry the same quantity.
    let trades = std::fs::read_to_string(live.join("trades.csv")).expect("trades");
    let smaller = run
        .stdout_text()
        .lines()
        .filter(|l| l.contains("\"strategy_id\":\"mom\"") && l.contains("\"broker\":\"paper\""))
        .filter(|l| !l.contains("\"quantity\":100,"))
        .count();
    assert!(smaller > 0, "no throttled line of mom");
    assert!(trades.lines().count() > 100);
}

/// Signal lines of `signals` (JSONL) grouped by strategy, in order.
fn by_strategy(signals: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in signals.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("a signal line is JSON");
        let id = value["strategy_id"]
            .as_str()
            .expect("strategy_id")
            .to_owned();
        out.entry(id).or_default().push(line.to_owned());
    }
    out
}

#[test]
fn an_engine_behind_its_source_sheds_background_then_normal_strategies_never_critical_ones() {
    let dir = tempdir();
    let ticks = dir.path().join("ticks.csv");
    quiver([
        "gen",
        "--instruments",
        "50",
        "--ticks",
        "30000",
        "--seed",
        "11",
        "--out",
        ticks.to_str().expect("utf-8 path"),
    ])
    .expect_code(0);
    let instruments: Vec<String> = (1001..1051).map(|t| t.to_string()).collect();
    let instruments = instruments.join(", ");
    // The ML strategies make the engine slower than a file read at full
    // speed: the queue in front of it fills, and shedding must choose.
    let mut config = format!(
        "models: {}/../../models/registry.yaml\nstrategies:\n  - id: guard\n    strategy_type: momentum\n    priority: critical\n    parameters: {{lookback_periods: 5, threshold: 0.001}}\n    brokers: [paper]\n    instruments: [{instruments}]\n  - id: swing\n    strategy_type: mean_reversion\n    priority: normal\n    parameters: {{lookback_periods: 20, z_entry: 1.5}}\n    brokers: [paper]\n    instruments: [{instruments}]\n",
        env!("CARGO_MANIFEST_DIR")
    );
    for (i, model) in ["ml_momentum_mlp", "ml_momentum_logreg", "ml_momentum_rf"]
        .iter()
        .enumerate()
    {
        config += &format!(
            "  - id: research-{i}\n    strategy_type: ml_momentum\n    priority: background\n    parameters: {{model: {model}, confidence_threshold: 0.34}}\n    brokers: [paper]\n    instruments: [{instruments}]\n"
        );
    }
    let config_path = dir.path().join("strategies.yaml");
    write(&config_path, &config);
    let replay = quiver([
        "replay",
        "--config",
        config_path.to_str().expect("utf-8"),
        "--ticks",
        ticks.to_str().expect("utf-8"),
    ]);
    replay.expect_code(0);
    let expected = by_strategy(&replay.stdout_text());
    let settings = dir.path().join("settings.yaml");
    write(
        &settings,
        format!(
            "quiver:\n  load_shedding: true\n  batch_size: 64\nstrategy:\n  inference_timeout_seconds: {NO_INFERENCE_TIMEOUT}\n"
        ),
    );
    let run = quiver([
        "run",
        "--config",
        config_path.to_str().expect("utf-8"),
        "--source",
        &format!("replay:{}", ticks.display()),
        "--speed",
        "0",
        "--http",
        "off",
        "--settings",
        settings.to_str().expect("utf-8"),
    ]);
    run.expect_code(0);
    let stderr = &run.stderr;
    let shed: u64 = stderr
        .split(" evaluations shed")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no shed count in the stop note:\n{stderr}"));
    assert!(shed > 0, "nothing was shed:\n{stderr}");
    let got = by_strategy(&run.stdout_text());
    // Critical: every evaluation ran, so exactly replay's signals.
    assert_eq!(got["guard"], expected["guard"]);
    // The others: some evaluations skipped, and what they did signal is
    // what replay signalled on those ticks (history and features are
    // shared and kept whole; only the evaluation was skipped).
    let mut fewer = 0;
    for (id, lines) in &expected {
        let kept = got.get(id).cloned().unwrap_or_default();
        let mut rest = lines.iter();
        for line in &kept {
            assert!(
                rest.any(|l| l == line),
                "{id}: a signal replay did not give, or out of order: {line}"
            );
        }
        if id.starts_with("research-") && kept.len() < lines.len() {
            fewer += 1;
        }
    }
    assert!(
        fewer > 0,
        "no background strategy lost an evaluation\n{stderr}"
    );
}

#[test]
fn synthetic_service_serves_health_metrics_and_strategies_and_drains_on_sigterm() {
    let dir = tempdir();
    let out = dir.path().join("signals.jsonl");
    let live = Live::start(
        &[
            "--config",
            DEMO_CONFIG,
            "--source",
            "synthetic",
            "--sink",
            &format!("jsonl:{}", out.display()),
        ],
        &[
            ("QUIVER__SYNTHETIC__RATE".to_owned(), "20000".to_owned()),
            ("QUIVER__BATCH_SIZE".to_owned(), "64".to_owned()),
        ],
        Stdio::null(),
        true,
    );
    assert_eq!(live.get("/health").0, 200);
    wait_until(Duration::from_secs(30), "/ready", || {
        live.get("/ready").0 == 200
    });
    // Let it trade a little, until both of the demo's models have answered
    // (their counters are copied into the metrics a few times a second, and
    // a slow machine reaches the ML strategies' warm-up later).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let exposition = live.get("/metrics").1;
        let traded = sample(&exposition, "market_tick_processed_total").unwrap_or(0.0) > 2_000.0
            && ["ml_momentum_mlp", "ml_momentum_logreg"]
                .iter()
                .all(|model| {
                    sample(
                        &exposition,
                        &format!("strategy_inferences_total{{model=\"{model}\"}}"),
                    )
                    .is_some_and(|n| n > 0.0)
                })
            && std::fs::metadata(&out)
                .map(|m| m.len() > 0)
                .unwrap_or(false);
        if traded {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no signals or no inferences after 60 s:\n{exposition}\n{}",
            live.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The snapshot is refreshed a few times a second.
    let mut body = String::new();
    wait_until(
        Duration::from_secs(30),
        "momentum-fast active in /strategies",
        || {
            let (status, text) = live.get("/strategies");
            assert_eq!(status, 200);
            body = text;
            body.contains("\"state\":\"active\"") && body.contains("\"p99_processing_ms\":0")
        },
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&body).expect("/strategies is JSON");
    assert_eq!(rows.len(), 13, "{body}");
    let first = &rows[0];
    for key in [
        "id",
        "type",
        "kind",
        "state",
        "instruments",
        "signals",
        "errors",
        "p99_processing_ms",
    ] {
        assert!(
            first.get(key).is_some(),
            "/strategies row lacks {key}: {first}"
        );
    }
    assert_eq!(first["id"], "momentum-fast");
    assert_eq!(first["type"], "momentum");
    assert_eq!(first["kind"], "rules");
    assert_eq!(first["state"], "active");
    assert!(
        first["p99_processing_ms"].as_f64().is_some_and(|p| p > 0.0),
        "{first}"
    );
    assert!(rows.iter().any(|r| r["kind"] == "hybrid"));

    let (status, exposition) = live.get("/metrics");
    assert_eq!(status, 200);
    for name in [
        "market_tick_processed_total",
        "market_tick_process_latency_ms_bucket",
        "signals_total{strategy=\"momentum-fast\",kind=\"rules\",side=\"BUY\"}",
        "signals_dropped_total{reason=\"below_min_confidence\"}",
        "strategy_errors_total{type=\"momentum\",error_category=\"panic\"}",
        "strategy_processing_duration_ms_bucket{type=\"momentum\"",
        "strategy_state{strategy=\"momentum-fast\",state=\"active\"} 1",
        "feature_cache_hit_ratio",
        "history_ring_utilization{instrument=\"1001\"}",
        "market_tick_source_lag",
        "market_tick_pending_entries",
        "runtime_queue_depth{stage=\"engine\"}",
        "strategy_inference_latency_ms_bucket{model=\"ml_momentum_mlp\",le=",
        "strategy_batch_size_bucket{model=\"ml_momentum_logreg\",le=\"64\"}",
        "strategy_drops_total{reason=\"timeout\"}",
        "inference_queue_depth",
    ] {
        assert!(
            exposition.contains(name),
            "/metrics lacks {name}:\n{exposition}"
        );
    }
    // The demo's ML strategies ran their models through the pool.
    for model in ["ml_momentum_mlp", "ml_momentum_logreg"] {
        let labels = format!("{{model=\"{model}\"}}");
        assert!(
            sample(&exposition, &format!("strategy_inferences_total{labels}"))
                .is_some_and(|n| n > 0.0),
            "{model}: no inferences:\n{exposition}"
        );
        assert!(
            sample(&exposition, &format!("strategy_batch_size_count{labels}"))
                .is_some_and(|n| n > 0.0),
            "{model}: no batches"
        );
        assert!(
            sample(&exposition, &format!("model_load_seconds{labels}")).is_some_and(|s| s > 0.0),
            "{model}: no load time"
        );
    }
    assert!(
        sample(&exposition, "history_ring_utilization{instrument=\"1001\"}")
            .is_some_and(|u| u > 0.0 && u <= 1.0)
    );
    promtool_check(&exposition);

    let stderr = live.terminate();
    assert!(stderr.contains("SIGTERM: draining"), "{stderr}");
    // Drained: every line written is whole JSON.
    let text = read_text(&out);
    assert!(text.ends_with('\n'));
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("whole JSON lines");
    }
}

#[test]
fn redis_runs_equal_replay_and_survive_kill_9_at_random_moments() {
    let Some(url) = redis_url() else { return };
    let dir = tempdir();
    let total = 30_000u64;
    let (ticks, expected) = replayed(dir.path(), total, 11);
    let prefix = unique_prefix("crash");
    let stream = format!("{prefix}.ticks");
    quiver([
        "publish",
        "--ticks",
        ticks.to_str().expect("utf-8"),
        "--redis",
        &url,
        "--stream",
        &stream,
    ])
    .expect_code(0);
    let mut con = conn(&url);
    let streams = vec![stream.clone()];

    // An uninterrupted run, stopped with SIGTERM once everything is acknowledged.
    let live = Live::start(
        &["--config", DEMO_CONFIG],
        &redis_env(&url, &prefix, "calm", &[]),
        Stdio::null(),
        true,
    );
    wait_drained(
        &url,
        &streams,
        "calm",
        total as i64,
        Duration::from_secs(120),
    );
    let stderr = live.terminate();
    assert!(stderr.contains("0 duplicates suppressed"), "{stderr}");
    let calm = signal_streams(&mut con, &prefix, "calm", expected.keys().cloned());
    assert_same_streams(&calm, &expected, "uninterrupted run");

    // The same ticks, killed with SIGKILL at random moments and restarted.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    eprintln!("crash schedule seed {seed}");
    let mut rng = seed | 1;
    let mut next = move |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    let env = redis_env(
        &url,
        &prefix,
        "crashy",
        &[
            ("QUIVER__BATCH_SIZE", "16"),
            ("QUIVER__QUEUE_CAPACITY", "4"),
        ],
    );
    let mut interrupted = 0;
    for round in 0..6 {
        let live = Live::start(&["--config", DEMO_CONFIG], &env, Stdio::null(), true);
        // Ready: history preloaded, reading. Then let it work a random while.
        wait_until(Duration::from_secs(60), "/ready", || {
            live.get("/ready").0 == 200
        });
        std::thread::sleep(Duration::from_millis(10 + next(300)));
        live.kill9();
        let (read, lag, pending) =
            group_progress(&mut con, &stream, "crashy").unwrap_or((0, -1, 0));
        eprintln!("kill -9 #{round}: entries read {read}, lag {lag}, pending {pending}");
        if pending > 0 || read < total as i64 {
            interrupted += 1;
        }
    }
    assert!(
        interrupted >= 2,
        "the kills should land mid-stream (seed {seed})"
    );
    let live = Live::start(&["--config", DEMO_CONFIG], &env, Stdio::null(), true);
    wait_drained(
        &url,
        &streams,
        "crashy",
        total as i64,
        Duration::from_secs(120),
    );
    live.terminate();
    let crashy = signal_streams(&mut con, &prefix, "crashy", expected.keys().cloned());
    assert_same_streams(
        &crashy,
        &expected,
        &format!("run killed at random moments (seed {seed})"),
    );
    assert_eq!(crashy, calm);
}

#[test]
fn redis_correlation_ids_reach_signals_and_failures_reach_the_dead_letter_stream() {
    let Some(url) = redis_url() else { return };
    let dir = tempdir();
    let config = dir.path().join("strategies.yaml");
    write(
        &config,
        "strategies:\n  - id: up\n    strategy_type: momentum\n    parameters: {lookback_periods: 2, threshold: 0.0001}\n    brokers: [paper, zerodha]\n    instruments: [7]\n",
    );
    let prefix = unique_prefix("dlq");
    let stream = format!("{prefix}.ticks");
    let mut con = conn(&url);
    let ticks = 8;
    for i in 0..ticks {
        let _: String = redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg(&[
                (
                    "ts_ns",
                    (1_767_584_700_000_000_000i64 + i * 1_000_000).to_string(),
                ),
                ("instrument", "7".to_owned()),
                ("price", format!("{}.05", 100 + i)),
                ("volume", "10".to_owned()),
                ("seq", i.to_string()),
                ("correlation_id", format!("corr-{i}")),
            ])
            .query(&mut con)
            .expect("XADD tick");
    }
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg(&[
            ("ts_ns", "1"),
            ("instrument", "7"),
            ("price", "abc"),
            ("volume", "1"),
        ])
        .query(&mut con)
        .expect("XADD bad tick");
    // A broker stream that is not a stream: every signal to it fails.
    let paper = format!("{prefix}.g.signals.paper");
    let _: () = redis::cmd("SET")
        .arg(&paper)
        .arg("not a stream")
        .query(&mut con)
        .expect("SET");

    let live = Live::start(
        &["--config", config.to_str().expect("utf-8")],
        &redis_env(&url, &prefix, "g", &[]),
        Stdio::null(),
        true,
    );
    wait_drained(
        &url,
        std::slice::from_ref(&stream),
        "g",
        ticks + 1,
        Duration::from_secs(60),
    );
    let metrics = live.get("/metrics").1;
    live.terminate();

    let zerodha = stream_data(&mut con, &format!("{prefix}.g.signals.zerodha"));
    // Momentum over 2 ticks on a rising price: a BUY from the second tick on.
    assert_eq!(zerodha.len(), (ticks - 1) as usize, "{zerodha:?}");
    for line in &zerodha {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let seq = v["seq"].as_u64().expect("seq");
        assert_eq!(v["correlation_id"], format!("corr-{seq}"), "{line}");
    }
    let dead = stream_fields(&mut con, &format!("{prefix}.g.dlq"));
    let with_reason = |prefix: &str| -> Vec<_> {
        dead.iter()
            .filter(|f| f.get("reason").is_some_and(|r| r.starts_with(prefix)))
            .collect()
    };
    // Refused, and after three refusals in a row withheld untried (how many
    // of each depends on how the ticks were batched): every one kept.
    let failed = with_reason("publish_failed:");
    let withheld = with_reason("emission_paused:");
    assert_eq!(failed.len() + withheld.len(), zerodha.len(), "{dead:?}");
    assert!(failed.len() >= 3, "{dead:?}");
    assert!(failed[0]["reason"].contains("WRONGTYPE"), "{:?}", failed[0]);
    assert_eq!(failed[0]["stream"], paper);
    assert!(failed[0]["data"].contains("\"broker\":\"paper\""));
    let malformed: Vec<_> = dead
        .iter()
        .filter(|f| {
            f.get("reason")
                .is_some_and(|r| r.starts_with("malformed_tick:"))
        })
        .collect();
    assert_eq!(malformed.len(), 1, "{dead:?}");
    assert!(
        malformed[0]["reason"].contains("price: \"abc\" is not a decimal"),
        "{:?}",
        malformed[0]
    );
    assert_eq!(
        sample(&metrics, "signals_dropped_total{reason=\"publish_failed\"}"),
        Some(failed.len() as f64)
    );
    assert_eq!(
        sample(
            &metrics,
            "signals_dropped_total{reason=\"emission_paused\"}"
        ),
        Some(withheld.len() as f64)
    );
    assert_eq!(
        sample(
            &metrics,
            "market_tick_rejected_total{reason=\"malformed_tick\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "signals_published_total{broker=\"zerodha\"}"),
        Some(zerodha.len() as f64)
    );
    promtool_check(&metrics);
}

/// Adds ticks `range` of instrument 7 to `stream`, one price step up each.
fn add_rising_ticks(con: &mut redis::Connection, stream: &str, range: std::ops::Range<i64>) {
    for i in range {
        let _: String = redis::cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg(&[
                (
                    "ts_ns",
                    (1_767_584_700_000_000_000i64 + i * 1_000_000).to_string(),
                ),
                ("instrument", "7".to_owned()),
                ("price", format!("{}.05", 100 + i)),
                ("volume", "10".to_owned()),
            ])
            .query(con)
            .expect("XADD tick");
    }
}

/// The same ticks as [`add_rising_ticks`], as a CSV file.
fn rising_ticks_csv(path: &Path, range: std::ops::Range<i64>) {
    let mut text = String::from("ts_ns,instrument,price,volume\n");
    for i in range {
        text += &format!(
            "{},7,{}.05,10\n",
            1_767_584_700_000_000_000i64 + i * 1_000_000,
            100 + i
        );
    }
    write(path, &text);
}

#[test]
fn a_broker_that_keeps_refusing_is_paused_for_the_strategy_and_retried_after_its_back_off() {
    let Some(url) = redis_url() else { return };
    let dir = tempdir();
    let config = dir.path().join("strategies.yaml");
    write(
        &config,
        "strategies:\n  - id: up\n    strategy_type: momentum\n    parameters: {lookback_periods: 2, threshold: 0.0001}\n    brokers: [paper, zerodha]\n    instruments: [7]\n",
    );
    let prefix = unique_prefix("pause");
    let stream = format!("{prefix}.ticks");
    let zerodha_stream = format!("{prefix}.g.signals.zerodha");
    let mut con = conn(&url);
    // zerodha's stream is not a stream: it refuses every signal.
    let _: () = redis::cmd("SET")
        .arg(&zerodha_stream)
        .arg("not a stream")
        .query(&mut con)
        .expect("SET");
    let (early, first, total) = (10, 20, 40);
    add_rising_ticks(&mut con, &stream, 0..early);
    let live = Live::start(
        &["--config", config.to_str().expect("utf-8")],
        &redis_env(
            &url,
            &prefix,
            "g",
            &[
                ("QUIVER__PUBLISH__PAUSE_AFTER", "3"),
                ("QUIVER__PUBLISH__BACKOFF_BASE_MS", "2000"),
            ],
        ),
        Stdio::null(),
        true,
    );
    // Nine refusals pause the pair; the next ticks' zerodha signals are
    // withheld (or, were the machine slower than the pause, retried,
    // refused and paused again for longer).
    let drained = |n| {
        wait_drained(
            &url,
            std::slice::from_ref(&stream),
            "g",
            n,
            Duration::from_secs(60),
        )
    };
    drained(early);
    add_rising_ticks(&mut con, &stream, early..first);
    drained(first);
    // Paused for zerodha only, and shown where operators look.
    let (_, row) = state_of(&live, "up");
    let paused = row["paused_brokers"].as_array().expect("paused_brokers");
    assert_eq!(paused.len(), 1, "{row}");
    assert_eq!(paused[0]["broker"], "zerodha");
    assert!(
        paused[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("WRONGTYPE")),
        "{row}"
    );
    let (_, list) = live.get("/strategies");
    assert!(
        list.contains("\"paused_brokers\":[{\"broker\":\"zerodha\""),
        "{list}"
    );
    let metrics = live.get("/metrics").1;
    assert_eq!(
        sample(
            &metrics,
            "broker_emission_paused{strategy=\"up\",broker=\"zerodha\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "broker_emission_paused{strategy=\"up\",broker=\"paper\"}"
        ),
        Some(0.0)
    );
    assert!(
        sample(
            &metrics,
            "signals_dropped_total{reason=\"emission_paused\"}"
        )
        .is_some_and(|n| n > 0.0),
        "{metrics}"
    );
    // The broker is repaired; once the pause has passed, the next signals
    // are tried, accepted, and the pair resumes.
    let _: () = redis::cmd("DEL")
        .arg(&zerodha_stream)
        .query(&mut con)
        .expect("DEL");
    let retry_at = paused[0]["retry_at_unix_ms"].as_u64().expect("retry_at");
    wait_until(Duration::from_secs(30), "the pause to pass", || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .is_ok_and(|now| now.as_millis() as u64 > retry_at)
    });
    add_rising_ticks(&mut con, &stream, first..total);
    drained(total);
    let (_, row) = state_of(&live, "up");
    assert_eq!(row["paused_brokers"], serde_json::json!([]), "{row}");
    let metrics = live.get("/metrics").1;
    assert_eq!(
        sample(
            &metrics,
            "broker_emission_paused{strategy=\"up\",broker=\"zerodha\"}"
        ),
        Some(0.0)
    );
    promtool_check(&metrics);
    live.terminate();

    // Every signal is in its broker's stream or in the dead-letter stream,
    // once: paper has all of replay's, zerodha's stream and dead letters
    // together have all of replay's.
    let ticks = dir.path().join("ticks.csv");
    rising_ticks_csv(&ticks, 0..total);
    let replay = quiver([
        "replay",
        "--config",
        config.to_str().expect("utf-8"),
        "--ticks",
        ticks.to_str().expect("utf-8"),
    ]);
    replay.expect_code(0);
    let ids_of = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
                v["signal_id"].as_str().expect("signal_id").to_owned()
            })
            .collect()
    };
    let expected = by_broker(&replay.stdout_text());
    assert_eq!(expected["zerodha"].len(), (total - 1) as usize);
    let paper = stream_data(&mut con, &format!("{prefix}.g.signals.paper"));
    assert_eq!(ids_of(&paper), ids_of(&expected["paper"]));
    let published = stream_data(&mut con, &zerodha_stream);
    assert!(
        !published.is_empty(),
        "nothing reached zerodha after the repair"
    );
    let dead = stream_fields(&mut con, &format!("{prefix}.g.dlq"));
    let mut failed = 0;
    let mut withheld = 0;
    let mut kept: Vec<String> = ids_of(&published);
    for letter in &dead {
        assert_eq!(letter["stream"], zerodha_stream, "{letter:?}");
        if letter["reason"].starts_with("publish_failed: WRONGTYPE") {
            failed += 1;
        } else {
            let reason = &letter["reason"];
            assert!(
                reason.starts_with("emission_paused: zerodha refused ")
                    && reason.contains(" signals in a row (latest: WRONGTYPE"),
                "{letter:?}"
            );
            withheld += 1;
        }
        kept.push(letter["signal_id"].clone());
    }
    assert!(failed >= 3 && withheld > 0, "{dead:?}");
    kept.sort();
    let mut want = ids_of(&expected["zerodha"]);
    want.sort();
    assert_eq!(
        kept, want,
        "each zerodha signal published or dead-lettered, once"
    );
}

#[test]
fn redis_partitions_split_instruments_and_keep_every_signal() {
    let Some(url) = redis_url() else { return };
    let dir = tempdir();
    let total = 10_000u64;
    let (ticks, expected) = replayed(dir.path(), total, 5);
    let prefix = unique_prefix("parts");
    let streams = publish_partitioned(&url, &ticks, &prefix, 3);
    let mut con = conn(&url);
    for stream in &streams {
        let len: u64 = redis::cmd("XLEN")
            .arg(stream)
            .query(&mut con)
            .expect("XLEN");
        assert!(len > total / 10, "{stream} holds {len} ticks");
    }
    let live = Live::start(
        &["--config", DEMO_CONFIG],
        &redis_env(&url, &prefix, "p", &[("QUIVER__REDIS__PARTITIONS", "3")]),
        Stdio::null(),
        true,
    );
    wait_drained(&url, &streams, "p", total as i64, Duration::from_secs(120));
    live.terminate();
    let got = signal_streams(&mut con, &prefix, "p", expected.keys().cloned());
    for (broker, want) in &expected {
        let got: std::collections::BTreeSet<&String> = got[broker].iter().collect();
        let want: std::collections::BTreeSet<&String> = want.iter().collect();
        let missing: Vec<_> = want.difference(&got).take(5).collect();
        let extra: Vec<_> = got.difference(&want).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "partitioned run: signals.{broker} differs from replay as a set ({} vs {} entries);\nmissing (first 5): {missing:#?}\nextra (first 5): {extra:#?}",
            got.len(),
            want.len()
        );
    }
}

/// `--record DIR` over three Redis partitions: while the service runs,
/// the recording is readable up to the last second; after it stops,
/// `quiver replay --ticks DIR` gives exactly the signals of replaying the
/// published file, and the live run's as a set.
#[test]
fn a_recorded_live_run_replays_to_the_same_signals() {
    let Some(url) = redis_url() else { return };
    let dir = tempdir();
    let total = 10_000u64;
    let (ticks, expected) = replayed(dir.path(), total, 11);
    let prefix = unique_prefix("record");
    let streams = publish_partitioned(&url, &ticks, &prefix, 3);
    let recording = dir.path().join("recording");
    let live = Live::start(
        &[
            "--config",
            DEMO_CONFIG,
            "--record",
            recording.to_str().expect("utf-8"),
        ],
        &redis_env(&url, &prefix, "r", &[("QUIVER__REDIS__PARTITIONS", "3")]),
        Stdio::null(),
        true,
    );
    wait_drained(&url, &streams, "r", total as i64, Duration::from_secs(120));
    let replay_recording = || {
        quiver([
            "replay",
            "--config",
            DEMO_CONFIG,
            "--ticks",
            recording.to_str().expect("utf-8"),
        ])
    };
    // Checkpointed within a second of arriving: readable while recording.
    let every = "replay: 10,000 ticks";
    wait_until(
        Duration::from_secs(10),
        "the recording to hold every tick",
        || {
            let run = replay_recording();
            run.code == Some(0) && run.stderr.contains(every)
        },
    );
    live.terminate();
    let mut con = conn(&url);
    let got = signal_streams(&mut con, &prefix, "r", expected.keys().cloned());
    let replayed = replay_recording();
    replayed.expect_code(0).expect_stderr_contains(every);
    let from_recording = by_broker(&replayed.stdout_text());
    assert_same_streams(&from_recording, &expected, "replay of the recording");
    for (broker, want) in &expected {
        let live: std::collections::BTreeSet<&String> = got[broker].iter().collect();
        let want: std::collections::BTreeSet<&String> = want.iter().collect();
        assert_eq!(live, want, "the live run's signals.{broker}, as a set");
    }
    let files = std::fs::read_dir(&recording)
        .expect("the recording")
        .count();
    assert_eq!(files, 50, "one directory per instrument");
}

/// A model swapped on disk while the service runs: the new version is loaded
/// and verified off the dispatch thread and serves every later batch; a
/// broken update keeps the running version.
#[test]
fn a_model_updated_on_disk_is_swapped_in_while_the_service_runs() {
    let dir = tempdir();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models");
    std::fs::copy(
        models.join("ml_momentum_mlp.onnx"),
        dir.path().join("mlp.onnx"),
    )
    .expect("copying the model");
    let entry = |version: &str, sha: &str| {
        format!(
            "models:\n  - name: mlp\n    path: mlp.onnx\n    sha256: \"{sha}\"\n    version: \"{version}\"\n    framework: sklearn\n    input: {{features: 9, dtype: f32}}\n    output: {{kind: classifier, classes: [-1, 0, 1]}}\n"
        )
    };
    const MLP_SHA: &str = "2829f2fd0d6a3ec231593376bc10396960842d8ed7e839d412e1b9ebe3d63f40";
    let registry = dir.path().join("registry.yaml");
    write(&registry, entry("1.0.0", MLP_SHA));
    let config = dir.path().join("strategies.yaml");
    write(
        &config,
        "models: registry.yaml\nstrategies:\n  - id: ml\n    strategy_type: ml_momentum\n    parameters: {model: mlp, confidence_threshold: 0.34}\n    brokers: [paper]\n    instruments: [1001, 1002, 1003, 1004, 1005]\n",
    );
    let out = dir.path().join("signals.jsonl");
    let live = Live::start(
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--source",
            "synthetic",
            "--sink",
            &format!("jsonl:{}", out.display()),
        ],
        &[
            ("QUIVER__SYNTHETIC__RATE".to_owned(), "5000".to_owned()),
            ("QUIVER__SYNTHETIC__INSTRUMENTS".to_owned(), "5".to_owned()),
            ("QUIVER__BATCH_SIZE".to_owned(), "32".to_owned()),
        ],
        Stdio::null(),
        true,
    );
    let versions = || -> Vec<String> {
        read_text(&out)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["metadata"]["model_version"].as_str().map(str::to_owned))
            .collect()
    };
    wait_until(
        Duration::from_secs(60),
        "signals from version 1.0.0",
        || out.exists() && versions().iter().any(|v| v == "1.0.0"),
    );
    // A broken update (checksum mismatch) keeps 1.0.0 serving.
    write(&registry, entry("1.5.0", &"0".repeat(64)));
    std::thread::sleep(Duration::from_millis(2_500));
    let seen = versions().len();
    wait_until(
        Duration::from_secs(30),
        "more signals after the bad update",
        || versions().len() > seen + 20,
    );
    assert!(versions().iter().all(|v| v == "1.0.0"));
    // A good update is swapped in.
    write(&registry, entry("2.0.0", MLP_SHA));
    wait_until(
        Duration::from_secs(60),
        "signals from version 2.0.0",
        || versions().iter().any(|v| v == "2.0.0"),
    );
    let stderr = live.terminate();
    assert!(
        stderr.contains("model update refused") && stderr.contains("mlp"),
        "{stderr}"
    );
    // Versions never go back: every signal after the first 2.0.0 is 2.0.0.
    let all = versions();
    let first = all
        .iter()
        .position(|v| v == "2.0.0")
        .expect("a 2.0.0 signal");
    assert!(all[first..].iter().all(|v| v == "2.0.0"));
}

/// A model whose call never ends (a `Loop` of ~10^12 iterations on real
/// features, models/testdata/loop_on_input.onnx) is stopped at its deadline
/// on ONNX Runtime, taken out of service, counted and named; the other
/// strategy keeps signalling, and SIGTERM still drains.
#[test]
fn a_model_over_its_deadline_is_taken_out_of_service_and_the_service_goes_on() {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if Path::new(&path).is_file() => {}
        _ if std::env::var("QUIVER_REQUIRE_ORT").as_deref() == Ok("1") => {
            panic!("QUIVER_REQUIRE_ORT=1 but ORT_DYLIB_PATH does not name libonnxruntime.so")
        }
        _ => {
            eprintln!("SKIPPED: ORT_DYLIB_PATH is not set (tract refuses Loop at load)");
            return;
        }
    }
    let dir = tempdir();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models");
    for (from, to) in [
        ("ml_momentum_mlp.onnx", "mlp.onnx"),
        ("testdata/loop_on_input.onnx", "loop.onnx"),
    ] {
        std::fs::copy(models.join(from), dir.path().join(to)).expect("copying a model");
    }
    let registry = dir.path().join("registry.yaml");
    write(
        &registry,
        "models:
  - name: mlp
    path: mlp.onnx
    sha256: \"2829f2fd0d6a3ec231593376bc10396960842d8ed7e839d412e1b9ebe3d63f40\"\n    version: \"1\"\n    framework: sklearn\n    input: {features: 9, dtype: f32}\n    output: {kind: classifier, classes: [-1, 0, 1]}\n  - name: loop_on_input\n    path: loop.onnx\n    sha256: \"995f84e9dfbb8cbeafb44c3c4f74c4e507a06dd97ff123c2ade69fb4c9137a1a\"\n    version: \"1\"\n    framework: onnx\n    input: {features: 9, dtype: f32}\n    output: {kind: regressor, threshold: 2.0}\n    deadline_ms: 300\n",
    );
    let config = dir.path().join("strategies.yaml");
    write(
        &config,
        "models: registry.yaml\nstrategies:\n  - id: ml\n    strategy_type: ml_momentum\n    parameters: {model: mlp, confidence_threshold: 0.34}\n    brokers: [paper]\n    instruments: [1001, 1002, 1003, 1004, 1005]\n  - id: loop\n    strategy_type: ml_momentum\n    parameters: {model: loop_on_input}\n    brokers: [paper]\n    instruments: [1001, 1002, 1003, 1004, 1005]\n",
    );
    let out = dir.path().join("signals.jsonl");
    let live = Live::start(
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--source",
            "synthetic",
            "--sink",
            &format!("jsonl:{}", out.display()),
        ],
        &[
            ("QUIVER__SYNTHETIC__RATE".to_owned(), "5000".to_owned()),
            ("QUIVER__SYNTHETIC__INSTRUMENTS".to_owned(), "5".to_owned()),
            ("QUIVER__ML_BACKEND".to_owned(), "onnxruntime".to_owned()),
        ],
        Stdio::null(),
        true,
    );
    let counted = "model_deadline_exceeded_total{model=\"loop_on_input\"}";
    wait_until(
        Duration::from_secs(60),
        "the deadline to be counted",
        || sample(&live.get("/metrics").1, counted).is_some_and(|n| n >= 1.0),
    );
    let signals = || read_text(&out).lines().count();
    let seen = signals();
    wait_until(
        Duration::from_secs(60),
        "signals after the model was retired",
        || signals() > seen + 20,
    );
    // Later requests are answered out of service (counters are synced
    // periodically, so wait for them).
    wait_until(Duration::from_secs(60), "model_unavailable drops", || {
        sample(
            &live.get("/metrics").1,
            "strategy_drops_total{reason=\"model_unavailable\"}",
        )
        .is_some_and(|n| n > 0.0)
    });
    let (_, exposition) = live.get("/metrics");
    assert_eq!(sample(&exposition, counted), Some(1.0), "counted once");
    assert_eq!(
        sample(&exposition, "model_deadline_exceeded_total{model=\"mlp\"}"),
        Some(0.0)
    );
    promtool_check(&exposition);
    let stderr = live.terminate();
    assert!(
        stderr.contains(
            "model taken out of service: model loop_on_input: onnxruntime inference exceeded its deadline of 300 ms (stopped after "
        ),
        "{stderr}"
    );
    let text = read_text(&out);
    assert!(text.lines().all(|l| l.contains("\"strategy_id\":\"ml\"")));
}

/// An operator's terminal or log collector may go away before the service
/// does: with its stderr closed, SIGTERM still drains and exits 0.
#[test]
fn sigterm_drains_even_when_stderr_is_closed() {
    let dir = tempdir();
    let out = dir.path().join("signals.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args([
            "run",
            "--config",
            DEMO_CONFIG,
            "--source",
            "synthetic",
            "--sink",
            &format!("jsonl:{}", out.display()),
            "--http",
            "off",
        ])
        .env_remove("QUIVER_LOG")
        .env("QUIVER__SYNTHETIC__RATE", "2000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting quiver run");
    // Killed however the test ends.
    struct Reaper(Child);
    impl Drop for Reaper {
        fn drop(&mut self) {
            if matches!(self.0.try_wait(), Ok(None)) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut child = Reaper(child);
    // Read the first line, so the service is up, then close the pipe.
    let mut stderr = BufReader::new(child.0.stderr.take().expect("stderr is piped"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("reading stderr");
    assert!(first.starts_with("quiver run:"), "{first}");
    drop(stderr);
    wait_until(Duration::from_secs(30), "signals", || {
        std::fs::metadata(&out).is_ok_and(|m| m.len() > 0)
    });
    let pid = child.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()));
    let mut status = None;
    wait_until(Duration::from_secs(60), "quiver run to exit", || {
        status = child.0.try_wait().expect("polling the child");
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

/// Peak and current resident memory of a process, in bytes
/// (`VmHWM`, `VmRSS` of /proc/PID/status).
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("{name} missing in {status}"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// The most memory the service may take while junk flows: the documented
/// bound (README, "Hostile input").
const JUNK_RSS_BOUND: u64 = 96 << 20;

#[test]
fn junk_on_the_bus_gets_the_file_readers_verdict_and_memory_stays_bounded() {
    let Some(url) = redis_url() else { return };
    let dir = tempdir();
    let config = dir.path().join("strategies.yaml");
    write(
        &config,
        "strategies:\n  - id: up\n    strategy_type: momentum\n    parameters: {lookback_periods: 150, threshold: 0.0001}\n    brokers: [paper]\n    instruments: [7]\n",
    );
    let prefix = unique_prefix("junk");
    let stream = format!("{prefix}.ticks");
    let mut con = conn(&url);
    let good = 200i64;
    let junk_per_good = 50;
    let oversized_every = 25;
    let megabyte = "j".repeat(1 << 20);
    let long_id = "c".repeat(200);
    let mut expected = BTreeMap::<&str, u64>::new();
    let mut entries = 0i64;
    let ts = |i: i64| (1_767_584_700_000_000_000i64 + i * 1_000_000).to_string();
    for i in 0..good {
        let mut pipe = redis::pipe();
        pipe.cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg(&[
                ("ts_ns", ts(i)),
                ("instrument", "7".to_owned()),
                ("price", format!("{}.05", 100 + i)),
                ("volume", "10".to_owned()),
                ("seq", i.to_string()),
            ])
            .ignore();
        entries += 1;
        for j in 0..junk_per_good {
            let entry = pipe.cmd("XADD").arg(&stream).arg("*");
            let base = [
                ("ts_ns", ts(i)),
                ("instrument", "7".to_owned()),
                ("price", "1".to_owned()),
                ("volume", "1".to_owned()),
            ];
            let category = match j % 8 {
                0 => {
                    entry.arg(&base).arg("bid").arg("-5");
                    "malformed_tick"
                }
                1 => {
                    entry.arg(&base).arg("ask").arg("0");
                    "malformed_tick"
                }
                2 => {
                    entry.arg(&base).arg("price").arg("2");
                    "malformed_tick"
                }
                3 => {
                    entry.arg(&base[..3]).arg("volume").arg(&b"\xff\xfe"[..]);
                    "malformed_tick"
                }
                4 => {
                    // Before the good tick of this round.
                    entry.arg(&base[1..]).arg("ts_ns").arg(ts(i - 1));
                    "out_of_order_tick"
                }
                5 => {
                    entry.arg(&base).arg("correlation_id").arg(&long_id);
                    "oversized_entry"
                }
                6 => {
                    entry
                        .arg(&base[..2])
                        .arg("price")
                        .arg("-92233720368.99999999")
                        .arg("volume")
                        .arg("1");
                    "malformed_tick"
                }
                _ => {
                    entry.arg(&base[..3]);
                    "malformed_tick"
                }
            };
            entry.ignore();
            entries += 1;
            *expected.entry(category).or_default() += 1;
            if (i * junk_per_good + j) % oversized_every == 0 {
                pipe.cmd("XADD")
                    .arg(&stream)
                    .arg("*")
                    .arg(&base)
                    .arg("junk")
                    .arg(&megabyte)
                    .ignore();
                entries += 1;
                *expected.entry("oversized_entry").or_default() += 1;
            }
        }
        let () = pipe.query(&mut con).expect("XADD");
    }
    assert_eq!(expected.values().sum::<u64>(), 10_000 + 400);

    let live = Live::start(
        &["--config", config.to_str().expect("utf-8")],
        &redis_env(&url, &prefix, "g", &[]),
        Stdio::null(),
        true,
    );
    let pid = live.child.id();
    wait_drained(
        &url,
        std::slice::from_ref(&stream),
        "g",
        entries,
        Duration::from_secs(120),
    );
    assert_eq!(live.get("/health").0, 200);
    let (peak, now) = memory_of(pid);
    let metrics = live.get("/metrics").1;
    live.terminate();
    eprintln!(
        "junk run: peak RSS {} MiB, {} MiB at the end",
        peak >> 20,
        now >> 20
    );
    assert!(
        peak < JUNK_RSS_BOUND,
        "peak RSS {} MiB over {} MiB (now {} MiB)",
        peak >> 20,
        JUNK_RSS_BOUND >> 20,
        now >> 20
    );
    for (category, count) in &expected {
        assert_eq!(
            sample(
                &metrics,
                &format!("market_tick_rejected_total{{reason=\"{category}\"}}")
            ),
            Some(*count as f64),
            "{category}"
        );
    }
    // Momentum over 150 ticks on a rising price: a BUY from the 150th tick on.
    let paper = stream_data(&mut con, &format!("{prefix}.g.signals.paper"));
    assert_eq!(paper.len() as i64, good - 149);
    let dead = stream_fields(&mut con, &format!("{prefix}.g.dlq"));
    assert_eq!(dead.len() as u64, expected.values().sum::<u64>());
    let widest = dead
        .iter()
        .map(|f| f.get("data").map_or(0, String::len))
        .max();
    assert!(
        widest.unwrap_or(0) < 2048,
        "a dead letter carries {widest:?} bytes"
    );
    for needle in [
        "bid: must be > 0, got -5",
        "ask: must be > 0, got 0",
        "duplicate field \"price\"",
        "ts_ns: ",
        "correlation_id: 200 bytes, over the 128-byte limit",
        "over the 4096-byte limit of an entry",
        "price: \"-92233720368.99999999\" is out of range",
        "missing field \"volume\"",
    ] {
        assert!(
            dead.iter()
                .any(|f| f.get("reason").is_some_and(|r| r.contains(needle))),
            "no dead letter says {needle:?}"
        );
    }

    // A restart reads 150 ticks of history back through the junk (400 MiB of
    // it), within its bounds too.
    let again = Live::start(
        &["--config", config.to_str().expect("utf-8")],
        &redis_env(&url, &prefix, "g", &[]),
        Stdio::null(),
        true,
    );
    assert_eq!(again.get("/health").0, 200);
    wait_until(
        Duration::from_secs(60),
        "the restarted service to be ready",
        || again.get("/ready").0 == 200,
    );
    let (peak, _) = memory_of(again.child.id());
    let stderr = again.terminate();
    eprintln!("restart through junk: peak RSS {} MiB", peak >> 20);
    assert!(stderr.contains("(151 preloaded"), "{stderr}");
    assert!(
        peak < JUNK_RSS_BOUND,
        "peak RSS after restart {} MiB",
        peak >> 20
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut con)
        .expect("KEYS");
    let () = redis::cmd("DEL").arg(&keys).query(&mut con).expect("DEL");
}

/// `quiver admin ARGS` against `addr`, with `token` in the environment.
fn admin(addr: SocketAddr, token: Option<&str>, args: &[&str]) -> support::Run {
    let mut full = vec!["admin".to_owned(), "--addr".to_owned(), addr.to_string()];
    if let Some(token) = token {
        full.extend(["--token".to_owned(), token.to_owned()]);
    }
    full.extend(args.iter().map(|a| (*a).to_owned()));
    quiver(full)
}

fn state_of(live: &Live, id: &str) -> (String, serde_json::Value) {
    let (status, body) = live.get(&format!("/strategies/{id}"));
    assert_eq!(status, 200, "{body}");
    let row: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    (row["state"].as_str().unwrap_or("?").to_owned(), row)
}

#[test]
fn the_admin_api_pauses_resumes_and_stops_a_strategy_for_the_token_holder_only() {
    let start = |token: Option<&str>| {
        let mut env = vec![("QUIVER__SYNTHETIC__RATE".to_owned(), "5000".to_owned())];
        if let Some(token) = token {
            env.push(("QUIVER__ADMIN_TOKEN".to_owned(), token.to_owned()));
        }
        Live::start(
            &[
                "--config",
                DEMO_CONFIG,
                "--source",
                "synthetic",
                "--sink",
                "jsonl:/dev/null",
            ],
            &env,
            Stdio::null(),
            true,
        )
    };
    let live = start(Some("s3cret"));
    let addr = live.http.expect("http");
    let id = "momentum-fast";
    wait_until(Duration::from_secs(60), "momentum-fast active", || {
        state_of(&live, id).0 == "active"
    });

    // Without the token, or with a wrong one: 401, nothing changes.
    admin(addr, None, &["pause", id])
        .expect_code(2)
        .expect_stderr_contains("401");
    admin(addr, Some("guess"), &["pause", id])
        .expect_code(2)
        .expect_stderr_contains("401");
    assert_eq!(state_of(&live, id).0, "active");

    let paused = admin(addr, Some("s3cret"), &["pause", id]);
    paused.expect_code(0);
    assert!(
        paused.stdout_text().contains("active -> paused (paused)"),
        "{}",
        paused.stdout_text()
    );
    wait_until(Duration::from_secs(30), "paused in /strategies", || {
        state_of(&live, id).0 == "paused"
    });
    let evaluations = |live: &Live| state_of(live, id).1["evaluations"].as_u64().unwrap_or(0);
    let (before, ticks) = (
        evaluations(&live),
        sample(&live.get("/metrics").1, "market_tick_processed_total"),
    );
    wait_until(Duration::from_secs(30), "more ticks while paused", || {
        sample(&live.get("/metrics").1, "market_tick_processed_total") > ticks.map(|t| t + 1_000.0)
    });
    assert_eq!(
        evaluations(&live),
        before,
        "a paused strategy is not evaluated"
    );

    admin(addr, Some("s3cret"), &["resume", id]).expect_code(0);
    wait_until(Duration::from_secs(30), "evaluated again", || {
        evaluations(&live) > before
    });
    admin(addr, Some("s3cret"), &["stop", id]).expect_code(0);
    // A stopped strategy cannot be resumed: 409, named.
    admin(addr, Some("s3cret"), &["resume", id])
        .expect_code(2)
        .expect_stderr_contains("409");
    admin(addr, Some("s3cret"), &["pause", "no-such"])
        .expect_code(2)
        .expect_stderr_contains("404");
    wait_until(Duration::from_secs(30), "stopped, with its history", || {
        let (state, row) = state_of(&live, id);
        let causes: Vec<_> = row["transitions"]
            .as_array()
            .map(|t| t.iter().filter_map(|c| c["cause"].as_str()).collect())
            .unwrap_or_default();
        state == "stopped" && causes.ends_with(&["paused", "resumed", "stopped"])
    });
    let list = admin(addr, None, &["list"]);
    list.expect_code(0);
    assert!(list
        .stdout_text()
        .lines()
        .any(|l| l.starts_with(id) && l.contains("stopped")));
    live.terminate();

    // With no token configured every mutation is refused.
    let locked = start(None);
    admin(locked.http.expect("http"), Some("s3cret"), &["pause", id])
        .expect_code(2)
        .expect_stderr_contains("403");
    locked.terminate();
}

// ------------------------------------------------------------ reload helpers

/// `quiver gen` into `dir/ticks.csv`.
fn gen_ticks(dir: &Path, instruments: u32, ticks: u64, seed: u64) -> std::path::PathBuf {
    let path = dir.join("ticks.csv");
    quiver([
        "gen",
        "--instruments",
        &instruments.to_string(),
        "--ticks",
        &ticks.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        path.to_str().expect("utf-8"),
    ])
    .expect_code(0);
    path
}

/// Replaces the strategies file `config` with `rows`, whole at once, as an
/// editor's save does.
fn write_set(config: &Path, rows: &[&str]) {
    let next = config.with_extension("next");
    write(&next, format!("strategies:\n{}", rows.concat()));
    std::fs::rename(&next, config).expect("replacing the strategies file");
}

/// `quiver replay --config config --ticks ticks`: what a run without
/// reloads signals.
fn replay_of(config: &Path, ticks: &Path) -> BTreeMap<String, Vec<String>> {
    let run = quiver([
        "replay",
        "--config",
        config.to_str().expect("utf-8"),
        "--ticks",
        ticks.to_str().expect("utf-8"),
    ]);
    run.expect_code(0);
    by_strategy(&run.stdout_text())
}

/// `quiver run` on `config` (a file or a store URL) with `ticks` as a replay
/// source at twice its pace (1 ms apart: 500 ticks/s), signals to `out`.
fn run_paced(config: &str, ticks: &Path, out: &Path, env: &[(&str, &str)]) -> Live {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Live::start(
        &[
            "--config",
            config,
            "--source",
            &format!("replay:{}", ticks.display()),
            "--speed",
            "2",
            "--sink",
            &format!("jsonl:{}", out.display()),
        ],
        &env,
        Stdio::null(),
        true,
    )
}

/// Stops a paced run (SIGTERM: it drains what it read) and returns its
/// signals by strategy, with the ticks it dispatched: the file's first
/// ticks, so the signals must be those a replay gives for them.
fn finished(live: Live, out: &Path) -> (BTreeMap<String, Vec<String>>, u64) {
    let stderr = live.terminate();
    let dispatched = stderr
        .split(" ticks dispatched")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no dispatch count in the stop note:\n{stderr}"));
    (
        by_strategy(&std::fs::read_to_string(out).expect("signals")),
        dispatched,
    )
}

/// The lines of `lines` caused by ticks before `seq`.
fn before(lines: &[String], seq: u64) -> Vec<String> {
    lines
        .iter()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("JSON")["seq"]
                .as_u64()
                .is_some_and(|s| s < seq)
        })
        .cloned()
        .collect()
}

#[test]
fn strategies_reload_while_ticks_flow_keeping_the_unchanged_ones_and_refusing_bad_files_whole() {
    let dir = tempdir();
    // More ticks than the test needs (about 100 s at 2x): it stops the run
    // when done, so a slow machine only uses more of them.
    // 21 instruments: 1021 is followed only by the strategy a reload adds.
    let ticks = gen_ticks(dir.path(), 21, 200_000, 12);
    let on: Vec<String> = (1001..1021).map(|t| t.to_string()).collect();
    let on = on.join(", ");
    let row = |id: &str, body: &str| {
        format!("  - id: {id}\n{body}    brokers: [paper]\n    instruments: [{on}]\n")
    };
    let keep = row(
        "keep",
        "    strategy_type: momentum\n    parameters: {lookback_periods: 5, threshold: 0.001}\n",
    );
    let drop = row("drop", "    strategy_type: rsi\n");
    let change = |lookback: u32| {
        row(
            "change",
            &format!(
                "    strategy_type: mean_reversion\n    parameters: {{lookback_periods: {lookback}, z_entry: 1.0}}\n"
            ),
        )
    };
    let added = format!(
        "  - id: added\n    strategy_type: breakout\n    parameters: {{lookback_periods: 30}}\n    brokers: [paper]\n    instruments: [{on}, 1021]\n"
    );
    let config = dir.path().join("strategies.yaml");
    let set = |rows: &[&str]| write_set(&config, rows);
    set(&[&keep, &drop, &change(20)]);
    let expected = replay_of(&config, &ticks);
    let out = dir.path().join("signals.jsonl");
    let live = run_paced(
        config.to_str().expect("utf-8"),
        &ticks,
        &out,
        &[
            ("QUIVER__ADMIN_TOKEN", "t0ken"),
            ("QUIVER__CONFIG_WATCH_MS", "100"),
        ],
    );
    let addr = live.http.expect("http");
    let processed =
        |live: &Live| sample(&live.get("/metrics").1, "market_tick_processed_total").unwrap_or(0.0);
    wait_until(Duration::from_secs(60), "the first ticks", || {
        processed(&live) > 2_000.0
    });
    let (_, config_status) = live.get("/config");
    let first: serde_json::Value = serde_json::from_str(&config_status).expect("JSON");
    assert_eq!(first["source"], config.display().to_string());
    let version_a = first["version"].as_str().expect("version").to_owned();

    // 1. POST /reload (`quiver admin reload`) applies a changed file; the
    // token is required.
    set(&[&change(30), &added, &keep]);
    admin(addr, None, &["reload"]).expect_code(2);
    let reloaded = admin(addr, Some("t0ken"), &["reload"]);
    reloaded.expect_code(0);
    let said = reloaded.stdout_text();
    assert!(
        said.contains("reloaded: 1 added, 1 removed, 1 changed, 1 unchanged")
            || said.contains("unchanged"),
        "{said}"
    );
    wait_until(Duration::from_secs(30), "the new set serving", || {
        let (_, body) = live.get("/strategies");
        body.contains("\"id\":\"added\"") && !body.contains("\"id\":\"drop\"")
    });
    // The instrument it added has its ring gauge, filling.
    wait_until(
        Duration::from_secs(30),
        "the added instrument's ring gauge",
        || {
            sample(
                &live.get("/metrics").1,
                "history_ring_utilization{instrument=\"1021\"}",
            )
            .is_some_and(|fill| fill > 0.0)
        },
    );
    let at_b = processed(&live);

    // 2. An invalid file is refused whole on SIGHUP; the set keeps serving.
    set(&[
        &keep,
        "  - id: broken\n    strategy_type: momentum\n    parameters: {lookback_periods: 5, speed: 3}\n    brokers: [paper]\n    instruments: [1001]\n",
    ]);
    live.signal("HUP");
    wait_until(Duration::from_secs(30), "the refusal", || {
        sample(
            &live.get("/metrics").1,
            "config_reload_total{result=\"refused\"}",
        )
        .is_some_and(|n| n >= 1.0)
    });
    let (_, config_status) = live.get("/config");
    let status: serde_json::Value = serde_json::from_str(&config_status).expect("JSON");
    let detail = status["last_reload"]["detail"].as_str().unwrap_or("");
    assert!(
        status["last_reload"]["result"] == "refused"
            && detail.contains("strategies.yaml:")
            && detail.contains("parameters.speed"),
        "{status}"
    );
    let (_, body) = live.get("/strategies");
    assert!(
        body.contains("\"id\":\"added\""),
        "still the set before: {body}"
    );
    let at_refusal = processed(&live);

    // 3. The file changing again is picked up on its own.
    set(&[&keep, &drop, &change(20)]);
    wait_until(Duration::from_secs(30), "the file watch reload", || {
        let (_, body) = live.get("/config");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        status["version"] == version_a.as_str() && status["reloads_applied"] == 2
    });
    let at_c = processed(&live);
    assert!(
        at_b < at_refusal && at_refusal < at_c,
        "the reloads happened while ticks flowed: {at_b} {at_refusal} {at_c}"
    );
    // `drop` (RSI) signals rarely: run on until the one added back has.
    wait_until(
        Duration::from_secs(120),
        "a signal of drop added back",
        || {
            let (_, body) = live.get("/strategies");
            let rows: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            rows.as_array()
                .into_iter()
                .flatten()
                .any(|row| row["id"] == "drop" && row["signals"].as_u64().is_some_and(|n| n > 0))
        },
    );

    let (got, dispatched) = finished(live, &out);
    assert!(dispatched as f64 >= at_c);
    // Unchanged through every reload: what it would have signalled anyway.
    assert_eq!(got["keep"], before(&expected["keep"], dispatched));
    let seq = |line: &String| -> u64 {
        serde_json::from_str::<serde_json::Value>(line).expect("JSON")["seq"]
            .as_u64()
            .expect("seq")
    };
    // Added by the first reload, removed by the last: nothing before or
    // after; removed then added back: a gap.
    let added_seqs: Vec<u64> = got.get("added").into_iter().flatten().map(seq).collect();
    assert!(!added_seqs.is_empty(), "the added strategy never signalled");
    let drop_seqs: Vec<u64> = got["drop"].iter().map(seq).collect();
    let (first_added, last_added) = (added_seqs[0], added_seqs[added_seqs.len() - 1]);
    assert!(
        drop_seqs.iter().all(|&s| s < first_added || s > last_added),
        "drop signalled while removed"
    );
    assert!(
        drop_seqs.iter().any(|&s| s > last_added),
        "drop was not added back"
    );
}

#[test]
fn a_thousand_reloads_while_ticks_flow_lose_no_tick_and_leave_the_unchanged_strategy_as_it_was() {
    let dir = tempdir();
    // More ticks than the reloads take (about 200 s at 2x): the run is
    // stopped after them.
    let total = 400_000u64;
    let ticks = gen_ticks(dir.path(), 10, total, 21);
    let on = "[1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010]";
    let keep = format!(
        "  - id: keep\n    strategy_type: momentum\n    parameters: {{lookback_periods: 5, threshold: 0.001}}\n    brokers: [paper]\n    instruments: {on}\n"
    );
    let config = dir.path().join("strategies.yaml");
    write_set(&config, &[&keep]);
    let expected = replay_of(&config, &ticks);
    let out = dir.path().join("signals.jsonl");
    let live = run_paced(
        config.to_str().expect("utf-8"),
        &ticks,
        &out,
        &[
            ("QUIVER__ADMIN_TOKEN", "t0ken"),
            ("QUIVER__CONFIG_WATCH_MS", "0"),
        ],
    );
    let addr = live.http.expect("http");
    wait_until(Duration::from_secs(60), "the first ticks", || {
        sample(&live.get("/metrics").1, "market_tick_processed_total").is_some_and(|n| n > 500.0)
    });
    // A seeded walk over sets: strategies added, removed and changed, and
    // one reload in seven an invalid file.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let kinds = [
        ("momentum", "lookback_periods: {n}, threshold: 0.002"),
        ("mean_reversion", "lookback_periods: {n}, z_entry: 1.5"),
        ("breakout", "lookback_periods: {n}"),
    ];
    let (mut applied, mut refused, mut unchanged) = (0, 0, 0);
    let mut serving = String::new();
    let mut took = Vec::with_capacity(1_000);
    for i in 0..1_000 {
        let mut rows = vec![keep.clone()];
        let invalid = next() % 7 == 0;
        for slot in 0..(next() % 5) {
            let (kind, params) = kinds[(next() % 3) as usize];
            let n = 5 + next() % 40;
            rows.push(format!(
                "  - id: s{slot}\n    strategy_type: {kind}\n    parameters: {{{}}}\n    brokers: [paper]\n    instruments: {on}\n",
                params.replace("{n}", &n.to_string())
            ));
        }
        if invalid {
            rows.push(format!(
                "  - id: bad\n    strategy_type: momentum\n    parameters: {{lookback_periods: {}}}\n    brokers: [paper]\n    instruments: {on}\n",
                if next() % 2 == 0 { "0" } else { "ten" }
            ));
        }
        // Row order does not matter to the diff: shuffle `keep` around.
        let at = (next() as usize) % rows.len();
        rows.swap(0, at);
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        write_set(&config, &rows);
        let asked = Instant::now();
        let (status, body) = http_post(addr, "/reload", "t0ken");
        took.push(asked.elapsed());
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        match (status, reply["result"].as_str()) {
            (200, Some("applied")) => {
                assert!(!invalid, "reload {i}: an invalid file was applied: {body}");
                applied += 1;
                serving = reply["version"].as_str().unwrap_or("").to_owned();
            }
            (200, Some("unchanged")) => unchanged += 1,
            (422, Some("refused")) => {
                assert!(
                    invalid,
                    "reload {i}: a valid file was refused: {body}\n{}",
                    live.stderr()
                );
                assert!(
                    reply["error"].as_str().is_some_and(
                        |e| e.contains("strategies.yaml:") && e.contains("lookback_periods")
                    ),
                    "{body}"
                );
                refused += 1;
                // The set before it still serves.
                let (_, status) = live.get("/config");
                let status: serde_json::Value = serde_json::from_str(&status).expect("JSON");
                assert_eq!(status["version"], serving.as_str(), "reload {i}");
            }
            other => panic!("reload {i}: {other:?}: {body}\n{}", live.stderr()),
        }
    }
    assert_eq!(applied + refused + unchanged, 1_000);
    assert!(
        applied > 500 && refused > 50,
        "{applied} applied, {refused} refused"
    );
    let at_end = sample(&live.get("/metrics").1, "market_tick_processed_total").unwrap_or(0.0);
    assert!(
        at_end < total as f64,
        "the reloads outlasted the ticks: they must happen while ticks flow"
    );
    let metrics = live.get("/metrics").1;
    assert_eq!(
        sample(&metrics, "config_reload_total{result=\"applied\"}"),
        Some(applied as f64)
    );
    assert_eq!(
        sample(&metrics, "config_reload_total{result=\"refused\"}"),
        Some(refused as f64)
    );
    let (got, dispatched) = finished(live, &out);
    assert!(dispatched as f64 >= at_end);
    let expected = before(&expected["keep"], dispatched);
    assert!(!expected.is_empty());
    assert_eq!(
        got["keep"], expected,
        "the unchanged strategy's signals after {applied} reloads"
    );
    took.sort();
    eprintln!(
        "{applied} applied, {refused} refused, {unchanged} unchanged; POST /reload → answered: p50 {:?}, p99 {:?}, max {:?}",
        took[took.len() / 2],
        took[took.len() * 99 / 100],
        took[took.len() - 1]
    );
}

/// A connection to the store, for a test's SQL.
struct Sql {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Sql {
    fn connect(url: &str) -> Sql {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connecting to the store");
            tokio::spawn(conn);
            client
        });
        Sql { rt, client }
    }

    /// Runs `statements` (one transaction each, as `psql -c` would).
    fn run(&self, statements: &str) {
        self.rt
            .block_on(self.client.batch_execute(statements))
            .unwrap_or_else(|err| panic!("SQL {statements:?}: {err}"));
    }
}

/// A new database on the test server (`QUIVER_TEST_POSTGRES_URL`) for the
/// test `name`; `None` (the test skips) when no server is configured.
fn fresh_database(name: &str) -> Option<String> {
    let Ok(admin_url) = std::env::var("QUIVER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("QUIVER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "QUIVER_REQUIRE_POSTGRES=1 but QUIVER_TEST_POSTGRES_URL is not set"
        );
        eprintln!("SKIPPED: no QUIVER_TEST_POSTGRES_URL");
        return None;
    };
    let db = format!("quiver_live_{name}_{}", std::process::id());
    Sql::connect(&admin_url).run(&format!("CREATE DATABASE {db}"));
    Some(format!(
        "{}/{db}",
        admin_url.rsplit_once('/').expect("a database").0
    ))
}

/// Polls `/config` until its `key` counter is `want` (30 s at most); on
/// timeout the last status is in the message, to tell a reload that never
/// came from one counted twice.
fn wait_for_count(live: &Live, key: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: serde_json::Value = serde_json::from_str(&live.get("/config").1).expect("JSON");
        if status[key] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after 30 s waiting for {key} = {want}: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_thousand_changes_to_the_store_are_reloaded_on_its_notification_and_bad_rows_refused() {
    let Some(url) = fresh_database("reload") else {
        return;
    };
    let dir = tempdir();
    // More ticks than the test needs (about 400 s at 2x); the run is stopped
    // after the changes.
    let total = 200_000u64;
    let ticks = gen_ticks(dir.path(), 10, total, 22);
    let file = dir.path().join("strategies.yaml");
    write(
        &file,
        "strategies:\n  - id: keep\n    strategy_type: momentum\n    parameters: {lookback_periods: 5, threshold: 0.001}\n    brokers: [paper]\n    instruments: [1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010]\n",
    );
    quiver(["db", "init", "--url", &url]).expect_code(0);
    quiver(["db", "import", file.to_str().expect("utf-8"), "--url", &url]).expect_code(0);
    let expected = replay_of(&file, &ticks);
    let out = dir.path().join("signals.jsonl");
    let live = run_paced(&url, &ticks, &out, &[]);
    let config = |live: &Live| -> serde_json::Value {
        serde_json::from_str(&live.get("/config").1).expect("JSON")
    };
    assert_eq!(config(&live)["source"], url.as_str());
    // Listening, and caught up on what changed before: from here every
    // change notifies.
    wait_until(Duration::from_secs(30), "the store listener", || {
        config(&live)["listening"] == true
    });
    let store = Sql::connect(&url);
    let tokens = "ARRAY[1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010]";
    let insert = |id: &str, kind: &str, lookback: u64, position: u64| {
        format!(
            "INSERT INTO strategy_configurations (id, strategy_type, parameters, active_brokers, instruments, position) \
             VALUES ('{id}', '{kind}', '{{\"lookback_periods\": {lookback}}}', ARRAY['paper'], {tokens}, {position})"
        )
    };
    // A seeded walk: rows inserted, deleted and their parameters changed,
    // and one change in eight a row the file's own rules refuse.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let kinds = ["mean_reversion", "breakout", "momentum"];
    // (id, lookback) of the rows added and not yet deleted.
    let mut others: Vec<(String, u64)> = Vec::new();
    let (mut applied, mut refused, mut unchanged) = (0u64, 0u64, 0u64);
    let (mut inserted, mut deleted, mut updated) = (0, 0, 0);
    let mut took = Vec::with_capacity(1_000);
    let mut reloads = 0;
    let mut i = 0u64;
    while reloads < 1_000 {
        i += 1;
        let roll = next() % 8;
        if roll == 7 {
            // Caught by the file's own rule for lookbacks, named by row.
            store.run(&insert(&format!("bad{i}"), "momentum", 0, 999));
            refused += 1;
            wait_for_count(&live, "reloads_refused", refused);
            let status = config(&live);
            let detail = status["last_reload"]["detail"].as_str().unwrap_or("");
            assert!(
                detail.contains(&format!("strategy_configurations row \"bad{i}\""))
                    && detail.contains("lookback_periods"),
                "{status}"
            );
            // Taken out again: the set serving all along.
            store.run(&format!(
                "DELETE FROM strategy_configurations WHERE id = 'bad{i}'"
            ));
            unchanged += 1;
            wait_for_count(&live, "reloads_unchanged", unchanged);
            reloads += 2;
            continue;
        }
        let change = if others.is_empty() || (roll < 3 && others.len() < 6) {
            let id = format!("other{i}");
            let lookback = 5 + next() % 60;
            let sql = insert(&id, kinds[(next() % 3) as usize], lookback, i);
            others.push((id, lookback));
            inserted += 1;
            sql
        } else if roll < 5 {
            let (id, _) = others.remove((next() as usize) % others.len());
            deleted += 1;
            format!("DELETE FROM strategy_configurations WHERE id = '{id}'")
        } else {
            let at = (next() as usize) % others.len();
            let (id, lookback) = &mut others[at];
            // Always another value: a change, not a no-op.
            *lookback = 5 + (*lookback - 5 + 1 + next() % 59) % 60;
            updated += 1;
            format!(
                "UPDATE strategy_configurations SET parameters = '{{\"lookback_periods\": {lookback}}}' WHERE id = '{id}'"
            )
        };
        let committed = Instant::now();
        store.run(&change);
        applied += 1;
        wait_for_count(&live, "reloads_applied", applied);
        took.push(committed.elapsed());
        reloads += 1;
    }
    let status = config(&live);
    assert_eq!(
        (
            &status["reloads_applied"],
            &status["reloads_refused"],
            &status["reloads_unchanged"]
        ),
        (&applied.into(), &refused.into(), &unchanged.into()),
        "{status}"
    );
    assert!(inserted > 50 && deleted > 50 && updated > 50 && refused > 50);
    took.sort();
    eprintln!(
        "{reloads} store reloads: {applied} applied ({inserted} inserts, {deleted} deletes, {updated} parameter changes), {refused} refused, {unchanged} unchanged; change → new set serving (polled every 20 ms): p50 {:?}, p99 {:?}, max {:?}",
        took[took.len() / 2],
        took[took.len() * 99 / 100],
        took[took.len() - 1]
    );
    let at_end = sample(&live.get("/metrics").1, "market_tick_processed_total").unwrap_or(0.0);
    assert!(at_end < total as f64, "the changes outlasted the ticks");
    let (got, dispatched) = finished(live, &out);
    assert!(dispatched as f64 >= at_end);
    let expected = before(&expected["keep"], dispatched);
    assert!(!expected.is_empty());
    assert_eq!(
        got["keep"], expected,
        "the unchanged strategy's signals after {reloads} store reloads"
    );
    assert!(
        got.keys().any(|id| id.starts_with("other")),
        "the added rows never signalled"
    );
}

#[test]
fn a_store_listener_cut_off_reconnects_and_reloads_what_it_missed() {
    let Some(url) = fresh_database("listener") else {
        return;
    };
    let dir = tempdir();
    let ticks = gen_ticks(dir.path(), 4, 200_000, 5);
    let file = dir.path().join("strategies.yaml");
    write(
        &file,
        "strategies:\n  - id: keep\n    strategy_type: momentum\n    parameters: {lookback_periods: 5}\n    brokers: [paper]\n    instruments: [1001, 1002, 1003, 1004]\n",
    );
    quiver(["db", "init", "--url", &url]).expect_code(0);
    quiver(["db", "import", file.to_str().expect("utf-8"), "--url", &url]).expect_code(0);
    let out = dir.path().join("signals.jsonl");
    let live = run_paced(&url, &ticks, &out, &[]);
    let store = Sql::connect(&url);
    let insert = |id: &str| {
        format!(
            "INSERT INTO strategy_configurations (id, strategy_type, parameters, active_brokers, instruments, position) \
             VALUES ('{id}', 'breakout', '{{\"lookback_periods\": 20}}', ARRAY['paper'], ARRAY[1001, 1002], 5)"
        )
    };
    // Changed before the service listens: its first check after LISTEN
    // sees it.
    store.run(&insert("first"));
    wait_for_count(&live, "reloads_applied", 1);
    let listening = |want: bool| {
        let status: serde_json::Value = serde_json::from_str(&live.get("/config").1).expect("JSON");
        status["listening"] == want
    };
    wait_until(Duration::from_secs(30), "the store listener", || {
        listening(true)
    });
    // The service's LISTEN connection is cut; a change made before it is
    // back notifies no one, so only the reload on reconnecting can see it.
    let backends = || {
        let rt = &store.rt;
        rt.block_on(store.client.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        ))
        .expect("pg_stat_activity")
        .len()
    };
    assert_eq!(backends(), 1, "one LISTEN connection");
    store.run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    );
    wait_until(Duration::from_secs(10), "the listener to be gone", || {
        backends() == 0
    });
    store.run(&insert("second"));
    wait_for_count(&live, "reloads_applied", 2);
    let status: serde_json::Value = serde_json::from_str(&live.get("/config").1).expect("JSON");
    // keep and first carried over, second added.
    assert_eq!(
        status["last_reload"]["detail"], "1 added, 0 removed, 0 changed, 2 unchanged",
        "{status}"
    );
    wait_until(Duration::from_secs(30), "the store listener", || {
        listening(true)
    });
    // The catch-up checks that found nothing new counted nothing.
    assert_eq!(status["reloads_unchanged"], 0, "{status}");
    live.terminate();
}
