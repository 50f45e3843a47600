//! The market tick, as every source delivers it to the engine.

use crate::instrument::InstrumentToken;
use crate::price::Price;

/// One trade print for one instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Exchange timestamp, nanoseconds since the Unix epoch (UTC).
    pub ts_ns: i64,
    /// The exchange's instrument token.
    pub instrument: InstrumentToken,
    /// Last traded price.
    pub price: Price,
    /// Traded volume.
    pub volume: u64,
    /// Best bid, when the source carries it.
    pub bid: Option<Price>,
    /// Best ask, when the source carries it.
    pub ask: Option<Price>,
}

impl Tick {
    /// The largest volume a tick may carry: 2⁵³, the largest integer the
    /// history (which keeps volumes as `f64`) holds exactly. Sources refuse
    /// larger volumes rather than round them.
    pub const MAX_VOLUME: u64 = 1 << 53;

    /// A tick with no quote, the common case in tests and generators.
    pub const fn trade(ts_ns: i64, instrument: InstrumentToken, price: Price, volume: u64) -> Self {
        Tick {
            ts_ns,
            instrument,
            price,
            volume,
            bid: None,
            ask: None,
        }
    }
}
