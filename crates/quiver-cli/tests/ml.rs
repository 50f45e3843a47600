//! ML strategies end to end on the shipped ONNX models: byte-identical
//! signals whatever the batch size on each backend, model tags on signals,
//! a refused model taking only its own strategies out of service, a model
//! over its inference deadline failing `models verify` and taken out of
//! service in replay instead of hanging either, and model references checked
//! with file and line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod support;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{
    get_object, get_str, golden, parse_object, quiver, quiver_within, read, read_text, tempdir,
    write,
};

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// The backends to test on: tract always; ONNX Runtime when its library is
/// configured (required under `QUIVER_REQUIRE_ORT=1`, as `scripts/test.sh` sets).
fn backends() -> Vec<&'static str> {
    let mut out = vec!["tract"];
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if Path::new(&path).is_file() => out.push("onnxruntime"),
        _ if std::env::var("QUIVER_REQUIRE_ORT").as_deref() == Ok("1") => {
            panic!("QUIVER_REQUIRE_ORT=1 but ORT_DYLIB_PATH does not name libonnxruntime.so")
        }
        _ => eprintln!("SKIPPED the ONNX Runtime half: ORT_DYLIB_PATH is not set"),
    }
    out
}

fn replay_ml(
    config: &Path,
    backend: &str,
    batch_size: &str,
    out: &Path,
    extra: &[&str],
) -> support::Run {
    let mut args: Vec<OsString> = vec![
        "replay".into(),
        "--config".into(),
        config.into(),
        "--ticks".into(),
        golden("ticks.csv").into(),
        "--backend".into(),
        backend.into(),
        "--batch-size".into(),
        batch_size.into(),
        "--out".into(),
        out.into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    quiver(args)
}

#[test]
fn batch_sizes_give_identical_signal_files_on_every_backend() {
    let dir = tempdir();
    let config = golden("ml_strategies.yaml");
    for backend in backends() {
        let mut reference: Option<Vec<u8>> = None;
        for batch in ["1", "7", "64", "1024"] {
            let out = dir.path().join(format!("{backend}-{batch}.jsonl"));
            let run = replay_ml(&config, backend, batch, &out, &[]);
            run.expect_code(0)
                .expect_stderr_contains(&format!("rows on {backend}"))
                .expect_stderr_contains("0 outputs rejected");
            let bytes = read(&out);
            match &reference {
                None => reference = Some(bytes),
                Some(reference) => support::assert_same_bytes(
                    &bytes,
                    reference,
                    &format!("{backend}: --batch-size {batch} vs 1"),
                ),
            }
        }
        let text = String::from_utf8(reference.unwrap()).unwrap();
        let lines: Vec<_> = text.lines().map(parse_object).collect();
        for id in ["mom", "ml-mlp", "ml-logreg-derived", "hybrid-mom"] {
            assert!(
                lines.iter().any(|l| get_str(l, "strategy_id") == id),
                "{backend}: {id} never signalled"
            );
        }
        for line in &lines {
            let id = get_str(line, "strategy_id");
            let meta = get_object(line, "metadata");
            if id == "mom" {
                assert!(
                    !meta.contains_key("model"),
                    "{backend}: rules signal with a model tag"
                );
                continue;
            }
            // Every ML signal, and every hybrid signal decided with a
            // prediction, names the model, its version and the inputs.
            let model = get_str(&meta, "model");
            let expected = if id == "ml-logreg-derived" {
                "ml_momentum_logreg"
            } else {
                "ml_momentum_mlp"
            };
            assert_eq!(model, expected, "{backend}: {id}");
            assert_eq!(get_str(&meta, "model_version"), "1.0.0");
            assert_eq!(get_str(&meta, "feature_hash").len(), 16);
        }
        // The hybrid really runs its model: some of its signals are votes
        // the rules part alone would not give (merged or ML-decided).
        assert!(
            lines
                .iter()
                .any(|l| get_str(l, "strategy_id") == "hybrid-mom"
                    && get_str(l, "reasoning").starts_with("ML prediction")
                    || get_str(l, "strategy_id") == "hybrid-mom"
                        && !get_str(l, "reasoning").starts_with("Momentum")),
            "{backend}: the hybrid never used its model"
        );
    }
}

/// A copy of the shipped registry and models in `dir`, with `edit` applied
/// to the registry text.
fn registry_copy(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    for entry in std::fs::read_dir(models_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "onnx") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let registry = dir.join("registry.yaml");
    write(
        &registry,
        edit(read_text(&models_dir().join("registry.yaml"))),
    );
    registry
}

#[test]
fn a_model_refused_at_load_holds_only_its_strategies() {
    let dir = tempdir();
    let registry = registry_copy(dir.path(), |text| {
        // The MLP's checksum no longer matches its file.
        text.replace(
            "2829f2fd0d6a3ec231593376bc10396960842d8ed7e839d412e1b9ebe3d63f40",
            "0000000000000000000000000000000000000000000000000000000000000000",
        )
    });
    let config = golden("ml_strategies.yaml");
    let healthy = dir.path().join("healthy.jsonl");
    replay_ml(&config, "tract", "64", &healthy, &[]).expect_code(0);
    let broken = dir.path().join("broken.jsonl");
    let registry_arg = registry.to_str().unwrap().to_owned();
    let run = replay_ml(
        &config,
        "tract",
        "64",
        &broken,
        &["--models", &registry_arg],
    );
    run.expect_code(0)
        .expect_stderr_contains("ml_momentum_mlp")
        .expect_stderr_contains("sha256")
        .expect_stderr_contains("no result: model_unavailable");
    let lines =
        |path: &Path| -> Vec<String> { read_text(path).lines().map(str::to_owned).collect() };
    let (healthy, broken) = (lines(&healthy), lines(&broken));
    let of = |lines: &[String], id: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| get_str(&parse_object(l), "strategy_id") == id)
            .cloned()
            .collect()
    };
    // The MLP's own strategy holds; the strategies on other models and the
    // rules strategy are untouched; the hybrid falls back on its rules part.
    assert!(of(&broken, "ml-mlp").is_empty());
    assert!(!of(&healthy, "ml-mlp").is_empty());
    for id in ["mom", "ml-logreg-derived"] {
        assert_eq!(of(&broken, id), of(&healthy, id), "{id}");
    }
    let hybrid = of(&broken, "hybrid-mom");
    assert!(!hybrid.is_empty());
    assert!(hybrid.iter().all(|l| !l.contains("\"model\":")));
}

#[test]
fn unknown_models_and_wrong_feature_counts_are_reported_with_file_and_line() {
    let dir = tempdir();
    let config = dir.path().join("strategies.yaml");
    let registry = models_dir().join("registry.yaml");
    write(
        &config,
        format!(
            "models: {}\nstrategies:\n  - id: a\n    strategy_type: ml\n    parameters:\n      model: nope\n      features: [price]\n    brokers: [paper]\n    instruments: [1]\n  - id: b\n    strategy_type: ml\n    parameters:\n      model: ml_momentum_mlp\n      features: [price, sma(5)]\n    brokers: [paper]\n    instruments: [1]\n",
            registry.display()
        ),
    );
    let run = quiver(["validate".as_ref(), "--config".as_ref(), config.as_os_str()]);
    run.expect_code(2);
    let shown = config.display().to_string();
    run.expect_stderr_contains(&format!(
        "{shown}:6: strategies[0] (id \"a\").parameters.model: unknown model \"nope\" (the registry has ml_momentum_gb,"
    ))
    .expect_stderr_contains(&format!(
        "{shown}:13: strategies[1] (id \"b\").parameters.model: model \"ml_momentum_mlp\" takes 9 features, the strategy lists 2"
    ));
    // Replay refuses the file the same way, before reading any tick.
    let out = dir.path().join("out.jsonl");
    replay_ml(&config, "tract", "64", &out, &[])
        .expect_code(2)
        .expect_stderr_contains("unknown model \"nope\"");
    assert!(!out.exists());
}

#[test]
fn a_config_without_a_registry_names_the_fix() {
    let dir = tempdir();
    let config = dir.path().join("strategies.yaml");
    write(
        &config,
        "strategies:\n  - id: a\n    strategy_type: ml_momentum\n    brokers: [paper]\n    instruments: [1]\n",
    );
    quiver(["validate".as_ref(), "--config".as_ref(), config.as_os_str()])
        .expect_code(2)
        .expect_stderr_contains("unknown model \"ml_momentum_mlp\" (no model registry is configured: add `models: <registry file>`");
}

#[test]
fn an_inline_models_section_is_a_registry() {
    let dir = tempdir();
    std::fs::copy(
        models_dir().join("ml_momentum_mlp.onnx"),
        dir.path().join("mlp.onnx"),
    )
    .unwrap();
    let config = dir.path().join("strategies.yaml");
    write(
        &config,
        "models:\n  - name: mlp\n    path: mlp.onnx\n    sha256: \"2829f2fd0d6a3ec231593376bc10396960842d8ed7e839d412e1b9ebe3d63f40\"\n    version: \"7\"\n    framework: sklearn\n    input: {features: 9, dtype: f32}\n    output: {kind: classifier, classes: [-1, 0, 1]}\nstrategies:\n  - id: a\n    strategy_type: ml_momentum\n    parameters: {model: mlp, confidence_threshold: 0.36}\n    brokers: [paper]\n    instruments: [1001, 1002]\n",
    );
    quiver(["validate".as_ref(), "--config".as_ref(), config.as_os_str()]).expect_code(0);
    let out = dir.path().join("out.jsonl");
    replay_ml(&config, "tract", "16", &out, &[]).expect_code(0);
    let text = read_text(&out);
    assert!(text.lines().count() > 0);
    assert!(text
        .lines()
        .all(|l| l.contains("\"model\":\"mlp\",\"model_version\":\"7\"")));
}

/// How long a run that could hang may take: a debug build replaying the
/// golden ticks on a busy machine, plus the deadlines it waits out. A hung
/// run would take hours (10^12 loop iterations).
const BOUND: Duration = Duration::from_secs(180);

/// models/testdata: valid models whose inference never ends on its own
/// (scripts/gen_deadline_models.py).
fn hostile_dir() -> PathBuf {
    models_dir().join("testdata")
}

#[test]
fn models_verify_fails_a_model_over_its_deadline_instead_of_hanging() {
    let registry = hostile_dir().join("registry.yaml");
    for backend in backends() {
        let verify = |extra: &[&str]| {
            let mut args: Vec<OsString> = vec![
                "models".into(),
                "verify".into(),
                "--registry".into(),
                registry.clone().into(),
                "--backend".into(),
                backend.into(),
            ];
            args.extend(extra.iter().map(OsString::from));
            quiver_within(BOUND, args)
        };
        let run = verify(&[]);
        run.expect_code(2);
        let out = run.stdout_text();
        if backend == "tract" {
            for name in ["loop_forever", "loop_on_input"] {
                assert!(
                    out.contains(&format!(
                        "FAIL  model {name}: operator Loop is not supported by tract"
                    )),
                    "{out}"
                );
            }
            assert!(out.contains("0 of 2 active models verified"), "{out}");
            continue;
        }
        // The warm-up of loop_forever is stopped at the default deadline;
        // loop_on_input runs no iteration on zeros and passes.
        assert!(
            out.contains(
                "FAIL  model loop_forever: onnxruntime warm-up inference exceeded its deadline of 1000 ms (stopped after "
            ),
            "{out}"
        );
        assert!(
            out.contains("ok    loop_on_input 1 on onnxruntime"),
            "{out}"
        );
        assert!(out.contains("1 of 2 active models verified"), "{out}");
        let run = verify(&["--inference-deadline-ms", "150"]);
        run.expect_code(2);
        assert!(
            run.stdout_text().contains(
                "loop_forever: onnxruntime warm-up inference exceeded its deadline of 150 ms"
            ),
            "{}",
            run.stdout_text()
        );
    }
    // The registry's deadline_ms wins over the flag.
    if backends().contains(&"onnxruntime") {
        let dir = tempdir();
        for file in ["loop_forever.onnx", "loop_on_input.onnx"] {
            std::fs::copy(hostile_dir().join(file), dir.path().join(file)).unwrap();
        }
        let copy = dir.path().join("registry.yaml");
        write(
            &copy,
            read_text(&registry).replace(
                "    path: loop_forever.onnx\n",
                "    path: loop_forever.onnx\n    deadline_ms: 120\n",
            ),
        );
        let run = quiver_within(
            BOUND,
            [
                "models".as_ref(),
                "verify".as_ref(),
                "--registry".as_ref(),
                copy.as_os_str(),
                "--backend".as_ref(),
                "onnxruntime".as_ref(),
                "--inference-deadline-ms".as_ref(),
                "5000".as_ref(),
            ],
        );
        run.expect_code(2);
        assert!(
            run.stdout_text().contains(
                "loop_forever: onnxruntime warm-up inference exceeded its deadline of 120 ms"
            ),
            "{}",
            run.stdout_text()
        );
    }
}

#[test]
fn a_model_over_its_deadline_in_replay_holds_only_its_strategies() {
    let dir = tempdir();
    std::fs::copy(
        hostile_dir().join("loop_on_input.onnx"),
        dir.path().join("loop_on_input.onnx"),
    )
    .unwrap();
    let hostile_entry = {
        let text = read_text(&hostile_dir().join("registry.yaml"));
        let start = text.find("  - name: loop_on_input").unwrap();
        format!("{}    deadline_ms: 250\n", &text[start..])
    };
    let registry = registry_copy(dir.path(), |text| format!("{text}{hostile_entry}"));
    let features = "[sma(5), sma(20), rsi(14), volatility(10), momentum(5), momentum(20), returns_std(20), returns_skew(20), price]";
    let config = dir.path().join("strategies.yaml");
    write(
        &config,
        read_text(&golden("ml_strategies.yaml")).replace(
            "models: ../../../../models/registry.yaml",
            "models: registry.yaml",
        ) + &format!(
            "\n  - id: ml-loop\n    strategy_type: ml\n    parameters:\n      model: loop_on_input\n      features: {features}\n    brokers: [paper]\n    instruments: [1001, 1002, 1003, 1004]\n"
        ),
    );
    let registry_arg = registry.to_str().unwrap().to_owned();
    for backend in backends() {
        let healthy = dir.path().join(format!("healthy-{backend}.jsonl"));
        replay_ml(
            &golden("ml_strategies.yaml"),
            backend,
            "64",
            &healthy,
            &["--models", &registry_arg],
        )
        .expect_code(0);
        let broken = dir.path().join(format!("broken-{backend}.jsonl"));
        let args: Vec<OsString> = vec![
            "replay".into(),
            "--config".into(),
            config.clone().into(),
            "--ticks".into(),
            golden("ticks.csv").into(),
            "--backend".into(),
            backend.into(),
            "--batch-size".into(),
            "64".into(),
            "--out".into(),
            broken.clone().into(),
        ];
        let run = quiver_within(BOUND, args);
        run.expect_code(0);
        if backend == "tract" {
            // tract refuses Loop at load: out of service from the start.
            run.expect_stderr_contains(
                "model loop_on_input: operator Loop is not supported by tract",
            )
            .expect_stderr_contains("no result: model_unavailable");
        } else {
            // Loaded (zeros run no iteration), stopped at its first real
            // call, named in the log with its deadline and in the summary;
            // every later request is answered out of service, not run.
            let named = "model loop_on_input: onnxruntime inference exceeded its deadline of 250 ms (stopped after ";
            run.expect_stderr_contains(&format!("model taken out of service: {named}"))
                .expect_stderr_contains(&format!("model out of service   {named}"))
                .expect_stderr_contains("no result: model_unavailable ");
            let summary = run
                .stderr
                .lines()
                .find(|l| l.contains("ML inference"))
                .unwrap();
            assert!(summary.contains(", inference_failed "), "{summary}");
            assert_eq!(
                run.stderr.matches("model taken out of service").count(),
                1,
                "one call over the deadline: {}",
                run.stderr
            );
        }
        let lines =
            |path: &Path| -> Vec<String> { read_text(path).lines().map(str::to_owned).collect() };
        let (healthy, broken) = (lines(&healthy), lines(&broken));
        let of = |lines: &[String], id: &str| -> Vec<String> {
            lines
                .iter()
                .filter(|l| get_str(&parse_object(l), "strategy_id") == id)
                .cloned()
                .collect()
        };
        assert!(of(&broken, "ml-loop").is_empty());
        for id in ["mom", "ml-mlp", "ml-logreg-derived", "hybrid-mom"] {
            let signals = of(&broken, id);
            assert!(!signals.is_empty(), "{backend}: {id}");
            assert_eq!(signals, of(&healthy, id), "{backend}: {id}");
        }
    }
}
