//! The idempotent Redis signal sink against a real redis-server.
//!
//! Needs `QUIVER_TEST_REDIS_URL` (`eval "$(scripts/redis.sh start)"` sets it;
//! `scripts/test.sh` does that); skipped without it unless
//! `QUIVER_REQUIRE_REDIS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quiver_io::live::{DeadLetter, OutSignal, Outcome, SignalBatch, SignalSink};
use quiver_io::redis::{RedisSignalSink, RedisSinkConfig};
use redis::Value;

fn redis_url() -> Option<String> {
    match std::env::var("QUIVER_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("QUIVER_REQUIRE_REDIS").as_deref() != Ok("1"),
                "QUIVER_TEST_REDIS_URL is not set but QUIVER_REQUIRE_REDIS=1"
            );
            eprintln!("SKIPPED: no QUIVER_TEST_REDIS_URL");
            None
        }
    }
}

fn unique_prefix(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("t{}.{name}.{nanos}", std::process::id())
}

fn config(url: &str, prefix: &str) -> RedisSinkConfig {
    RedisSinkConfig {
        url: url.to_owned(),
        response_timeout: Duration::from_secs(10),
        signal_stream_prefix: format!("{prefix}.signals."),
        dead_letter_stream: format!("{prefix}.dlq"),
        dedup_key_prefix: format!("{prefix}:published:"),
        dedup_ttl: Duration::from_secs(600),
    }
}

async fn connect(url: &str, prefix: &str) -> RedisSignalSink {
    RedisSignalSink::connect(config(url, prefix))
        .await
        .expect("sink")
}

/// `ticks` ticks of stream `ticks`, entry ids `1-<t>`, each with one signal
/// per broker; a signal's JSON names its tick and broker.
fn batch(ticks: std::ops::Range<u64>, brokers: &[&str]) -> SignalBatch {
    let brokers: Vec<Arc<str>> = brokers.iter().map(|b| Arc::from(*b)).collect();
    let mut out = SignalBatch::default();
    for t in ticks {
        let origin: Arc<str> = Arc::from(format!("ticks/1-{t}"));
        for (b, broker) in brokers.iter().enumerate() {
            let start = out.buf.len();
            out.buf
                .extend_from_slice(format!("{{\"seq\":{t},\"broker\":\"{broker}\"}}").as_bytes());
            out.signals.push(OutSignal {
                broker: Arc::clone(broker),
                broker_idx: b as u32,
                strategy_idx: 0,
                withheld: None,
                signal_id: t * 16 + b as u64,
                seq: t,
                origin: Some(Arc::clone(&origin)),
                payload: start..out.buf.len(),
            });
        }
    }
    out
}

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// Every entry's `field` in `stream`, oldest first.
async fn stream_field(url: &str, stream: &str, field: &str) -> Vec<String> {
    let mut conn = connection(url).await;
    let entries: Value = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("XRANGE");
    let Value::Array(entries) = entries else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| match e {
            Value::Array(parts) => match parts.get(1) {
                Some(Value::Array(fields)) => fields.chunks_exact(2).find_map(|p| match p {
                    [Value::BulkString(k), Value::BulkString(v)] if k == field.as_bytes() => {
                        Some(String::from_utf8_lossy(v).into_owned())
                    }
                    _ => None,
                }),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

async fn stream_data(url: &str, stream: &str) -> Vec<String> {
    stream_field(url, stream, "data").await
}

fn expected(ticks: std::ops::Range<u64>, broker: &str) -> Vec<String> {
    ticks
        .map(|t| format!("{{\"seq\":{t},\"broker\":\"{broker}\"}}"))
        .collect()
}

#[tokio::test]
async fn a_batch_published_twice_adds_each_signal_once() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("twice");
    let mut sink = connect(&url, &prefix).await;
    let mut with_dead = batch(0..20, &["paper", "zerodha"]);
    with_dead.dead_letters.push(DeadLetter {
        category: "malformed_tick",
        reason: "price: \"abc\" is not a decimal".to_owned(),
        origin: "ticks/1-99".to_owned(),
        payload: "price=abc".to_owned(),
    });
    let first = sink.publish(&with_dead).await.expect("publish");
    assert!(first.outcomes.iter().all(|o| *o == Outcome::Published));
    assert_eq!(first.dead_letters_written, 1);
    let again = sink.publish(&with_dead).await.expect("publish again");
    assert!(again.outcomes.iter().all(|o| *o == Outcome::Duplicate));
    assert_eq!(again.dead_letters_written, 0);
    assert_eq!(
        stream_field(&url, &format!("{prefix}.dlq"), "source").await,
        ["ticks/1-99"]
    );
    // A crash after publishing, before acknowledging: the ticks come again,
    // with some new ones behind them.
    let again = sink
        .publish(&batch(10..30, &["paper", "zerodha"]))
        .await
        .expect("publish again");
    let (old, new) = again.outcomes.split_at(20);
    assert!(old.iter().all(|o| *o == Outcome::Duplicate), "{old:?}");
    assert!(new.iter().all(|o| *o == Outcome::Published), "{new:?}");
    for broker in ["paper", "zerodha"] {
        assert_eq!(
            stream_data(&url, &format!("{prefix}.signals.{broker}")).await,
            expected(0..30, broker)
        );
    }
}

#[tokio::test]
async fn a_batch_larger_than_one_transaction_keeps_every_signal_in_order() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("large");
    let mut sink = connect(&url, &prefix).await;
    // 2 × 5,000 entries: three transactions.
    let report = sink
        .publish(&batch(0..5_000, &["paper", "zerodha"]))
        .await
        .expect("publish");
    assert_eq!(report.outcomes.len(), 10_000);
    assert!(report.outcomes.iter().all(|o| *o == Outcome::Published));
    for broker in ["paper", "zerodha"] {
        assert_eq!(
            stream_data(&url, &format!("{prefix}.signals.{broker}")).await,
            expected(0..5_000, broker)
        );
    }
}

/// Two consumers holding the same entries (one about to lose them to
/// XAUTOCLAIM) publish them at the same moment, round after round: each
/// signal still reaches its stream once, and every tick is reported as
/// published by exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_publishing_the_same_ticks_at_once_add_them_once() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("race");
    let (mut a, mut b) = (connect(&url, &prefix).await, connect(&url, &prefix).await);
    let rounds = 40u64;
    for round in 0..rounds {
        let ticks = round * 50..round * 50 + 50;
        let (batch_a, batch_b) = (batch(ticks.clone(), &["paper"]), batch(ticks, &["paper"]));
        let (ra, rb) = tokio::join!(a.publish(&batch_a), b.publish(&batch_b));
        let (ra, rb) = (ra.expect("publish a"), rb.expect("publish b"));
        for (x, y) in ra.outcomes.iter().zip(&rb.outcomes) {
            let published = [x, y].iter().filter(|o| ***o == Outcome::Published).count();
            assert_eq!(published, 1, "round {round}: {x:?} and {y:?}");
        }
    }
    assert_eq!(
        stream_data(&url, &format!("{prefix}.signals.paper")).await,
        expected(0..rounds * 50, "paper")
    );
}

/// A broker stream that is not a stream: its signals go to the dead-letter
/// stream with the reason, the other broker's are published, all in one go.
/// A dead-letter stream that is not a stream refuses the whole batch, which
/// then publishes nothing.
#[tokio::test]
async fn refused_streams_dead_letter_their_signals_or_refuse_the_batch() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("refused");
    let mut conn = connection(&url).await;
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}.signals.paper"))
        .arg("not a stream")
        .query_async(&mut conn)
        .await
        .expect("SET");
    let mut sink = connect(&url, &prefix).await;
    let report = sink
        .publish(&batch(0..5, &["paper", "zerodha"]))
        .await
        .expect("publish");
    for (signal, outcome) in report.outcomes.iter().enumerate() {
        let expected = if signal % 2 == 0 {
            Outcome::DeadLettered
        } else {
            Outcome::Published
        };
        assert_eq!(*outcome, expected, "signal {signal}");
    }
    assert_eq!(
        stream_data(&url, &format!("{prefix}.signals.zerodha")).await,
        expected(0..5, "zerodha")
    );
    assert_eq!(
        stream_data(&url, &format!("{prefix}.dlq")).await,
        expected(0..5, "paper")
    );
    let reasons = stream_field(&url, &format!("{prefix}.dlq"), "reason").await;
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("publish_failed: WRONGTYPE")),
        "{reasons:?}"
    );

    let broken = unique_prefix("broken-dlq");
    let _: () = redis::cmd("SET")
        .arg(format!("{broken}.dlq"))
        .arg("not a stream")
        .query_async(&mut conn)
        .await
        .expect("SET");
    let mut sink = connect(&url, &broken).await;
    let err = sink
        .publish(&batch(0..5, &["paper"]))
        .await
        .expect_err("a dead-letter stream that is not a stream");
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("is not a stream"), "{err}");
    assert!(stream_data(&url, &format!("{broken}.signals.paper"))
        .await
        .is_empty());
}

/// Two consumers publishing different ticks of one stream at the same
/// moment take turns at its fence: every signal of both gets through, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_sharing_a_stream_both_get_through() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("share");
    let (mut a, mut b) = (connect(&url, &prefix).await, connect(&url, &prefix).await);
    let rounds = 40u64;
    for round in 0..rounds {
        let (batch_a, batch_b) = (
            batch(round * 100..round * 100 + 50, &["paper"]),
            batch(round * 100 + 50..round * 100 + 100, &["paper"]),
        );
        let (ra, rb) = tokio::join!(a.publish(&batch_a), b.publish(&batch_b));
        for report in [ra.expect("publish a"), rb.expect("publish b")] {
            assert!(report.outcomes.iter().all(|o| *o == Outcome::Published));
        }
    }
    let mut published = stream_data(&url, &format!("{prefix}.signals.paper")).await;
    published.sort();
    let mut all = expected(0..rounds * 100, "paper");
    all.sort();
    assert_eq!(published, all);
}
