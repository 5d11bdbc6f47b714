//! The cron schedule of runs: a checked expression and its time zone.
//!
//! Owns parsing and normalising the expression (a five-field expression gets second 0,
//! since tokio-cron-scheduler requires the seconds field), and [`Ticker`], which turns
//! the schedule into tick messages. What a tick does is the daemon's business.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

/// A cron expression that parses, in seconds-first six-field form, with its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expr: String,
    tz: Tz,
    cron: Cron,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.tz == other.tz
    }
}

impl CronSchedule {
    /// Checks `expr` and `timezone`; errors carry the config key at fault.
    pub fn new(expr: &str, timezone: &str) -> Result<Self, (&'static str, String)> {
        let tz: Tz = timezone.trim().parse().map_err(|_| {
            (
                "schedule.timezone",
                format!("unknown IANA time zone {timezone:?}"),
            )
        })?;
        let fields = expr.split_whitespace().count();
        let expr = match fields {
            5 => format!("0 {}", expr.trim()),
            6 => expr.split_whitespace().collect::<Vec<_>>().join(" "),
            _ => {
                return Err((
                    "schedule.cron",
                    format!(
                    "{expr:?} has {fields} fields; expected 6 (sec min hour dom month dow) or 5"
                ),
                ))
            }
        };
        // The same parser settings tokio-cron-scheduler uses, so what passes here is
        // accepted there.
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&expr)
            .map_err(|e| ("schedule.cron", format!("{expr:?}: {e}")))?;
        Ok(CronSchedule { expr, tz, cron })
    }

    /// The six-field expression.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first tick strictly after `after`, if the expression ever fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&self.tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expr, self.tz)
    }
}

/// Sends `()` on a channel at every tick of a [`CronSchedule`].
pub struct Ticker {
    scheduler: JobScheduler,
    job: Uuid,
    ticks: mpsc::Sender<()>,
}

impl Ticker {
    pub async fn start(
        schedule: &CronSchedule,
        ticks: mpsc::Sender<()>,
    ) -> Result<Ticker, JobSchedulerError> {
        let scheduler = JobScheduler::new().await?;
        let job = scheduler.add(Self::job(schedule, ticks.clone())?).await?;
        scheduler.start().await?;
        Ok(Ticker {
            scheduler,
            job,
            ticks,
        })
    }

    fn job(schedule: &CronSchedule, ticks: mpsc::Sender<()>) -> Result<Job, JobSchedulerError> {
        Job::new_async_tz(schedule.expr(), schedule.timezone(), move |_, _| {
            let ticks = ticks.clone();
            Box::pin(async move {
                // A full channel means the daemon has not taken the previous tick yet;
                // dropping this one is the same as skipping it.
                let _ = ticks.try_send(());
            })
        })
    }

    /// Switches to `schedule` from its next tick on.
    pub async fn replace(&mut self, schedule: &CronSchedule) -> Result<(), JobSchedulerError> {
        let job = Self::job(schedule, self.ticks.clone())?;
        let id = self.scheduler.add(job).await?;
        self.scheduler.remove(&self.job).await?;
        self.job = id;
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!(error = %e, "stopping the scheduler");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_fields_get_second_zero() {
        let s = CronSchedule::new("*/5 * * * *", "UTC").unwrap();
        assert_eq!(s.expr(), "0 */5 * * * *");
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 30).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 5, 0).unwrap())
        );
    }

    #[test]
    fn every_second_is_allowed() {
        let s = CronSchedule::new("* * * * * *", "UTC").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(s.next_after(t), Some(t + chrono::Duration::seconds(1)));
    }

    #[test]
    fn time_zone_shifts_ticks() {
        let s = CronSchedule::new("0 0 9 * * *", "Europe/Paris").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap())
        );
    }

    #[test]
    fn bad_input_names_the_key() {
        assert_eq!(
            CronSchedule::new("61 * * * * *", "UTC").unwrap_err().0,
            "schedule.cron"
        );
        assert_eq!(
            CronSchedule::new("* *", "UTC").unwrap_err().0,
            "schedule.cron"
        );
        assert_eq!(
            CronSchedule::new("* * * * *", "Nowhere").unwrap_err().0,
            "schedule.timezone"
        );
    }
}
