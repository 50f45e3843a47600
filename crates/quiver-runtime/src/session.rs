//! The session clock: is a tick inside the trading session (seed 000's market
//! hours checker, seed 002 §4)?
//!
//! Decided on the tick's own exchange timestamp, never the wall clock, so a
//! replay of yesterday's ticks is gated exactly as the live run was.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;

use crate::settings::{SessionSettings, SettingProblem};

/// Trading hours in an exchange's time zone.
#[derive(Clone, Debug)]
pub struct SessionClock {
    tz: Tz,
    open: NaiveTime,
    close: NaiveTime,
    weekdays: [bool; 7],
    /// Sorted.
    holidays: Vec<NaiveDate>,
}

impl SessionClock {
    /// `None` when the session clock is disabled (every tick is in session);
    /// the error holds every problem, one `key: message` per line.
    pub fn from_settings(s: &SessionSettings) -> Result<Option<SessionClock>, String> {
        SessionClock::check(s).map_err(|problems| {
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// [`SessionClock::from_settings`], with every problem found on its own.
    /// The settings are checked even when the clock is disabled, so enabling
    /// it later cannot turn valid settings into invalid ones.
    pub fn check(s: &SessionSettings) -> Result<Option<SessionClock>, Vec<SettingProblem>> {
        let mut problems = Vec::new();
        let mut problem = |key: String, message: String| {
            problems.push(SettingProblem { key, message });
        };
        let tz: Option<Tz> = s.timezone.parse().ok();
        if tz.is_none() {
            problem(
                "quiver.session.timezone".to_owned(),
                format!("{:?} is not an IANA time zone", s.timezone),
            );
        }
        let mut time = |field: &str, text: &str| {
            let parsed = NaiveTime::parse_from_str(text, "%H:%M")
                .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
                .ok();
            if parsed.is_none() {
                problem(
                    format!("quiver.session.{field}"),
                    format!("{text:?} is not HH:MM"),
                );
            }
            parsed
        };
        let open = time("open", &s.open);
        let close = time("close", &s.close);
        if let (Some(open), Some(close)) = (open, close) {
            if close <= open {
                problem(
                    "quiver.session.close".to_owned(),
                    format!(
                        "must be after quiver.session.open ({}), got {}",
                        s.open, s.close
                    ),
                );
            }
        }
        let mut weekdays = [false; 7];
        for (i, day) in s.weekdays.iter().enumerate() {
            match day.parse::<Weekday>() {
                Ok(wd) => weekdays[wd.num_days_from_monday() as usize] = true,
                Err(_) => problem(
                    format!("quiver.session.weekdays[{i}]"),
                    format!("{day:?} is not a weekday"),
                ),
            }
        }
        let mut holidays = Vec::with_capacity(s.holidays.len());
        for (i, day) in s.holidays.iter().enumerate() {
            match NaiveDate::parse_from_str(day, "%Y-%m-%d") {
                Ok(date) => holidays.push(date),
                Err(_) => problem(
                    format!("quiver.session.holidays[{i}]"),
                    format!("{day:?} is not YYYY-MM-DD"),
                ),
            }
        }
        holidays.sort_unstable();
        let (Some(tz), Some(open), Some(close), true) = (tz, open, close, problems.is_empty())
        else {
            return Err(problems);
        };
        if !s.enabled {
            return Ok(None);
        }
        Ok(Some(SessionClock {
            tz,
            open,
            close,
            weekdays,
            holidays,
        }))
    }

    /// Whether `ts_ns` (UTC nanoseconds) falls in a regular session:
    /// a trading weekday, not a holiday, local time in `[open, close)`.
    pub fn is_open(&self, ts_ns: i64) -> bool {
        let utc = DateTime::from_timestamp_nanos(ts_ns);
        let local = utc.with_timezone(&self.tz);
        let date = local.date_naive();
        if !self.weekdays[date.weekday().num_days_from_monday() as usize] {
            return false;
        }
        if self.holidays.binary_search(&date).is_ok() {
            return false;
        }
        let time = local.time();
        time >= self.open && time < self.close
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nse() -> SessionClock {
        SessionClock::from_settings(&SessionSettings {
            enabled: true,
            holidays: vec!["2026-01-26".to_owned()],
            ..SessionSettings::default()
        })
        .unwrap()
        .unwrap()
    }

    /// UTC nanoseconds of a local IST wall time.
    fn ist(date: &str, time: &str) -> i64 {
        let naive =
            chrono::NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S")
                .unwrap();
        (naive - chrono::Duration::minutes(330))
            .and_utc()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn open_to_close_on_trading_days_in_exchange_time() {
        let clock = nse();
        // Monday 2026-01-05.
        assert!(!clock.is_open(ist("2026-01-05", "09:14:59")));
        assert!(clock.is_open(ist("2026-01-05", "09:15:00")));
        assert!(clock.is_open(ist("2026-01-05", "15:29:59")));
        assert!(!clock.is_open(ist("2026-01-05", "15:30:00")));
        // The demo's first tick (03:45 UTC = 09:15 IST).
        assert!(clock.is_open(quiver_core::synthetic::DEFAULT_START_TS_NS));
        // Saturday, and Republic Day (a Monday holiday).
        assert!(!clock.is_open(ist("2026-01-10", "11:00:00")));
        assert!(!clock.is_open(ist("2026-01-26", "11:00:00")));
        assert!(clock.is_open(ist("2026-01-27", "11:00:00")));
    }

    #[test]
    fn dst_zones_follow_local_time() {
        let clock = SessionClock::from_settings(&SessionSettings {
            enabled: true,
            timezone: "America/New_York".to_owned(),
            open: "09:30".to_owned(),
            close: "16:00".to_owned(),
            ..SessionSettings::default()
        })
        .unwrap()
        .unwrap();
        // 14:30 UTC is 09:30 EST in January and 10:30 EDT in July.
        let jan = chrono::NaiveDate::from_ymd_opt(2026, 1, 6)
            .unwrap()
            .and_hms_opt(14, 29, 0)
            .unwrap();
        let jul = chrono::NaiveDate::from_ymd_opt(2026, 7, 7)
            .unwrap()
            .and_hms_opt(13, 29, 0)
            .unwrap();
        assert!(!clock.is_open(jan.and_utc().timestamp_nanos_opt().unwrap()));
        assert!(!clock.is_open(jul.and_utc().timestamp_nanos_opt().unwrap()));
        let jan = jan + chrono::Duration::minutes(1);
        let jul = jul + chrono::Duration::minutes(1);
        assert!(clock.is_open(jan.and_utc().timestamp_nanos_opt().unwrap()));
        assert!(clock.is_open(jul.and_utc().timestamp_nanos_opt().unwrap()));
    }

    #[test]
    fn disabled_or_invalid_settings() {
        assert!(SessionClock::from_settings(&SessionSettings::default())
            .unwrap()
            .is_none());
        let bad = |s: SessionSettings| SessionClock::from_settings(&s).unwrap_err();
        assert!(bad(SessionSettings {
            timezone: "Mars/Olympus".to_owned(),
            ..SessionSettings::default()
        })
        .contains("is not an IANA time zone"));
        assert!(bad(SessionSettings {
            open: "9h".to_owned(),
            ..SessionSettings::default()
        })
        .contains("is not HH:MM"));
        assert!(bad(SessionSettings {
            close: "09:00".to_owned(),
            ..SessionSettings::default()
        })
        .contains("must be after"));
        assert!(bad(SessionSettings {
            holidays: vec!["26/01/2026".to_owned()],
            ..SessionSettings::default()
        })
        .contains("is not YYYY-MM-DD"));
    }
}
