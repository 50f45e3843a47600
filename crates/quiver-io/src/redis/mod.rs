//! Redis Streams adapters (feature `redis`): the consumer-group tick source,
//! the idempotent signal sink, and the tick publisher behind `quiver publish`.
//!
//! # Stream layout
//!
//! * Ticks: one stream per partition (`market.ticks`, or `market.ticks.<p>`
//!   for `p` in `0..P` when `P > 1`; see [`crate::live::partition_of`]). Each
//!   entry holds the canonical tick fields `ts_ns`, `instrument`, `price`
//!   (exact decimal text), `volume`, optionally `bid`, `ask`, and `seq` (the
//!   tick's index in the published file, so live signals equal replayed ones)
//!   and `correlation_id`.
//! * Signals: one stream per broker, `signals.<broker>`; each entry holds
//!   `signal_id` (16 hex digits) and `data` (the signal's JSON line).
//! * Dead letters: one stream (`signals.dlq`) with `reason`, `source` and
//!   `data`, for signals that could not be published and ticks that could not
//!   be read.
//!
//! # Delivery
//!
//! The source reads with `XREADGROUP` and the runtime acknowledges a batch
//! only after the sink has published everything it caused, so a crash never
//! loses a tick: its entries stay pending and are read again on restart
//! (after `XAUTOCLAIM` has taken over the entries of dead consumers). The sink
//! makes the replay harmless: per tick it checks a key under `WATCH` and adds
//! the tick's entries and the key in one `MULTI`/`EXEC` transaction only if
//! the key is absent, so no signal is added twice within the key's retention
//! window, and never half of a tick's signals.

mod codec;
mod publish;
mod sink;
mod source;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use codec::{
    parse_tick_fields, parse_tick_pairs, EntryError, TickFields, MAX_CORRELATION_ID_BYTES,
    MAX_ENTRY_BYTES,
};
pub use publish::{add_tick_command, publish_ticks, PublishOptions, PublishProgress};
pub use sink::{RedisSignalSink, RedisSinkConfig};
pub use source::{RedisAcker, RedisLagProbe, RedisSourceConfig, RedisTickSource};

use crate::live::LiveError;

/// Opens a self-reconnecting connection whose response timeout is
/// `response_timeout`. Blocking reads must use a timeout above their block
/// time: redis-rs would otherwise give up on a read the server is still
/// legitimately holding.
pub async fn connect(
    url: &str,
    response_timeout: Duration,
) -> Result<ConnectionManager, LiveError> {
    let client = redis::Client::open(url).map_err(|e| LiveError::fatal("redis url", e))?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(response_timeout))
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(2));
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|e| classify("connecting to redis", &e))
}

/// Connection trouble is worth retrying; anything else (a wrong type, a
/// script error, a bad reply) is not.
pub(crate) fn classify(context: &'static str, err: &redis::RedisError) -> LiveError {
    if err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || matches!(
            err.code(),
            Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN")
        )
    {
        LiveError::transient(context, err)
    } else {
        LiveError::fatal(context, err)
    }
}
