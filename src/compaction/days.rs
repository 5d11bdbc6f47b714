//! Which days a compaction run takes, and when the daily job runs: `[compaction]`.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::model::cron::{CronExpr, CronSchedule};
use crate::model::values::{Bounded, Seconds};
use crate::sink::keys::{
    day_of, FACT_PARQUET_PREFIX, FACT_PREFIX, HYPER_PARQUET_PREFIX, HYPER_PREFIX,
};
use crate::sink::Sink;
use crate::store::LATE_DAYS;
use crate::store::{compacted_parts, ReadError};

/// `[compaction]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactionSettings {
    /// Whether `svr-etl run` compacts finished days itself.
    pub enabled: bool,
    /// When the daily job starts, in UTC, before [`Self::settle_secs`].
    pub cron: CronExpr,
    /// How long after a day ends it counts as finished: longer than the upload
    /// deadline, so that trials of the day still being written have landed.
    pub settle_secs: Seconds<false>,
    /// The largest Parquet object, in MiB (estimated from the records' JSON size,
    /// which Parquet only shrinks); a day past it is split into parts.
    pub max_object_mib: Bounded<1, 65_536>,
}

impl CompactionSettings {
    pub fn settle(&self) -> Duration {
        self.settle_secs.get()
    }

    pub(super) fn max_object_bytes(&self) -> usize {
        self.max_object_mib.get() * 1024 * 1024
    }

    /// When the daily job next runs after `now`: the cron tick plus the settling delay.
    pub fn next_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = CronSchedule::new(self.cron.clone(), chrono_tz::UTC);
        let settle = chrono::Duration::from_std(self.settle()).ok()?;
        cron.next_after(now - settle).map(|t| t + settle)
    }

    /// The moment `day` counts as finished.
    pub fn finished_at(&self, day: NaiveDate) -> DateTime<Utc> {
        let end = day
            .succ_opt()
            .unwrap_or(day)
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc();
        end + chrono::Duration::from_std(self.settle()).unwrap_or_default()
    }

    /// The finished days the daily job looks at on `now`: the last [`LATE_DAYS`].
    pub fn due_days(&self, now: DateTime<Utc>) -> Vec<NaiveDate> {
        let today = now.date_naive();
        (1..=LATE_DAYS)
            .rev()
            .filter_map(|back| today.checked_sub_days(chrono::Days::new(back)))
            .filter(|day| self.finished_at(*day) <= now)
            .collect()
    }
}

/// The days a compaction run takes on `now`: the finished days of the last
/// [`LATE_DAYS`] (for late objects) and every finished day, however old, whose JSON
/// some part does not cover yet: a day no part holds (a day before compaction was
/// turned on, or one whose compaction failed), or whose hyper records or predictions
/// alone were compacted. Two listings of day folders and two of parts find them.
pub async fn days_to_compact(
    sink: &dyn Sink,
    settings: &CompactionSettings,
    now: DateTime<Utc>,
) -> Result<Vec<NaiveDate>, ReadError> {
    let mut days: BTreeSet<NaiveDate> = settings.due_days(now).into_iter().collect();
    for (json, parquet) in [
        (HYPER_PREFIX, HYPER_PARQUET_PREFIX),
        (FACT_PREFIX, FACT_PARQUET_PREFIX),
    ] {
        let compacted = compacted_parts(sink, parquet).await?;
        let written = sink.list_folders(json).await?;
        days.extend(
            written
                .iter()
                .filter_map(|folder| day_of(folder))
                .filter(|day| !compacted.contains_key(day))
                .filter(|day| settings.finished_at(*day) <= now),
        );
    }
    Ok(days.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cron: &str, settle: f64) -> CompactionSettings {
        CompactionSettings {
            enabled: true,
            cron: CronExpr::try_from(cron.to_string()).unwrap(),
            settle_secs: Seconds::try_from(settle).unwrap(),
            max_object_mib: Bounded::try_from(256).unwrap(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_day_is_finished_once_it_has_settled() {
        let s = settings("0 0 0 * * *", 600.0);
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(s.finished_at(day), at("2026-11-27T00:10:00Z"));
        assert_eq!(
            s.due_days(at("2026-11-27T00:09:59Z")).last().copied(),
            day.pred_opt()
        );
        let due = s.due_days(at("2026-11-27T00:10:00Z"));
        assert_eq!(due.len(), LATE_DAYS as usize);
        assert_eq!(due.last(), Some(&day));
        assert_eq!(due[0], NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
    }

    #[test]
    fn the_job_runs_after_the_cron_tick_plus_the_settling_delay() {
        let s = settings("0 0 0 * * *", 600.0);
        assert_eq!(
            s.next_run(at("2026-11-26T13:00:00Z")),
            Some(at("2026-11-27T00:10:00Z"))
        );
        // Between the tick and the end of the delay the job is still ahead.
        assert_eq!(
            s.next_run(at("2026-11-27T00:05:00Z")),
            Some(at("2026-11-27T00:10:00Z"))
        );
        assert_eq!(
            s.next_run(at("2026-11-27T00:10:00Z")),
            Some(at("2026-11-28T00:10:00Z"))
        );
    }
}
