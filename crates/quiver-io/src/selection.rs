//! Which ticks a read keeps: a date range and a set of instruments.

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use quiver_core::InstrumentToken;

/// What a read keeps of a tick source: a date range (inclusive, dates in
/// `tz`) and a set of instruments, each unbounded when `None`. A Parquet
/// source skips whole partitions and row groups outside them; every source
/// drops the rows outside them.
#[derive(Clone, Debug)]
pub struct TickSelection {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub instruments: Option<Vec<InstrumentToken>>,
    pub tz: Tz,
}

impl Default for TickSelection {
    fn default() -> Self {
        TickSelection {
            from: None,
            to: None,
            instruments: None,
            tz: Tz::UTC,
        }
    }
}

impl TickSelection {
    /// Everything, with partition dates in `tz`.
    pub fn all(tz: Tz) -> TickSelection {
        TickSelection {
            tz,
            ..TickSelection::default()
        }
    }

    /// The nanosecond range `[start, end)` the dates cover.
    pub fn ts_range(&self) -> (i64, i64) {
        let start = self.from.map_or(i64::MIN, |d| day_start(self.tz, d));
        let end = self
            .to
            .and_then(|d| d.succ_opt())
            .map_or(i64::MAX, |d| day_start(self.tz, d));
        (start, end)
    }

    pub fn keeps_date(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|from| date >= from) && self.to.is_none_or(|to| date <= to)
    }

    pub fn keeps_instrument(&self, instrument: InstrumentToken) -> bool {
        self.instruments
            .as_ref()
            .is_none_or(|set| set.contains(&instrument))
    }

    /// Whether a tick is inside the selection.
    pub fn keeps(&self, ts_ns: i64, instrument: InstrumentToken, range: (i64, i64)) -> bool {
        ts_ns >= range.0 && ts_ns < range.1 && self.keeps_instrument(instrument)
    }

    /// Nothing is left out: the reader need not look at rows.
    pub fn is_everything(&self) -> bool {
        self.from.is_none() && self.to.is_none() && self.instruments.is_none()
    }
}

/// Nanoseconds since the epoch of `date`'s first instant in `tz` (a day
/// that starts in a DST gap starts at the first instant that exists).
pub fn day_start(tz: Tz, date: NaiveDate) -> i64 {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    let instant = tz
        .from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            (1..=24 * 60).find_map(|m| {
                tz.from_local_datetime(&(midnight + chrono::Duration::minutes(m)))
                    .earliest()
            })
        })
        .map_or(midnight.and_utc().timestamp(), |t| t.timestamp());
    instant.saturating_mul(1_000_000_000)
}

/// The date in `tz` of an instant, and the `[start, end)` nanoseconds of
/// that date.
pub fn date_of(tz: Tz, ts_ns: i64) -> (NaiveDate, (i64, i64)) {
    let utc = chrono::DateTime::from_timestamp_nanos(ts_ns);
    let date = utc.with_timezone(&tz).date_naive();
    let start = day_start(tz, date);
    let end = date.succ_opt().map_or(i64::MAX, |d| day_start(tz, d));
    (date, (start, end))
}
