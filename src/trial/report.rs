//! What one trial did, and the log line that says so.

use super::records::{HyperRecord, TrialStatus};
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

    /// One line per trial; under journald the fields become searchable
    /// (`journalctl -u svr-etl HYPER_ID=…`).
    pub(crate) fn log(&self) {
        let r = &self.record;
        let location = self.hyper.as_ref().map(|w| w.location.as_str());
        if self.is_ok() {
            tracing::info!(
                hyper_id = r.hyper_id.get(),
                gamma = r.gamma,
                c = r.c,
                epsilon = r.epsilon,
                test_r2 = r.test_r2,
                fit_ms = r.fit_ms,
                upload_ms = self.upload_ms,
                bytes = self.bytes(),
                seed = r.seed,
                study = %r.study,
                location,
                "trial ok"
            );
        } else {
            let error = self.failure().unwrap_or_default();
            tracing::warn!(
                hyper_id = r.hyper_id.get(),
                gamma = r.gamma,
                c = r.c,
                epsilon = r.epsilon,
                fit_ms = r.fit_ms,
                upload_ms = self.upload_ms,
                seed = r.seed,
                location,
                error = %error,
                "trial failed"
            );
        }
    }
}
