//! `quiver db` and `--config postgres://…` against a real PostgreSQL server
//! (scripts/postgres.sh start): a set in the store replays exactly as the
//! file it was imported from, and its mistakes are named by row.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{quiver, tempdir};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/demo.yaml");

/// A fresh database on the test server, or `None` (skipped) without one
/// unless QUIVER_REQUIRE_POSTGRES=1.
fn database(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("QUIVER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("QUIVER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "QUIVER_REQUIRE_POSTGRES=1 but QUIVER_TEST_POSTGRES_URL is not set"
        );
        eprintln!("SKIPPED: no QUIVER_TEST_POSTGRES_URL");
        return None;
    };
    let db = format!("quiver_cli_{name}_{}", std::process::id());
    sql(&admin, &format!("CREATE DATABASE {db}"));
    Some(format!("{}/{db}", admin.rsplit_once('/').unwrap().0))
}

fn sql(url: &str, statements: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client.batch_execute(statements).await.unwrap();
    });
}

#[test]
fn a_set_in_the_store_replays_as_the_file_it_came_from() {
    let Some(url) = database("replay") else {
        return;
    };
    let dir = tempdir();
    let ticks = dir.path().join("ticks.csv");
    quiver([
        "gen",
        "--instruments",
        "50",
        "--ticks",
        "20000",
        "--seed",
        "4",
        "--out",
        ticks.to_str().unwrap(),
    ])
    .expect_code(0);
    quiver(["db", "init", "--url", &url])
        .expect_code(0)
        .expect_stderr_contains("applied V1__strategy_configurations");
    quiver(["db", "import", DEMO, "--url", &url])
        .expect_code(0)
        .expect_stderr_contains("14 rows");
    quiver(["validate", "--config", &url]).expect_code(0);
    let from_file = quiver([
        "replay",
        "--config",
        DEMO,
        "--ticks",
        ticks.to_str().unwrap(),
    ]);
    from_file.expect_code(0);
    let from_store = quiver([
        "replay",
        "--config",
        &url,
        "--ticks",
        ticks.to_str().unwrap(),
    ]);
    from_store.expect_code(0);
    assert!(!from_file.stdout.is_empty());
    assert_eq!(from_store.stdout, from_file.stdout);
    // The export is a strategies file that replays the same again.
    let exported = dir.path().join("exported.yaml");
    quiver([
        "db",
        "export",
        "--url",
        &url,
        "--out",
        exported.to_str().unwrap(),
    ])
    .expect_code(0);
    let again = quiver([
        "replay",
        "--config",
        exported.to_str().unwrap(),
        "--ticks",
        ticks.to_str().unwrap(),
    ]);
    again.expect_code(0);
    assert_eq!(again.stdout, from_file.stdout);

    // A mistake made in the table is named by row id and field.
    sql(
        &url,
        "UPDATE strategy_configurations SET parameters = parameters || '{\"lookback_periods\": 0}' WHERE id = 'momentum-slow'",
    );
    quiver(["validate", "--config", &url])
        .expect_code(2)
        .expect_stderr_contains(
            "strategy_configurations row \"momentum-slow\": strategies[1] (id \"momentum-slow\").parameters.lookback_periods",
        );
    quiver([
        "replay",
        "--config",
        &url,
        "--ticks",
        ticks.to_str().unwrap(),
    ])
    .expect_code(2);
    // An invalid file is not imported: the rows stay as they were.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "strategies:\n  - id: x\n    strategy_type: nope\n").unwrap();
    quiver(["db", "import", bad.to_str().unwrap(), "--url", &url])
        .expect_code(2)
        .expect_stderr_contains("bad.yaml:3");
    quiver(["validate", "--config", &url]).expect_code(2);
}
