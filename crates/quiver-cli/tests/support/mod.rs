//! Helpers shared by the end-to-end tests of the `quiver` binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::value::RawValue;

/// What one run of the binary did.
pub struct Run {
    /// The exit code; `None` when the process was killed by a signal.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// The command line, for failure messages.
    pub command: String,
}

impl Run {
    /// Standard output as text (it must be UTF-8).
    pub fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone())
            .unwrap_or_else(|e| panic!("`{}`: stdout is not UTF-8: {e}", self.command))
    }

    /// Panics, showing stderr, unless the process exited with `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`{}` exited with {:?}, expected {code}; stderr:\n{}",
            self.command,
            self.code,
            self.stderr
        );
        self
    }

    /// Panics unless stderr contains `needle`.
    pub fn expect_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "`{}`: stderr does not contain {needle:?}; stderr:\n{}",
            self.command,
            self.stderr
        );
        self
    }
}

/// Runs `quiver` with `args` in the test's working directory.
pub fn quiver<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(None, args)
}

/// Runs `quiver` with `args` in `dir`, so relative paths are relative to `dir`.
pub fn quiver_in<I, S>(dir: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(Some(dir), args)
}

/// Runs `quiver` with `args`, failing the test if it has not exited within
/// `bound` (the process is killed first): for runs that could hang.
pub fn quiver_within<I, S>(bound: std::time::Duration, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    use std::io::Read;
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command = std::iter::once("quiver".to_owned())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(&args)
        .env_remove("QUIVER_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    // Drained on threads of their own, so a full pipe never stalls the child.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
            panic!("`{command}` did not exit within {bound:?} (killed); stderr:\n{stderr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned(),
        command,
    }
}

fn run<I, S>(dir: Option<&Path>, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let command = std::iter::once("quiver".to_owned())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quiver"));
    cmd.args(&args)
        .env_remove("QUIVER_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    Run {
        code: output.status.code(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        command,
    }
}

/// `tests/golden/<name>`.
pub fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(name)
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn write(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("creating a temp dir")
}

/// Panics unless `actual` and `expected` are the same bytes; on a mismatch the
/// message shows the first differing line (1-based) and both versions of it,
/// not the whole files.
pub fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual == expected {
        return;
    }
    let a: Vec<&[u8]> = actual.split(|&b| b == b'\n').collect();
    let e: Vec<&[u8]> = expected.split(|&b| b == b'\n').collect();
    let show = |line: Option<&&[u8]>| match line {
        Some(l) => String::from_utf8_lossy(l).into_owned(),
        None => "<end of file>".to_owned(),
    };
    let i = (0..a.len().max(e.len()))
        .find(|&i| a.get(i) != e.get(i))
        .unwrap_or(0);
    panic!(
        "{what}: outputs differ ({} vs {} bytes, {} vs {} lines); first difference at line {}:\n  actual:   {}\n  expected: {}",
        actual.len(),
        expected.len(),
        a.len().saturating_sub(1),
        e.len().saturating_sub(1),
        i + 1,
        show(a.get(i)),
        show(e.get(i)),
    );
}

/// A JSON object's members as raw JSON text (numbers keep their exact digits).
pub type RawObject = BTreeMap<String, Box<RawValue>>;

pub fn parse_object(text: &str) -> RawObject {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not a JSON object ({e}): {text}"))
}

fn raw<'a>(obj: &'a RawObject, key: &str) -> &'a str {
    obj.get(key)
        .unwrap_or_else(|| panic!("missing key {key:?} in {obj:?}"))
        .get()
}

pub fn get_str(obj: &RawObject, key: &str) -> String {
    let text = raw(obj, key);
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{key}: {text} is not a string: {e}"))
}

pub fn get_u64(obj: &RawObject, key: &str) -> u64 {
    let text = raw(obj, key);
    text.parse()
        .unwrap_or_else(|e| panic!("{key}: {text} is not an unsigned integer: {e}"))
}

pub fn get_i64(obj: &RawObject, key: &str) -> i64 {
    let text = raw(obj, key);
    text.parse()
        .unwrap_or_else(|e| panic!("{key}: {text} is not an integer: {e}"))
}

/// A JSON number parsed with the standard library's correctly rounded parser.
pub fn get_f64(obj: &RawObject, key: &str) -> f64 {
    let text = raw(obj, key);
    text.parse()
        .unwrap_or_else(|e| panic!("{key}: {text} is not a number: {e}"))
}

pub fn get_object(obj: &RawObject, key: &str) -> RawObject {
    parse_object(raw(obj, key))
}

/// Keys of a flat JSON object in the order they appear in its raw text.
pub fn keys_in_text_order(text: &str, obj: &RawObject) -> Vec<String> {
    let mut keys: Vec<(usize, String)> = obj
        .keys()
        .map(|k| {
            let quoted = serde_json::to_string(k).expect("a string serializes");
            let at = text
                .find(&quoted)
                .unwrap_or_else(|| panic!("key {quoted} not found in {text}"));
            (at, k.clone())
        })
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, k)| k).collect()
}

/// One row of a tick CSV without optional columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickRow {
    pub ts_ns: i64,
    pub instrument: u64,
    pub price: String,
    pub volume: u64,
}

/// The data rows of a `ts_ns,instrument,price,volume` CSV.
pub fn parse_ticks_csv(text: &str) -> Vec<TickRow> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ts_ns,instrument,price,volume"));
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 4, "bad tick row {line:?}");
            TickRow {
                ts_ns: cells[0].parse().expect("ts_ns"),
                instrument: cells[1].parse().expect("instrument"),
                price: cells[2].to_owned(),
                volume: cells[3].parse().expect("volume"),
            }
        })
        .collect()
}

/// The golden config's enabled rows in file order, with their brokers.
pub const GOLDEN_STRATEGIES: [(&str, &[&str]); 11] = [
    ("mom-10", &["paper", "zerodha"]),
    ("mom-default", &["paper"]),
    ("mr-5", &["paper"]),
    ("mr-ties", &["zerodha"]),
    ("rsi-14", &["paper"]),
    ("breakout-20", &["paper"]),
    ("hybrid-vote", &["paper"]),
    ("hybrid-confirm", &["paper"]),
    ("hybrid-sizer", &["paper"]),
    ("hybrid-guardrail", &["paper", "zerodha"]),
    ("hybrid-escalation", &["paper"]),
];

/// Replays `ticks` through the golden config into `dir/<out_name>`; returns the run
/// and the signal bytes.
pub fn replay_golden_config(
    dir: &Path,
    ticks: &Path,
    out_name: &str,
    extra: &[&str],
) -> (Run, Vec<u8>) {
    let out = dir.join(out_name);
    let mut args: Vec<OsString> = vec![
        "replay".into(),
        "--config".into(),
        golden("strategies.yaml").into(),
        "--ticks".into(),
        ticks.into(),
        "--out".into(),
        out.clone().into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    let run = quiver(&args);
    let bytes = std::fs::read(&out).unwrap_or_default();
    (run, bytes)
}
