//! What one trial did, and the log line that says so.

use super::delivery::Unwritten;
use crate::model::records::{HyperRecord, TrialStatus};
use crate::sink::{SinkError, Written};

/// What one trial did.
#[derive(Debug)]
pub struct TrialReport {
    pub record: HyperRecord,
    pub fact: Option<Written>,
    pub hyper: Option<Written>,
    pub upload_ms: f64,
    /// The first write that failed, if any.
    pub sink_error: Option<SinkError>,
    /// The trial itself, when its writes failed for a reason a retry can mend.
    pub unwritten: Option<Unwritten>,
}

impl TrialReport {
    /// Fitted, and both objects written.
    pub fn is_ok(&self) -> bool {
        self.record.status == TrialStatus::Ok && self.sink_error.is_none() && self.hyper.is_some()
    }

    /// Why the trial failed: the first failed write, else the fit's error. `None`
    /// when it is ok.
    pub fn failure(&self) -> Option<String> {
        if self.is_ok() {
            return None;
        }
        let reason = match &self.sink_error {
            Some(e) => e.to_string(),
            None => self.record.error.clone().unwrap_or_default(),
        };
        Some(reason)
    }

    pub fn bytes(&self) -> u64 {
        self.fact.iter().chain(&self.hyper).map(|w| w.bytes).sum()
    }

    /// The line `svr-etl once` prints.
    pub fn summary_line(&self) -> String {
        let r = &self.record;
        let r2 = r
            .test_r2
            .map(|v| format!("{v:.6}"))
            .unwrap_or_else(|| "-".into());
        let hyper = self.hyper.as_ref().map_or("-", |w| w.location.as_str());
        let fact = self.fact.as_ref().map_or("-", |w| w.location.as_str());
        format!(
            "hyper_id={} gamma={} C={} epsilon={} test_r2={r2} hyper={hyper} fact={fact}",
            r.hyper_id, r.gamma, r.c, r.epsilon
        )
    }

    /// The log line: the readable message `journalctl -f` shows, with the values as
    /// fields for filtering (`journalctl -u svr-etl HYPER_ID=…`).
    pub(crate) fn log(&self) {
        let message = self.message();
        if self.is_ok() {
            trial_event!(tracing::Level::INFO, self, message);
        } else {
            trial_event!(tracing::Level::WARN, self, message);
        }
    }

    fn message(&self) -> String {
        let r = &self.record;
        let params = format!("gamma={} C={} epsilon={}", r.gamma, r.c, r.epsilon);
        if self.unwritten.is_some() {
            return format!(
                "trial queued {} {params}: {}",
                r.hyper_id,
                self.failure().unwrap_or_default()
            );
        }
        match (self.failure(), &self.hyper) {
            (None, Some(hyper)) => format!(
                "trial ok {} {}test_r2={:.6} train_r2={:.6} {params} fit {:.0} ms, upload {:.0} ms, {} bytes -> {}",
                r.hyper_id,
                r.cv_r2.map_or(String::new(), |cv| format!("cv_r2={cv:.6} ")),
                r.test_r2.unwrap_or(f64::NAN),
                r.train_r2.unwrap_or(f64::NAN),
                r.fit_ms.unwrap_or(f64::NAN),
                self.upload_ms,
                self.bytes(),
                hyper.location
            ),
            (failure, _) => format!(
                "trial failed {} {params}: {}",
                r.hyper_id,
                failure.unwrap_or_default()
            ),
        }
    }
}

/// One event with every field of a trial, at a level chosen by the caller.
macro_rules! trial_event {
    ($level:expr, $report:expr, $message:expr) => {{
        let report = $report;
        let r = &report.record;
        let failure = report.failure();
        tracing::event!(
            $level,
            hyper_id = r.hyper_id.get(),
            gamma = r.gamma,
            c = r.c,
            epsilon = r.epsilon,
            test_r2 = r.test_r2,
            cv_r2 = r.cv_r2,
            fit_ms = r.fit_ms,
            upload_ms = report.upload_ms,
            bytes = report.bytes(),
            seed = r.seed,
            study = %r.study,
            location = report.hyper.as_ref().map(|w| w.location.as_str()),
            error = failure.as_deref(),
            "{}",
            $message
        )
    }};
}
use trial_event;
