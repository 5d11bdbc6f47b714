//! The daily compaction as the daemon runs it: in the background, on the sink of the
//! moment, at `compaction.cron` plus the settling delay in UTC, over the days
//! [`days_to_compact`] finds and any older day that queued trials were written into
//! late; stopped at shutdown. After it the study's report is published again
//! (`report/latest.html`).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::task::JoinError;
use tokio::time::Instant;

use super::{stats, Daemon, Step};
use crate::compaction::{days_to_compact, CompactionSettings, Compactor};
use crate::error::error_chain;
use crate::sink::keys::day_of;
use crate::sink::{Deadline, Sink};
use crate::study::report::{self, ReportError};
use crate::trial::TrialReport;

/// What one daily job did.
#[derive(Debug, Default)]
pub(super) struct CompactionTally {
    days: usize,
    compacted: usize,
    failed: usize,
    /// Late days whose compaction failed: the next run tries them again.
    late_left: Vec<NaiveDate>,
}

impl Daemon {
    /// Sets when the job next runs, from the settings in force.
    pub(super) fn schedule_compaction(&mut self) {
        let settings = self.settings.compaction();
        let now = (self.clock)();
        self.compaction_at = settings
            .enabled
            .then(|| settings.next_run(now))
            .flatten()
            .map(|next| Instant::now() + (next - now).to_std().unwrap_or_default());
    }

    pub(super) fn start_compaction(&mut self) -> Step {
        let mut compactor = Compactor::new(
            self.settings.compaction(),
            self.settings.sink().upload_timeout(),
        );
        compactor.cancel = self.shutdown.clone();
        let publish_deadline = Deadline {
            timeout: self.settings.sink().upload_timeout(),
            cancel: self.shutdown.clone(),
        };
        let run = Run {
            publish_deadline,
            compactor,
            settings: self.settings.compaction().clone(),
            sink: self.pipeline.sink().clone(),
            now: (self.clock)(),
            late: std::mem::take(&mut self.late_days),
        };
        self.compaction = Some(tokio::spawn(run.go()));
        self.schedule_compaction();
        Step::CompactionStarted
    }

    pub(super) fn on_compaction_done(&mut self, tally: Result<CompactionTally, JoinError>) -> Step {
        self.compaction = None;
        let tally = tally.unwrap_or_else(|e| {
            tracing::error!(error = %e, "compaction crashed: {e}");
            CompactionTally {
                failed: 1,
                ..CompactionTally::default()
            }
        });
        self.late_days.extend(tally.late_left);
        self.stats.last_compaction = Some(stats::LastCompaction {
            at: (self.clock)(),
            compacted: tally.compacted,
            failed: tally.failed,
        });
        self.notifier.status(&self.stats.status_line());
        Step::CompactionFinished {
            days: tally.days,
            compacted: tally.compacted,
            failed: tally.failed,
        }
    }

    /// Notes the finished days that the trials of `written` (queued through an outage,
    /// written now) landed in.
    pub(super) fn note_late(&mut self, written: &[TrialReport]) {
        let compaction = self.settings.compaction();
        if !compaction.enabled {
            return;
        }
        let now = (self.clock)();
        let late = written
            .iter()
            .filter_map(|r| r.hyper.as_ref().and_then(|w| day_of(&w.location)))
            .filter(|day| compaction.finished_at(*day) <= now);
        self.late_days.extend(late);
    }

    /// At shutdown: the job's writes are cancelled with the shutdown token; it gets a
    /// moment to abort them, then is dropped. The next run picks the days up again.
    pub(super) async fn stop_compaction(&mut self) {
        if let Some(mut task) = self.compaction.take() {
            if tokio::time::timeout(super::CANCEL_WINDOW, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
            tracing::info!("compaction stopped at shutdown; the next run resumes it");
        }
    }
}

/// One run of the job.
struct Run {
    compactor: Compactor,
    publish_deadline: Deadline,
    settings: CompactionSettings,
    sink: Arc<dyn Sink>,
    now: DateTime<Utc>,
    late: BTreeSet<NaiveDate>,
}

impl Run {
    async fn go(self) -> CompactionTally {
        let mut tally = CompactionTally::default();
        let sink = self.sink.as_ref();
        let mut days: BTreeSet<NaiveDate> = match days_to_compact(sink, &self.settings, self.now)
            .await
        {
            Ok(days) => days.into_iter().collect(),
            Err(e) => {
                let error = error_chain(&e);
                tracing::warn!(error = %error, "compaction: listing the days failed ({error}); the next daily run tries again");
                tally.failed = 1;
                tally.late_left = self.late.into_iter().collect();
                return tally;
            }
        };
        days.extend(&self.late);
        tally.days = days.len();
        for day in days {
            match self.compactor.compact_day(sink, day).await {
                Ok(outcome) if outcome.nothing_new() => tracing::debug!("{outcome}"),
                Ok(outcome) => {
                    tally.compacted += 1;
                    tracing::info!(day = %day, "compaction: {outcome}");
                }
                Err(e) => {
                    tally.failed += 1;
                    if self.late.contains(&day) {
                        tally.late_left.push(day);
                    }
                    let error = error_chain(&e);
                    tracing::warn!(day = %day, error = %error, "compaction of {day} failed ({error}); the next daily run tries again");
                }
            }
        }
        tracing::info!(
            days = tally.days,
            compacted = tally.compacted,
            failed = tally.failed,
            "daily compaction done: {} days looked at, {} with new parts, {} failed",
            tally.days,
            tally.compacted,
            tally.failed
        );
        self.publish_report().await;
        tally
    }

    /// The report is rewritten whether or not every day compacted: it reads the JSON
    /// of days not compacted yet.
    async fn publish_report(&self) {
        let (sink, today) = (self.sink.clone(), self.now.date_naive());
        let deadline = self.publish_deadline.clone();
        // The report's reads hold borrowing streams across awaits, which the compiler
        // cannot prove Send inside a spawned task; a blocking thread drives them instead.
        let runtime = tokio::runtime::Handle::current();
        let published = tokio::task::spawn_blocking(move || {
            runtime.block_on(report::publish(sink.as_ref(), today, &deadline))
        })
        .await
        .unwrap_or_else(|e| Err(ReportError::Draw(format!("the task failed: {e}"))));
        match published {
            Ok(Some((written, trials))) => tracing::info!(
                location = %written.location,
                trials,
                "report published to {} ({trials} trials)",
                written.location
            ),
            Ok(None) => tracing::debug!("no ok trial yet: no report to publish"),
            Err(e) => {
                let error = error_chain(&e);
                tracing::warn!(error = %error, "publishing the report failed ({error}); the next daily run tries again");
            }
        }
    }
}
