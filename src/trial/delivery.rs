//! Writing a fitted trial: the fact object, then the hyper record. A write that fails
//! for a reason a retry can mend (the store unreachable, stalled, erroring) leaves the
//! trial [`Unwritten`], holding what it still has to write, so that the daemon can
//! queue it and try again later with the trial's own time and partition.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::trainer::FitError;
use super::trial_report::TrialReport;
use super::Pipeline;
use crate::model::records::{HyperRecord, TrialStatus};
use crate::sink::{SinkError, Written};

/// A trial whose objects are not all written yet.
#[derive(Debug)]
pub struct Unwritten {
    pipeline: Pipeline,
    created: DateTime<Utc>,
    record: HyperRecord,
    /// The predictions, while the fact object is still to be written.
    predictions: Option<Arc<Vec<f64>>>,
    fact: Option<Written>,
}

impl Unwritten {
    pub(super) fn new(
        pipeline: Pipeline,
        created: DateTime<Utc>,
        record: HyperRecord,
        predictions: Option<Arc<Vec<f64>>>,
    ) -> Unwritten {
        Unwritten {
            pipeline,
            created,
            record,
            predictions,
            fact: None,
        }
    }

    /// About how much memory the trial holds while it waits.
    pub fn size(&self) -> usize {
        let predictions = self.predictions.as_ref().map_or(0, |p| p.len() * 8);
        predictions + 1024
    }

    pub fn record(&self) -> &HyperRecord {
        &self.record
    }

    pub(super) fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Writes what is left: facts first, then the hyper record. The report is ok,
    /// failed for good, or carries the trial back as unwritten.
    pub async fn deliver(mut self, cancel: &CancellationToken) -> TrialReport {
        let started = Instant::now();
        if let Some(predictions) = self.predictions.clone() {
            let written = self
                .pipeline
                .write_facts(self.created, &self.record, predictions, cancel)
                .await;
            match written {
                Ok(w) => {
                    self.fact = Some(w);
                    self.predictions = None;
                }
                // Another object under our key: this trial cannot be written, and its
                // hyper record says so.
                Err(e @ SinkError::Exists { .. }) => {
                    self.record.fail(format!("fact upload failed: {e}"));
                    self.predictions = None;
                }
                Err(e) => return self.stopped(e, started, cancel),
            }
        }
        if cancel.is_cancelled() {
            return self.stopped(cancelled(), started, cancel);
        }
        let written = self
            .pipeline
            .write_hyper(self.created, &self.record, cancel)
            .await;
        match written {
            Ok(hyper) => self.report(Some(hyper), None, started, false),
            Err(e @ SinkError::Exists { .. }) => self.report(None, Some(e), started, false),
            Err(e) => self.stopped(e, started, cancel),
        }
    }

    /// A write failed: the trial waits for another try, unless shutdown has given up
    /// on it.
    fn stopped(
        self,
        error: SinkError,
        started: Instant,
        cancel: &CancellationToken,
    ) -> TrialReport {
        if cancel.is_cancelled() {
            let mut gone = self;
            if gone.record.status == TrialStatus::Ok {
                gone.record.fail(FitError::Cancelled.to_string());
            }
            return gone.report(None, Some(error), started, false);
        }
        self.report(None, Some(error), started, true)
    }

    fn report(
        self,
        hyper: Option<Written>,
        sink_error: Option<SinkError>,
        started: Instant,
        keep: bool,
    ) -> TrialReport {
        let upload_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut report = TrialReport {
            record: self.record.clone(),
            fact: self.fact.clone(),
            hyper,
            upload_ms,
            sink_error,
            unwritten: None,
        };
        if keep {
            report.unwritten = Some(self);
        }
        report.log();
        report
    }
}

fn cancelled() -> SinkError {
    SinkError::Cancelled {
        op: "writing",
        location: "the remaining objects".into(),
    }
}

/// A trial fitted and scored, its objects not written yet.
#[derive(Debug)]
pub struct FittedTrial {
    unwritten: Unwritten,
    /// The key that announces the trial while it runs, withdrawn once it is written.
    marker: Option<String>,
}

impl FittedTrial {
    pub(super) fn new(unwritten: Unwritten, marker: Option<String>) -> FittedTrial {
        FittedTrial { unwritten, marker }
    }

    /// The second half of [`Pipeline::run_trial`]: writes the trial's objects, then
    /// withdraws its marker.
    pub async fn write(self, cancel: &CancellationToken) -> TrialReport {
        let pipeline = self.unwritten.pipeline().clone();
        let report = self.unwritten.deliver(cancel).await;
        if let Some(key) = self.marker {
            pipeline.withdraw(&key, cancel).await;
        }
        report
    }
}
