//! Trials waiting for the sink: a queue bounded in bytes, written oldest first as soon
//! as the sink answers again, while new trials keep running.
//!
//! A run's trials whose writes failed come back [`Unwritten`] and are queued here; a
//! flush task, one at a time and off the loop, retries them with a backoff from 1 s to
//! 30 s. When the queue is full the oldest trials are dropped, counted and logged.

use std::collections::VecDeque;

use tokio::task::JoinError;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::{Daemon, Step};
use crate::trial::{TrialReport, Unwritten};

const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The queue.
#[derive(Debug)]
pub struct Outbox {
    items: VecDeque<Unwritten>,
    bytes: usize,
    budget: usize,
    dropped: u64,
    backoff: Duration,
    retry_at: Instant,
}

/// What a flush wrote, and what is still waiting (oldest first).
pub struct Flushed {
    delivered: Vec<TrialReport>,
    left: VecDeque<Unwritten>,
}

impl Outbox {
    pub fn new(budget_bytes: usize) -> Outbox {
        Outbox {
            items: VecDeque::new(),
            bytes: 0,
            budget: budget_bytes,
            dropped: 0,
            backoff: MIN_BACKOFF,
            retry_at: Instant::now(),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The size of the queued trials.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// When the next flush is due.
    pub fn retry_at(&self) -> Instant {
        self.retry_at
    }

    /// Queues a trial behind the others.
    pub fn push(&mut self, trial: Unwritten) {
        self.bytes += trial.size();
        self.items.push_back(trial);
        self.shed();
    }

    /// Takes every trial out, for a flush.
    pub fn take(&mut self) -> VecDeque<Unwritten> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
    }

    /// Puts back what a flush could not write, ahead of what was queued meanwhile, and
    /// schedules the next try: at once when the flush wrote everything, else later.
    pub fn restore(&mut self, mut left: VecDeque<Unwritten>) {
        if left.is_empty() {
            self.backoff = MIN_BACKOFF;
            self.retry_at = Instant::now();
        } else {
            self.retry_at = Instant::now() + self.backoff;
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
        left.extend(self.items.drain(..));
        self.bytes = left.iter().map(Unwritten::size).sum();
        self.items = left;
        self.shed();
    }

    /// After a run: its trials were written, so the sink answers and the queue is due;
    /// or they were not, and the next try waits its turn.
    pub fn sink_answered(&mut self, answered: bool) {
        if answered {
            self.retry_at = Instant::now();
        } else {
            self.retry_at = self.retry_at.max(Instant::now() + MIN_BACKOFF);
        }
    }

    /// Drops the oldest trials until the queue fits its budget.
    fn shed(&mut self) {
        while self.bytes > self.budget {
            let Some(oldest) = self.items.pop_front() else {
                break;
            };
            self.bytes -= oldest.size();
            self.dropped += 1;
            let hyper_id = oldest.record().hyper_id.get();
            tracing::error!(
                hyper_id,
                dropped = self.dropped,
                "retry queue full: trial {hyper_id} dropped unwritten ({} dropped so far)",
                self.dropped
            );
        }
    }
}

/// Writes `items` oldest first, stopping at the first that cannot be written.
pub async fn flush(mut items: VecDeque<Unwritten>, cancel: CancellationToken) -> Flushed {
    let mut delivered = Vec::new();
    while let Some(trial) = items.pop_front() {
        let mut report = trial.deliver(&cancel).await;
        if let Some(again) = report.unwritten.take() {
            items.push_front(again);
            break;
        }
        delivered.push(report);
    }
    Flushed {
        delivered,
        left: items,
    }
}

impl Daemon {
    /// Queues the run's unwritten trials and counts the rest.
    pub(super) fn sort_reports(&mut self, reports: Vec<TrialReport>) -> (usize, usize) {
        let (mut ok, mut failed, mut queued) = (0, 0, 0);
        for mut report in reports {
            self.metrics.observe_fit(&report);
            self.metrics.observe_writes(&report);
            if let Some(trial) = report.unwritten.take() {
                self.outbox.push(trial);
                queued += 1;
                continue;
            }
            self.stats.record(&report);
            if report.is_ok() {
                ok += 1;
            } else {
                failed += 1;
            }
        }
        if ok + failed + queued > 0 {
            self.outbox.sink_answered(queued == 0);
        }
        self.stats.queued = self.outbox.len();
        self.stats.dropped = self.outbox.dropped();
        (ok, failed)
    }

    pub(super) fn start_flush(&mut self) -> Step {
        let items = self.outbox.take();
        let queued = items.len();
        tracing::info!(queued, "writing {queued} queued trials");
        self.flush = Some(tokio::spawn(flush(items, self.run_cancel.clone())));
        Step::FlushStarted { queued }
    }

    pub(super) fn on_flush_done(&mut self, flushed: Result<Flushed, JoinError>) -> Step {
        self.flush = None;
        let (written, left) = match flushed {
            Ok(Flushed { delivered, left }) => {
                for report in &delivered {
                    self.stats.record(report);
                    self.metrics.observe_writes(report);
                }
                self.note_late(&delivered);
                (delivered.len(), left)
            }
            Err(e) => {
                tracing::error!(error = %e, "the flush of queued trials crashed: {e}");
                (0, VecDeque::new())
            }
        };
        let still = left.len();
        if written > 0 {
            tracing::info!(
                written,
                queued = still,
                "the sink answers again: {written} queued trials written, {still} still queued"
            );
        } else if still > 0 {
            tracing::warn!(
                queued = still,
                "the sink still does not answer: {still} trials queued"
            );
        }
        self.outbox.restore(left);
        self.stats.queued = self.outbox.len();
        self.stats.dropped = self.outbox.dropped();
        self.notifier.status(&self.stats.status_line());
        Step::Flushed {
            written,
            left: still,
        }
    }
}
