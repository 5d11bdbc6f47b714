//! Cron expressions: checked and normalised at the config's serde boundary, and read
//! in a time zone. A five-field expression gets second 0 (the seconds field is
//! required, as tokio-cron-scheduler required it, so existing files keep their
//! meaning). Ticking on them is the daemon's business.

use std::fmt;

use chrono::{DateTime, LocalResult, NaiveDateTime, SubsecRound, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde::{Deserialize, Serialize};

/// A cron expression that parses, in seconds-first six-field form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronExpr {
    expr: String,
    cron: Cron,
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

impl TryFrom<String> for CronExpr {
    type Error = String;
    fn try_from(expr: String) -> Result<Self, String> {
        let fields = expr.split_whitespace().count();
        let expr = match fields {
            5 => format!("0 {}", expr.trim()),
            6 => expr.split_whitespace().collect::<Vec<_>>().join(" "),
            _ => {
                return Err(format!(
                    "{expr:?} has {fields} fields; expected 6 (sec min hour dom month dow) or 5"
                ))
            }
        };
        // Seconds required and day-of-month and day-of-week both honoured: the
        // settings existing schedules were written for.
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&expr)
            .map_err(|e| format!("{expr:?}: {e}"))?;
        Ok(CronExpr { expr, cron })
    }
}

impl From<CronExpr> for String {
    fn from(c: CronExpr) -> String {
        c.expr
    }
}

impl CronExpr {
    /// The six-field expression.
    pub fn as_str(&self) -> &str {
        &self.expr
    }
}

/// A cron expression read in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct CronSchedule {
    cron: CronExpr,
    tz: Tz,
}

impl CronSchedule {
    pub fn new(cron: CronExpr, tz: Tz) -> CronSchedule {
        CronSchedule { cron, tz }
    }

    /// The six-field expression.
    pub fn expr(&self) -> &str {
        self.cron.as_str()
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first tick strictly after `after`, if the expression ever fires again.
    ///
    /// The expression is read on the zone's wall clock, computed anew for each tick, so
    /// ticks keep local time when the zone's offset changes. As cronie runs jobs: a
    /// time the change skips (spring forward) runs once at the end of the skipped span,
    /// and a time it repeats (fall back) runs once, the first time. Ticks fall on whole
    /// seconds.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after = after.trunc_subsecs(0);
        let mut wall = after.with_timezone(&self.tz).naive_local();
        loop {
            // croner over the wall clock as if it were UTC: no offset in the way.
            let next_wall = self
                .cron
                .cron
                .find_next_occurrence(&Utc.from_utc_datetime(&wall), false)
                .ok()?
                .naive_utc();
            let instant = match self.tz.from_local_datetime(&next_wall) {
                LocalResult::Single(t) => t,
                LocalResult::Ambiguous(first, _) => first,
                LocalResult::None => self.end_of_gap(next_wall)?,
            };
            let instant = instant.with_timezone(&Utc);
            if instant > after {
                return Some(instant);
            }
            wall = next_wall;
        }
    }

    /// The first instant after the skipped wall-clock time `wall`: where the zone's
    /// clock resumes (03:00 for a 02:30 skipped by a change at 02:00).
    fn end_of_gap(&self, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
        let minute = wall.with_second(0)?;
        (1..=24 * 60).find_map(|m| {
            self.tz
                .from_local_datetime(&(minute + chrono::Duration::minutes(m)))
                .earliest()
        })
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expr(), self.tz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn schedule(expr: &str, tz: &str) -> Result<CronSchedule, String> {
        Ok(CronSchedule::new(
            CronExpr::try_from(expr.to_string())?,
            tz.parse().map_err(|e| format!("{e}"))?,
        ))
    }

    #[test]
    fn five_fields_get_second_zero() {
        let s = schedule("*/5 * * * *", "UTC").unwrap();
        assert_eq!(s.expr(), "0 */5 * * * *");
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 30).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 5, 0).unwrap())
        );
    }

    #[test]
    fn every_second_is_allowed() {
        let s = schedule("* * * * * *", "UTC").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(s.next_after(t), Some(t + chrono::Duration::seconds(1)));
    }

    #[test]
    fn time_zone_shifts_ticks() {
        let s = schedule("0 0 9 * * *", "Europe/Paris").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap())
        );
    }

    #[test]
    fn bad_expressions_are_refused() {
        assert!(CronExpr::try_from("61 * * * * *".to_string()).is_err());
        assert!(CronExpr::try_from("* *".to_string()).is_err());
    }

    /// The first `n` ticks of `expr` in `tz` after `from` (UTC, RFC 3339).
    fn ticks(expr: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
        let s = schedule(expr, tz).unwrap();
        let mut t: DateTime<Utc> = from.parse().unwrap();
        (0..n)
            .map(|_| {
                t = s.next_after(t).unwrap();
                t.format("%m-%d %H:%M").to_string()
            })
            .collect()
    }

    #[test]
    fn a_skipped_time_runs_at_the_end_of_the_gap_and_a_repeated_one_once() {
        // Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST, 2026-10-25 03:00 CEST -> 02:00 CET.
        assert_eq!(
            ticks("0 30 2,3 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", 6),
            [
                "03-28 01:30",
                "03-28 02:30",
                "03-29 01:00",
                "03-29 01:30",
                "03-30 00:30",
                "03-30 01:30"
            ]
        );
        assert_eq!(
            ticks("0 0,30 2 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 3),
            ["03-29 01:00", "03-30 00:00", "03-30 00:30"]
        );
        assert_eq!(
            ticks("0 30 2,3 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", 6),
            [
                "10-24 00:30",
                "10-24 01:30",
                "10-25 00:30",
                "10-25 02:30",
                "10-26 01:30",
                "10-26 02:30"
            ]
        );
        // Australia/Adelaide, half an hour off UTC: +9:30, and +10:30 in summer.
        assert_eq!(
            ticks(
                "0 30 2,3 * * *",
                "Australia/Adelaide",
                "2026-10-02T16:00:00Z",
                4
            ),
            ["10-02 17:00", "10-02 18:00", "10-03 16:30", "10-03 17:00"]
        );
        assert_eq!(
            ticks(
                "0 30 2,3 * * *",
                "Australia/Adelaide",
                "2026-04-03T15:00:00Z",
                5
            ),
            [
                "04-03 16:00",
                "04-03 17:00",
                "04-04 16:00",
                "04-04 18:00",
                "04-05 17:00"
            ]
        );
    }
}
