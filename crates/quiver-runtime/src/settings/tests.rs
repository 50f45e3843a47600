use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn defaults_validate() {
    let s = Settings::load(None, env(&[])).unwrap();
    assert_eq!(s, Settings::default());
    assert_eq!(s.source_kind().unwrap(), SourceKind::Synthetic);
    assert_eq!(s.sink_kind().unwrap(), SinkKind::Stdout);
}

#[test]
fn yaml_then_env_with_seed_names() {
    let (_dir, path) = file(
        "s.yaml",
        "quiver:\n  source: redis\n  redis:\n    stream: ticks\n    partitions: 4\n\
         strategy:\n  warmup_ticks: 10\n",
    );
    let s = Settings::load(
        Some(&path),
        env(&[
            ("STRATEGY__HISTORY_STORE_SIZE", "2000"),
            ("STRATEGY__WARMUP_TICKS", "50"),
            ("QUIVER__REDIS_URL", "redis://10.0.0.1:6380/"),
            ("QUIVER__REDIS__CONSUMER", "123"),
            ("QUIVER__SESSION__HOLIDAYS", "2026-01-26, 2026-03-14"),
            ("QUIVER__SESSION__ENABLED", "true"),
            ("UNRELATED__X", "y"),
        ]),
    )
    .unwrap();
    assert_eq!(s.strategy.history_store_size, 2000);
    assert_eq!(s.strategy.warmup_ticks, 50);
    assert_eq!(s.quiver.redis_url, "redis://10.0.0.1:6380/");
    assert_eq!(s.quiver.redis.consumer, "123");
    assert_eq!(s.quiver.redis.stream, "ticks");
    assert_eq!(s.quiver.redis.partitions, 4);
    assert_eq!(s.quiver.session.holidays, ["2026-01-26", "2026-03-14"]);
    assert!(s.quiver.session.enabled);
    assert_eq!(s.sink_kind().unwrap(), SinkKind::Redis);
}

#[test]
fn toml_files_work_too() {
    let (_dir, path) = file(
        "s.toml",
        "[quiver]\nsource = \"replay:ticks.csv\"\nsink = \"jsonl:out.jsonl\"\n[quiver.replay]\nspeed = 0\n",
    );
    let s = Settings::load(Some(&path), env(&[])).unwrap();
    assert_eq!(
        s.source_kind().unwrap(),
        SourceKind::Replay("ticks.csv".into())
    );
    assert_eq!(s.sink_kind().unwrap(), SinkKind::Jsonl("out.jsonl".into()));
    assert_eq!(s.quiver.replay.speed, 0.0);
}

/// The printed issues of settings that must be refused.
fn refused(file: Option<&Path>, vars: &[(&str, &str)], flags: &[Flag]) -> Vec<String> {
    match Settings::load_with_flags(file, env(vars), flags) {
        Err(SettingsError::Invalid { issues }) => issues.iter().map(ToString::to_string).collect(),
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn unknown_keys_and_bad_values_are_errors() {
    let (_dir, path) = file("s.yaml", "quiver:\n  redis:\n    stram: x\n");
    let shown = path.display();
    assert_eq!(
        refused(Some(&path), &[], &[]),
        [format!(
            "{shown}:3: quiver.redis.stram: unknown setting \"stram\" (expected block_ms, \
             claim_min_idle_ms, consumer, dead_letter_stream, dedup_key_prefix, dedup_ttl_s, \
             group, partitions, preload_max_bytes, preload_max_ticks, \
             response_timeout_ms, signal_stream_prefix, start_id, stream)"
        )]
    );
    let err = refused(None, &[("QUIVER__REDIS__BATCH", "1")], &[]);
    assert_eq!(err.len(), 1);
    assert!(
        err[0].starts_with(
            "environment variable QUIVER__REDIS__BATCH: quiver.redis.batch: \
             unknown setting \"batch\" (expected block_ms, "
        ),
        "{err:?}"
    );
    assert_eq!(
        refused(None, &[("QUIVER__BATCH_SIZE", "many")], &[]),
        [
            "environment variable QUIVER__BATCH_SIZE: quiver.batch_size: \
             expected an integer, got \"many\""
        ]
    );
    assert_eq!(
        refused(None, &[("QUIVER__REDIS__BLOCK_MS", "6000")], &[]),
        [
            "environment variable QUIVER__REDIS__BLOCK_MS: quiver.redis.block_ms: \
             must be less than quiver.redis.response_timeout_ms (5000), got 6000: \
             a blocking read would otherwise time out while the server legitimately holds it"
        ]
    );
    let err = refused(None, &[("QUIVER__SOURCE", "kafka")], &[]);
    assert_eq!(
        err,
        ["environment variable QUIVER__SOURCE: quiver.source: \
             \"kafka\" is not one of synthetic, replay:PATH, redis"]
    );
}

#[test]
fn a_settings_file_reports_every_problem_with_its_line() {
    let (_dir, path) = file(
        "s.yaml",
        "quiver:\n\
         \x20 batch_size: lots\n\
         \x20 redis:\n\
         \x20   stream: ticks\n\
         \x20   colour: blue\n\
         \x20 session:\n\
         \x20   weekdays: [mon, funday]\n\
         strategy:\n\
         \x20 warmup_ticks: 10\n",
    );
    let shown = path.display();
    assert_eq!(
        refused(Some(&path), &[], &[]),
        [
            format!("{shown}:2: quiver.batch_size: expected an integer, got \"lots\""),
            format!(
                "{shown}:5: quiver.redis.colour: unknown setting \"colour\" (expected \
                 block_ms, claim_min_idle_ms, consumer, dead_letter_stream, \
                 dedup_key_prefix, dedup_ttl_s, group, partitions, preload_max_bytes, \
                 preload_max_ticks, response_timeout_ms, signal_stream_prefix, start_id, stream)"
            ),
            format!("{shown}:7: quiver.session.weekdays[1]: \"funday\" is not a weekday"),
        ]
    );
}

#[test]
fn problems_from_every_layer_are_reported_together() {
    let (_dir, path) = file(
        "s.toml",
        "[quiver]\nqueue_capacity = 0\nhttp_addr = 9464\n\n[quiver.session]\n\
         open = 09:30:00\nclose = \"09:00\"\n\n[strategy]\nwarmup_ticks = -1\n",
    );
    let shown = path.display();
    let flags = [Flag {
        flag: "--speed",
        key: "quiver.replay.speed",
        value: "fast".to_owned(),
    }];
    assert_eq!(
        refused(
            Some(&path),
            &[
                ("QUIVER__REDIS__PARTITIONS", "5000000000"),
                ("STRATEGY__MAX_ML_WORKERS", "2"),
            ],
            &flags,
        ),
        [
            format!("{shown}:2: quiver.queue_capacity: must be >= 1, got 0"),
            format!("{shown}:3: quiver.http_addr: expected a string, got 9464"),
            format!(
                "{shown}:7: quiver.session.close: \
                 must be after quiver.session.open (09:30:00), got 09:00"
            ),
            format!("{shown}:10: strategy.warmup_ticks: must be >= 0, got -1"),
            "environment variable QUIVER__REDIS__PARTITIONS: quiver.redis.partitions: \
             must be <= 4294967295, got 5000000000"
                .to_owned(),
            "flag --speed: quiver.replay.speed: expected a number, got \"fast\"".to_owned(),
        ]
    );
}

#[test]
fn later_layers_override_and_fix_earlier_ones() {
    let (_dir, path) = file("s.yaml", "quiver:\n  source: kafka\n  redis:\n");
    let flags = [
        Flag {
            flag: "--source",
            key: "quiver.source",
            value: "replay:t.csv".to_owned(),
        },
        Flag {
            flag: "--speed",
            key: "quiver.replay.speed",
            value: "0".to_owned(),
        },
    ];
    let s = Settings::load_with_flags(Some(&path), env(&[("QUIVER__SOURCE", "redis")]), &flags)
        .unwrap();
    assert_eq!(s.source_kind().unwrap(), SourceKind::Replay("t.csv".into()));
    assert_eq!(s.quiver.replay.speed, 0.0);

    let (_dir, path) = file(
        "s.yaml",
        "quiver:\n  redis:\n    response_timeout_ms: 100\n",
    );
    assert_eq!(
        refused(Some(&path), &[], &[]),
        [format!(
            "{}:3: quiver.redis.response_timeout_ms: must exceed quiver.redis.block_ms (200), \
             got 100: a blocking read would otherwise time out while the server legitimately \
             holds it",
            path.display()
        )]
    );
}

/// An unexpected end is reported after the last line's text, not on the line
/// after the last, which the file does not have.
#[test]
fn syntax_errors_at_the_end_name_the_last_line() {
    for (name, text, at) in [
        (
            "s.toml",
            "[quiver]\nsource = [\n",
            ":2:11: TOML syntax error: ",
        ),
        (
            "s.toml",
            "[quiver]\r\nsource = [\r\n",
            ":2:11: TOML syntax error: ",
        ),
        ("s.yaml", "quiver: [\n", ":1:10: YAML syntax error: "),
        ("s.yaml", "quiver:\n  a: 1\nb", ":3:2: YAML syntax error: "),
    ] {
        let (_dir, path) = file(name, text);
        let err = Settings::load(Some(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}{at}", path.display())),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn unreadable_files_stop_at_the_one_error() {
    let (_dir, path) = file("s.yaml", "quiver: [\n");
    let err = Settings::load(Some(&path), env(&[])).unwrap_err();
    assert!(matches!(err, SettingsError::Syntax(_)), "{err:?}");
    let (_dir, path) = file("s.toml", "[quiver]\nsource = \n");
    let err = Settings::load(Some(&path), env(&[])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2:10: TOML syntax error: ", path.display())),
        "{err}"
    );
    let (_dir, path) = file("s.ini", "");
    let err = Settings::load(Some(&path), env(&[])).unwrap_err();
    assert!(matches!(err, SettingsError::Format { .. }), "{err:?}");
}

#[test]
fn http_limits_come_from_the_http_table() {
    assert_eq!(
        Settings::default().quiver.http.limits(),
        crate::http::HttpLimits::default()
    );
    let (_dir, path) = file(
        "s.toml",
        "[quiver.http]\nidle_timeout_ms = 1500\nmax_connections = 32\n",
    );
    let s = Settings::load(Some(&path), env(&[("QUIVER__HTTP__MAX_BODY_BYTES", "100")])).unwrap();
    let limits = s.quiver.http.limits();
    assert_eq!(limits.idle_timeout, std::time::Duration::from_millis(1500));
    assert_eq!(limits.max_connections, 32);
    assert_eq!(limits.max_body_bytes, 100);
    assert_eq!(
        limits.header_read_timeout,
        std::time::Duration::from_secs(5)
    );
    assert!(limits.check().is_ok());

    assert_eq!(
        refused(
            None,
            &[
                ("QUIVER__HTTP__MAX_CONNECTIONS", "0"),
                ("QUIVER__HTTP__MAX_HEADER_BYTES", "1024"),
                ("QUIVER__HTTP__REQUEST_TIMEOUT_MS", "0"),
            ],
            &[],
        ),
        [
            "environment variable QUIVER__HTTP__MAX_CONNECTIONS: quiver.http.max_connections: \
             must be >= 1, got 0",
            "environment variable QUIVER__HTTP__MAX_HEADER_BYTES: quiver.http.max_header_bytes: \
             must be >= 8192 (the HTTP parser's smallest buffer), got 1024",
            "environment variable QUIVER__HTTP__REQUEST_TIMEOUT_MS: \
             quiver.http.request_timeout_ms: must be >= 1, got 0",
        ]
    );
}

#[test]
fn ten_thousand_repeated_settings_are_reported_together_quickly() {
    let text = format!("quiver:\n{}", "  batch_size: 3\n".repeat(10_001));
    let (_dir, path) = file("s.yaml", &text);
    let started = std::time::Instant::now();
    let err = Settings::load(Some(&path), env(&[])).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let SettingsError::Invalid { issues } = &err else {
        panic!("{err}");
    };
    assert_eq!(issues.len(), 10_000);
    let shown = err.to_string();
    let first = shown.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "{}:3: quiver.batch_size: duplicate key \"batch_size\" (first at line 2)",
            path.display()
        )
    );
    assert!(shown.ends_with("\nand 9900 more (10000 in all)"), "{shown}");
}

#[test]
fn the_warm_up_floor_is_bounded() {
    let err = Settings::load(None, env(&[("STRATEGY__WARMUP_TICKS", "10000000000")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable STRATEGY__WARMUP_TICKS: strategy.warmup_ticks: must be <= 1000000, got 10000000000"
    );
}

#[test]
fn sizes_that_become_allocations_are_bounded() {
    let err = refused(
        None,
        &[
            ("QUIVER__BATCH_SIZE", "10000000000"),
            ("STRATEGY__ML_POOL_QUEUE_SIZE", "10000000000"),
        ],
        &[],
    );
    assert_eq!(
        err,
        [
            "environment variable QUIVER__BATCH_SIZE: quiver.batch_size: must be <= 65536, got 10000000000",
            "environment variable STRATEGY__ML_POOL_QUEUE_SIZE: strategy.ml_pool_queue_size: must be <= 1048576, got 10000000000",
        ]
    );
}
