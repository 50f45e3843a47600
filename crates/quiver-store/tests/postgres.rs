//! The store against a real PostgreSQL server (scripts/postgres.sh start):
//! schema, import, export, validation by row id, the change notification.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use quiver_store::{ConfigStore, StoreError, NOTIFY_CHANNEL};
use tokio_postgres::{AsyncMessage, NoTls};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/demo.yaml");

/// A database of its own on the test server, or `None` (skipped) without
/// one unless QUIVER_REQUIRE_POSTGRES=1.
async fn database(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("QUIVER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("QUIVER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "QUIVER_REQUIRE_POSTGRES=1 but QUIVER_TEST_POSTGRES_URL is not set: eval \"$(scripts/postgres.sh start)\""
        );
        eprintln!("SKIPPED: no QUIVER_TEST_POSTGRES_URL");
        return None;
    };
    static N: AtomicUsize = AtomicUsize::new(0);
    let db = format!(
        "quiver_{name}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let (client, conn) = tokio_postgres::connect(&admin, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    Some(format!("{base}/{db}"))
}

async fn store(url: &str) -> ConfigStore {
    let mut store = ConfigStore::connect(url).await.unwrap();
    store.init().await.unwrap();
    store
}

fn placeless(config: &quiver_config::Config) -> Vec<quiver_config::StrategyRow> {
    config
        .strategies
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.line = 0;
            for m in &mut r.models {
                m.line = 0;
            }
            r
        })
        .collect()
}

#[tokio::test]
async fn a_file_imported_and_loaded_is_the_same_set_and_the_schema_migrates_once() {
    let Some(url) = database("roundtrip").await else {
        return;
    };
    let mut store = ConfigStore::connect(&url).await.unwrap();
    assert_eq!(store.init().await.unwrap().len(), 1);
    assert!(
        store.init().await.unwrap().is_empty(),
        "the schema is current"
    );
    let text = std::fs::read_to_string(DEMO).unwrap();
    assert_eq!(store.import(&text, Path::new(DEMO)).await.unwrap(), 14);
    let loaded = store.load().await.unwrap();
    let file = quiver_config::load_config(Path::new(DEMO)).unwrap();
    let mut expected = placeless(&file);
    let mut got = placeless(&loaded.config);
    // Model paths in messages differ; the rest is the row.
    for r in expected.iter_mut().chain(got.iter_mut()) {
        for m in &mut r.models {
            m.path.clear();
        }
    }
    assert_eq!(got, expected);
    assert_eq!(loaded.config.lifecycle, file.lifecycle);
    // The export is a strategies file of its own, and imports back the same.
    let exported = loaded.text.clone();
    assert!(quiver_config::parse_config(&exported, "export.yaml").is_ok());
    store
        .import(&exported, Path::new("/elsewhere/export.yaml"))
        .await
        .unwrap();
    assert_eq!(store.load().await.unwrap().text, exported);
}

#[tokio::test]
async fn an_invalid_file_is_refused_whole_and_the_rows_stay() {
    let Some(url) = database("refused").await else {
        return;
    };
    let mut store = store(&url).await;
    let good = "strategies:\n  - id: a\n    strategy_type: momentum\n    brokers: [paper]\n    instruments: [1]\n";
    store.import(good, Path::new("good.yaml")).await.unwrap();
    let bad = "strategies:\n  - id: a\n    strategy_type: momentum\n    brokers: [paper]\n    instruments: [1]\n  - id: b\n    strategy_type: momentum\n    parameters: {lookback_periods: 0}\n    brokers: [paper]\n    instruments: [1]\n";
    match store.import(bad, Path::new("bad.yaml")).await {
        Err(StoreError::Invalid(message)) => {
            assert!(message.contains("bad.yaml:8"), "{message}");
            assert!(message.contains("lookback_periods"), "{message}");
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    let ids: Vec<String> = store
        .load()
        .await
        .unwrap()
        .config
        .strategies
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(ids, ["a"]);
}

#[tokio::test]
async fn rows_get_the_files_validation_with_errors_naming_the_row_and_field() {
    let Some(url) = database("rows").await else {
        return;
    };
    let store = store(&url).await;
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "INSERT INTO strategy_configurations (id, strategy_type, parameters, active_brokers, instruments, position) VALUES \
             ('fast', 'momentum', '{\"lookback_periods\": 5}', ARRAY['paper'], ARRAY[1001], 0), \
             ('typo', 'momentum', '{\"lookbak_periods\": 5}', ARRAY['paper'], ARRAY[1001], 1), \
             ('far', 'rsi', '{}', ARRAY['dlq'], ARRAY[1001], 2)",
        )
        .await
        .unwrap();
    let Err(StoreError::Invalid(message)) = store.load().await else {
        panic!("rows with mistakes must not load");
    };
    let lines: Vec<&str> = message.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("strategy_configurations row \"typo\":")
                && l.contains("parameters.lookbak_periods")),
        "{message}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("strategy_configurations row \"far\":") && l.contains("brokers")),
        "{message}"
    );
    assert!(!message.contains("row \"fast\""), "{message}");
}

#[tokio::test]
async fn every_change_to_the_rows_is_notified() {
    let Some(url) = database("notify").await else {
        return;
    };
    let mut store = store(&url).await;
    let (client, mut conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let Ok(AsyncMessage::Notification(n)) = message {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
        .await
        .unwrap();
    let file = "strategies:\n  - id: a\n    strategy_type: momentum\n    brokers: [paper]\n    instruments: [1]\n";
    store.import(file, Path::new("a.yaml")).await.unwrap();
    let (channel, _) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a notification within 10 s")
        .unwrap();
    assert_eq!(channel, NOTIFY_CHANNEL);
}
