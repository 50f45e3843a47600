//! Golden replay of `tests/golden/`: exact bytes, determinism across runs and
//! tick formats, parity with the design documents' Python reference
//! strategies, and the shape and order of every signal line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod support;

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;

use support::{
    assert_same_bytes, get_f64, get_i64, get_object, get_str, get_u64, golden, keys_in_text_order,
    parse_object, parse_ticks_csv, quiver, read, read_text, replay_golden_config, tempdir, write,
    RawObject, GOLDEN_STRATEGIES,
};

const SIGNAL_KEYS: [&str; 12] = [
    "seq",
    "ts_ns",
    "signal_id",
    "strategy_id",
    "instrument",
    "broker",
    "side",
    "confidence",
    "quantity",
    "price",
    "reasoning",
    "metadata",
];

fn expected_signals() -> Vec<u8> {
    read(&golden("expected_signals.jsonl"))
}

/// Replays the golden config and ticks to stdout; returns the signal lines
/// (raw text and parsed).
fn replayed_lines() -> Vec<(String, RawObject)> {
    let run = replay_golden_to_stdout();
    run.expect_code(0);
    run.stdout_text()
        .lines()
        .map(|line| (line.to_owned(), parse_object(line)))
        .collect()
}

fn replay_golden_to_stdout() -> support::Run {
    quiver([
        OsStr::new("replay"),
        OsStr::new("--config"),
        golden("strategies.yaml").as_os_str(),
        OsStr::new("--ticks"),
        golden("ticks.csv").as_os_str(),
    ])
}

#[test]
fn golden_replay_to_file_matches_expected_bytes() {
    let dir = tempdir();
    let (run, bytes) = replay_golden_config(dir.path(), &golden("ticks.csv"), "signals.jsonl", &[]);
    run.expect_code(0);
    assert!(
        run.stdout.is_empty(),
        "replay with --out wrote to stdout: {:?}",
        run.stdout_text()
    );
    assert_same_bytes(&bytes, &expected_signals(), "golden replay --out");
}

#[test]
fn golden_replay_to_stdout_matches_and_summary_goes_to_stderr() {
    let run = replay_golden_to_stdout();
    run.expect_code(0);
    assert_same_bytes(&run.stdout, &expected_signals(), "golden replay to stdout");

    for needle in [
        "replay: 3,000 ticks",
        "ticks/s",
        "evaluations/s",
        "p99",
        "signals per strategy",
    ] {
        run.expect_stderr_contains(needle);
    }
    let line_count = expected_signals().iter().filter(|&&b| b == b'\n').count();
    let with_commas = format!("{},{:03} lines", line_count / 1000, line_count % 1000);
    run.expect_stderr_contains(&with_commas);
    // Every enabled strategy has its own line with its signal count, in config order.
    let per_strategy: Vec<&str> = run
        .stderr
        .lines()
        .skip_while(|l| !l.contains("signals per strategy"))
        .skip(1)
        .collect();
    let ids: Vec<&str> = per_strategy
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let expected_ids: Vec<&str> = GOLDEN_STRATEGIES.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, expected_ids, "summary:\n{}", run.stderr);
    assert!(!run.stderr.contains("mr-disabled"), "{}", run.stderr);
    // Per-strategy counts are signals (before the broker fan-out).
    let lines: Vec<(String, RawObject)> = run
        .stdout_text()
        .lines()
        .map(|l| (l.to_owned(), parse_object(l)))
        .collect();
    let counts = signals_per_strategy(&lines);
    for line in &per_strategy {
        let mut words = line.split_whitespace();
        let id = words.next().unwrap_or_default();
        let count: u64 = words
            .next()
            .unwrap_or_default()
            .replace(',', "")
            .parse()
            .unwrap_or_else(|e| panic!("no count in {line:?}: {e}"));
        assert_eq!(count, counts[id], "summary line {line:?}");
    }

    let stdout = run.stdout_text();
    for needle in ["ticks/s", "evaluations/s", "p99", "signals per strategy"] {
        assert!(!stdout.contains(needle), "summary leaked to stdout");
    }
}

/// Signals (one per (seq, strategy), not per broker) by strategy id.
fn signals_per_strategy(lines: &[(String, RawObject)]) -> BTreeMap<String, u64> {
    let mut seen = HashSet::new();
    let mut counts = BTreeMap::new();
    for (_, obj) in lines {
        let id = get_str(obj, "strategy_id");
        if seen.insert((get_u64(obj, "seq"), id.clone())) {
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn replay_is_deterministic_across_runs() {
    let dir = tempdir();
    let ticks = golden("ticks.csv");
    let (first, a) = replay_golden_config(dir.path(), &ticks, "a.jsonl", &[]);
    let (second, b) = replay_golden_config(dir.path(), &ticks, "b.jsonl", &[]);
    first.expect_code(0);
    second.expect_code(0);
    assert!(!a.is_empty());
    assert_same_bytes(&b, &a, "second run vs first run");
}

#[test]
fn jsonl_ticks_give_the_same_signals_as_csv() {
    let dir = tempdir();
    let rows = parse_ticks_csv(&read_text(&golden("ticks.csv")));
    assert_eq!(rows.len(), 3000);
    let mut jsonl = String::new();
    for r in &rows {
        jsonl.push_str(&format!(
            "{{\"ts_ns\":{},\"instrument\":{},\"price\":\"{}\",\"volume\":{}}}\n",
            r.ts_ns, r.instrument, r.price, r.volume
        ));
    }
    let ticks = dir.path().join("ticks.jsonl");
    write(&ticks, &jsonl);
    let (run, bytes) = replay_golden_config(dir.path(), &ticks, "signals.jsonl", &[]);
    run.expect_code(0);
    assert_same_bytes(&bytes, &expected_signals(), "JSONL ticks vs CSV golden");

    // .ndjson is the same format.
    let ndjson = dir.path().join("ticks.ndjson");
    write(&ndjson, &jsonl);
    let (run, bytes) = replay_golden_config(dir.path(), &ndjson, "nd.jsonl", &[]);
    run.expect_code(0);
    assert_same_bytes(&bytes, &expected_signals(), "NDJSON ticks vs CSV golden");
}

#[test]
fn csv_column_order_and_optional_bid_ask_do_not_change_signals() {
    let dir = tempdir();
    let rows = parse_ticks_csv(&read_text(&golden("ticks.csv")));
    let mut text = String::from("bid,volume,price,ask,instrument,ts_ns\n");
    for r in &rows {
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.price, r.volume, r.price, r.price, r.instrument, r.ts_ns
        ));
    }
    let ticks = dir.path().join("reordered.csv");
    write(&ticks, text);
    let (run, bytes) = replay_golden_config(dir.path(), &ticks, "signals.jsonl", &[]);
    run.expect_code(0);
    assert_same_bytes(
        &bytes,
        &expected_signals(),
        "reordered columns with bid/ask vs golden",
    );
}

#[test]
fn seed_parity_with_python_reference_strategies() {
    const SEED_ROWS: [&str; 4] = ["mom-10", "mom-default", "mr-5", "mr-ties"];
    // One line per (seq, strategy): the first broker's.
    let mut seen = HashSet::new();
    let ours: Vec<RawObject> = replayed_lines()
        .into_iter()
        .map(|(_, obj)| obj)
        .filter(|obj| SEED_ROWS.contains(&get_str(obj, "strategy_id").as_str()))
        .filter(|obj| seen.insert((get_u64(obj, "seq"), get_str(obj, "strategy_id"))))
        .collect();
    let reference: Vec<(String, RawObject)> = read_text(&golden("seed_reference.jsonl"))
        .lines()
        .map(|l| (l.to_owned(), parse_object(l)))
        .collect();

    assert_eq!(
        ours.len(),
        reference.len(),
        "signal count differs from the Python reference"
    );
    for (i, (ours, (ref_line, theirs))) in ours.iter().zip(&reference).enumerate() {
        let at = format!("reference line {} ({ref_line})", i + 1);
        assert_eq!(get_u64(ours, "seq"), get_u64(theirs, "seq"), "seq, {at}");
        for key in ["strategy_id", "side", "reasoning"] {
            assert_eq!(get_str(ours, key), get_str(theirs, key), "{key}, {at}");
        }
        for key in ["instrument", "quantity"] {
            assert_eq!(get_u64(ours, key), get_u64(theirs, key), "{key}, {at}");
        }
        assert_eq!(
            get_f64(ours, "confidence").to_bits(),
            get_f64(theirs, "confidence").to_bits(),
            "confidence {} vs {}, {at}",
            get_f64(ours, "confidence"),
            get_f64(theirs, "confidence"),
        );
        let (p_ours, p_theirs) = (get_str(ours, "price"), get_str(theirs, "price"));
        let parse = |p: &str| -> f64 {
            p.parse()
                .unwrap_or_else(|e| panic!("price {p:?} is not a decimal: {e}, {at}"))
        };
        assert_eq!(parse(&p_ours), parse(&p_theirs), "price, {at}");

        let (m_ours, m_theirs) = (get_object(ours, "metadata"), get_object(theirs, "metadata"));
        assert_eq!(
            m_ours.keys().collect::<Vec<_>>(),
            m_theirs.keys().collect::<Vec<_>>(),
            "metadata keys, {at}"
        );
        for key in m_theirs.keys() {
            assert_eq!(
                get_f64(&m_ours, key).to_bits(),
                get_f64(&m_theirs, key).to_bits(),
                "metadata.{key} {} vs {}, {at}",
                get_f64(&m_ours, key),
                get_f64(&m_theirs, key),
            );
        }
    }

    let ties = reference
        .iter()
        .filter(|(_, obj)| get_str(obj, "strategy_id") == "mr-ties")
        .count();
    assert!(
        ties > 100,
        "mr-ties should exercise exact ties often, has {ties} signals"
    );
    // Every seed row is represented.
    for id in SEED_ROWS {
        assert!(
            ours.iter().any(|obj| get_str(obj, "strategy_id") == id),
            "{id} has no signals"
        );
    }
}

#[test]
fn signal_lines_have_the_documented_shape() {
    let lines = replayed_lines();
    assert!(!lines.is_empty());
    let ticks = parse_ticks_csv(&read_text(&golden("ticks.csv")));
    let mut ids = HashSet::new();
    for (n, (text, obj)) in lines.iter().enumerate() {
        let at = format!("line {}: {text}", n + 1);
        assert!(text.starts_with('{') && text.ends_with('}'), "{at}");
        assert_eq!(obj.len(), SIGNAL_KEYS.len(), "key count, {at}");
        // Key order, from the raw text.
        let positions: Vec<usize> = SIGNAL_KEYS
            .iter()
            .map(|k| {
                text.find(&format!("\"{k}\":"))
                    .unwrap_or_else(|| panic!("no key {k:?}, {at}"))
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "keys out of order, {at}"
        );
        assert_eq!(keys_in_text_order(text, obj), SIGNAL_KEYS, "{at}");

        let signal_id = get_str(obj, "signal_id");
        assert!(
            signal_id.len() == 16
                && signal_id
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "signal_id {signal_id:?} is not 16 lowercase hex chars, {at}"
        );
        assert!(ids.insert(signal_id), "duplicate signal_id, {at}");

        let side = get_str(obj, "side");
        assert!(side == "BUY" || side == "SELL", "side, {at}");
        let confidence = get_f64(obj, "confidence");
        assert!((0.0..=1.0).contains(&confidence), "confidence, {at}");
        assert!(get_u64(obj, "quantity") > 0, "quantity, {at}");
        assert!(!get_str(obj, "reasoning").is_empty(), "reasoning, {at}");
        let metadata = get_object(obj, "metadata");
        for key in metadata.keys() {
            assert!(get_f64(&metadata, key).is_finite(), "metadata.{key}, {at}");
        }

        // ts_ns, instrument and price are the tick's, the price exactly as written.
        let seq = get_u64(obj, "seq") as usize;
        let tick = &ticks[seq];
        assert_eq!(get_i64(obj, "ts_ns"), tick.ts_ns, "ts_ns, {at}");
        assert_eq!(
            get_u64(obj, "instrument"),
            tick.instrument,
            "instrument, {at}"
        );
        let price = get_str(obj, "price");
        assert_eq!(price, tick.price, "price, {at}");
        assert!(
            !price.is_empty()
                && price.chars().all(|c| c.is_ascii_digit() || c == '.')
                && !(price.contains('.') && (price.ends_with('0') || price.ends_with('.'))),
            "price {price:?} is not a canonical decimal, {at}"
        );

        // The strategy is enabled, follows the instrument, and trades on this broker.
        let strategy = get_str(obj, "strategy_id");
        assert_ne!(strategy, "mr-disabled", "{at}");
        let Some((_, brokers)) = GOLDEN_STRATEGIES.iter().find(|(id, _)| *id == strategy) else {
            panic!("unknown strategy, {at}");
        };
        assert!(brokers.contains(&get_str(obj, "broker").as_str()), "{at}");
    }
}

#[test]
fn signal_lines_are_ordered_by_tick_then_config_then_broker() {
    let lines = replayed_lines();
    let config_index = |id: &str| {
        GOLDEN_STRATEGIES
            .iter()
            .position(|(s, _)| *s == id)
            .unwrap_or_else(|| panic!("unknown strategy {id}"))
    };

    // Group consecutive lines of one (seq, strategy): each group is one signal.
    let mut groups: Vec<(u64, String, Vec<&RawObject>)> = Vec::new();
    for (_, obj) in &lines {
        let key = (get_u64(obj, "seq"), get_str(obj, "strategy_id"));
        match groups.last_mut() {
            Some((seq, id, members)) if (*seq, id.as_str()) == (key.0, key.1.as_str()) => {
                members.push(obj)
            }
            _ => groups.push((key.0, key.1, vec![obj])),
        }
    }
    for pair in groups.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a.0 < b.0 || (a.0 == b.0 && config_index(&a.1) < config_index(&b.1)),
            "out of order: seq {} {} then seq {} {}",
            a.0,
            a.1,
            b.0,
            b.1
        );
    }
    let mut pairs = 0;
    for (seq, id, members) in &groups {
        let brokers: Vec<String> = members.iter().map(|o| get_str(o, "broker")).collect();
        let expected = GOLDEN_STRATEGIES[config_index(id)].1;
        assert_eq!(brokers, expected, "brokers of seq {seq} {id}");
        // Broker lines of one signal differ only in broker and signal_id.
        let first = members[0];
        for other in &members[1..] {
            for key in ["ts_ns", "instrument", "side", "price", "reasoning"] {
                assert_eq!(raw_text(first, key), raw_text(other, key));
            }
            assert_ne!(
                get_str(first, "signal_id"),
                get_str(other, "signal_id"),
                "seq {seq} {id}"
            );
        }
        if id == "mom-10" {
            pairs += 1;
        }
    }
    assert!(pairs > 0, "mom-10 has no signals");
    // Every enabled strategy fires at least once on the golden ticks.
    for (id, _) in GOLDEN_STRATEGIES {
        assert!(
            groups.iter().any(|(_, g, _)| g == id),
            "{id} has no signals"
        );
    }
}

fn raw_text(obj: &RawObject, key: &str) -> String {
    obj[key].get().to_owned()
}
