//! Hostile input through the CLI, under a 2 GiB address-space cap: every
//! case ends with exit 2 and a message naming the file, line and field (or
//! is accepted within its bounds), never with a panic (101), an abort
//! (134), an out-of-memory kill or a hang.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{tempdir, write};

/// Address space the binary may map.
const ADDRESS_SPACE: &str = "2147483648";
/// Longer than any case needs by far: a case that takes this long hung.
const DEADLINE: Duration = Duration::from_secs(60);

const STRATEGIES: &str = "strategies:\n  - id: up\n    strategy_type: momentum\n    parameters: {lookback_periods: 3, threshold: 0.0001}\n    brokers: [paper]\n    instruments: [7]\n";
const HEADER: &str = "ts_ns,instrument,price,volume\n";

struct Outcome {
    code: Option<i32>,
    stderr: String,
    took: Duration,
}

/// `quiver ARGS` in `dir` under the cap, killed at [`DEADLINE`].
fn capped(dir: &Path, args: &[&str]) -> Outcome {
    let started = Instant::now();
    let mut child = Command::new("prlimit")
        .arg(format!("--as={ADDRESS_SPACE}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_quiver"))
        .args(args)
        .current_dir(dir)
        .env_remove("QUIVER_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux) runs quiver");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("polling quiver") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("quiver {} hung for {DEADLINE:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Outcome {
        code: status.code(),
        // Reports (`models verify`) go to stdout, errors to stderr.
        stderr: stdout.join().expect("stdout reader") + &stderr.join().expect("stderr reader"),
        took: started.elapsed(),
    }
}

/// Runs `args` and expects exit 2 with every one of `needles` in stderr.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) {
    let out = capped(dir, args);
    assert_eq!(
        out.code,
        Some(2),
        "quiver {}: expected exit 2 after {:?}, stderr:\n{}",
        args.join(" "),
        out.took,
        out.stderr
    );
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "quiver {}: stderr lacks {needle:?}:\n{}",
            args.join(" "),
            out.stderr
        );
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(!out.stderr.contains("memory allocation"), "{}", out.stderr);
}

fn replay(dir: &Path, ticks: &str, text: impl AsRef<[u8]>, needles: &[&str]) {
    write(&dir.join("s.yaml"), STRATEGIES);
    write(&dir.join(ticks), text);
    refused(
        dir,
        &[
            "replay",
            "--config",
            "s.yaml",
            "--ticks",
            ticks,
            "--out",
            "signals.jsonl",
        ],
        needles,
    );
}

fn validate(dir: &Path, text: impl AsRef<[u8]>, needles: &[&str]) {
    write(&dir.join("c.yaml"), text);
    refused(dir, &["validate", "--config", "c.yaml"], needles);
}

#[test]
fn exact_decimals_and_volumes_out_of_range_are_refused_with_their_row() {
    let dir = tempdir();
    let d = dir.path();
    replay(
        d,
        "t.csv",
        format!("{HEADER}1,7,1,1\n2,7,-92233720368.99999999,1\n"),
        &["t.csv:3: price: \"-92233720368.99999999\" is out of range"],
    );
    replay(
        d,
        "t.jsonl",
        "{\"ts_ns\":1,\"instrument\":7,\"price\":\"1\",\"volume\":9007199254740993}\n",
        &["t.jsonl:1: volume: must be <= 9007199254740992"],
    );
    replay(
        d,
        "q.jsonl",
        "{\"ts_ns\":1,\"instrument\":7,\"price\":\"1\",\"volume\":1,\"bid\":\"-5\"}\n",
        &["q.jsonl:1: bid: must be > 0, got -5"],
    );
}

#[test]
fn yaml_bombs_are_refused_at_their_line() {
    let dir = tempdir();
    let d = dir.path();
    // 60 KB of nested sequences once overflowed the stack.
    validate(
        d,
        format!("strategies: {}{}\n", "[".repeat(30_000), "]".repeat(30_000)),
        &["c.yaml:1:", "limit"],
    );
    // Billion laughs: each level aliases the one before ten times.
    let mut bomb = String::from("a0: &a0 [\"lol\"]\n");
    for level in 1..12 {
        let refs = vec![format!("*a{}", level - 1); 10].join(", ");
        bomb.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
    }
    bomb.push_str("strategies: *a11\n");
    validate(d, bomb, &["c.yaml:", "alias"]);
    // The same bombs in a settings file and a registry.
    let deep = format!("quiver: {}{}\n", "[".repeat(30_000), "]".repeat(30_000));
    write(&d.join("settings.yaml"), &deep);
    write(&d.join("s.yaml"), STRATEGIES);
    refused(
        d,
        &["run", "--config", "s.yaml", "--settings", "settings.yaml"],
        &["settings.yaml:1:", "limit"],
    );
    write(
        &d.join("registry.yaml"),
        format!("models: {}{}\n", "[".repeat(30_000), "]".repeat(30_000)),
    );
    refused(
        d,
        &["models", "--registry", "registry.yaml", "list"],
        &["registry.yaml:1:", "limit"],
    );
}

#[test]
fn special_files_are_refused_before_they_are_read() {
    let dir = tempdir();
    let d = dir.path();
    refused(
        d,
        &["validate", "--config", "/dev/zero"],
        &["/dev/zero", "not a regular file (a device)"],
    );
    let fifo = d.join("fifo.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    refused(
        d,
        &["validate", "--config", "fifo.yaml"],
        &["fifo.yaml", "a FIFO"],
    );
    write(&d.join("r.yaml"), format!("models:\n  - name: m\n    path: /dev/zero\n    sha256: \"{}\"\n    version: \"1\"\n    framework: sklearn\n    input: {{features: 1, dtype: f32}}\n    features: [current_price]\n    output: {{kind: regressor, threshold: 1.0}}\n    active: true\n", "0".repeat(64)));
    refused(
        d,
        &["models", "--registry", "r.yaml", "verify"],
        &["/dev/zero", "not a regular file"],
    );
}

#[test]
fn names_that_would_become_keys_are_refused_at_load() {
    let dir = tempdir();
    validate(
        dir.path(),
        STRATEGIES.replace("brokers: [paper]", "brokers: [dlq]"),
        &["c.yaml:5:", "dlq"],
    );
    validate(
        dir.path(),
        STRATEGIES.replace("id: up", "id: \"../up\""),
        &["c.yaml:2:", "id"],
    );
}

#[test]
fn text_that_is_not_utf8_is_refused_naming_its_line() {
    let dir = tempdir();
    let mut text = STRATEGIES.as_bytes().to_vec();
    text.extend_from_slice(b"# caf\xe9\n");
    validate(
        dir.path(),
        text,
        &["c.yaml", "not UTF-8 text: line 7, column 6 holds byte 0xe9"],
    );
}

#[test]
fn a_regressor_threshold_at_or_below_zero_is_refused() {
    let dir = tempdir();
    let d = dir.path();
    let registry = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/registry.yaml"
    ))
    .unwrap();
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/");
    let registry = registry
        .replace("path: ml_", &format!("path: {models}ml_"))
        .replace("threshold: 2.0", "threshold: -1.0");
    write(&d.join("r.yaml"), registry);
    refused(
        d,
        &["models", "--registry", "r.yaml", "list"],
        &["r.yaml:", "threshold", "> 0"],
    );
}

#[test]
fn an_unclosed_csv_quote_is_refused_in_bounded_memory() {
    let dir = tempdir();
    // 4 MB of short lines inside one quoted field.
    let mut text = format!("{HEADER}1,7,1,1\n2,7,\"");
    text.push_str(&"a\n".repeat(2_000_000));
    replay(
        dir.path(),
        "t.csv",
        text,
        &["t.csv:3: a row longer than 65536 bytes starts here"],
    );
}

#[test]
fn a_model_that_never_finishes_is_failed_at_its_deadline_not_waited_for() {
    let dir = tempdir();
    let registry = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/testdata/registry.yaml"
    );
    // ONNX Runtime runs the Loop and is stopped at the deadline; tract
    // refuses Loop at load. Either way: exit 2, named, within the deadline.
    let backend = if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        "onnxruntime"
    } else {
        "tract"
    };
    let out = capped(
        dir.path(),
        &[
            "models",
            "--registry",
            registry,
            "--backend",
            backend,
            "verify",
        ],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("loop_forever"), "{}", out.stderr);
    if backend == "onnxruntime" {
        assert!(
            out.stderr.contains("exceeded its deadline"),
            "{}",
            out.stderr
        );
    }
    assert!(out.took < Duration::from_secs(30), "took {:?}", out.took);
}

#[test]
fn parameters_beyond_their_range_or_the_history_budget_are_refused_before_allocating() {
    let dir = tempdir();
    let d = dir.path();
    for lookback in ["10000000000", "18446744073709551615", "100001"] {
        let config = STRATEGIES.replace(
            "lookback_periods: 3",
            &format!("lookback_periods: {lookback}"),
        );
        write(&d.join("s.yaml"), &config);
        write(&d.join("t.csv"), format!("{HEADER}1,7,1,1\n"));
        for args in [
            &["validate", "--config", "s.yaml"][..],
            &[
                "replay", "--config", "s.yaml", "--ticks", "t.csv", "--out", "o.jsonl",
            ][..],
        ] {
            refused(d, args, &["s.yaml:4:", "lookback_periods"]);
        }
    }
}

#[test]
fn ten_thousand_duplicate_keys_are_all_reported_quickly() {
    let dir = tempdir();
    let mut text = String::from(STRATEGIES);
    text.push_str(&"    enabled: true\n".repeat(10_001));
    write(&dir.path().join("c.yaml"), &text);
    let out = capped(dir.path(), &["validate", "--config", "c.yaml"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("duplicate key \"enabled\" (first at line 7)"),
        "{}",
        &out.stderr[..out.stderr.len().min(2000)]
    );
    assert!(
        out.stderr.contains("more (10000 in all)"),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(500)..]
    );
    assert!(out.took < Duration::from_secs(10), "took {:?}", out.took);
}
