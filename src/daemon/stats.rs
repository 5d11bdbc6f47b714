//! What the daemon has done since it started, for STATUS= lines and logs.

use crate::model::id::HyperId;
use crate::trial::TrialReport;

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub trials_ok: u64,
    pub trials_failed: u64,
    pub ticks_skipped: u64,
    /// Trials waiting for the sink, and trials the full queue dropped.
    pub queued: usize,
    pub dropped: u64,
    pub last: Option<(HyperId, Option<f64>)>,
    pub best: Option<(HyperId, f64)>,
}

impl Stats {
    pub fn record(&mut self, report: &TrialReport) {
        let r = &report.record;
        if report.is_ok() {
            self.trials_ok += 1;
            if let Some(r2) = r.test_r2 {
                if self.best.is_none_or(|(_, best)| r2 > best) {
                    self.best = Some((r.hyper_id, r2));
                }
            }
        } else {
            self.trials_failed += 1;
        }
        self.last = Some((r.hyper_id, r.test_r2));
    }

    pub fn status_line(&self) -> String {
        let last = match self.last {
            Some((id, Some(r2))) => format!("last {id} test_r2={r2:.4}"),
            Some((id, None)) => format!("last {id} failed"),
            None => "no trial yet".to_string(),
        };
        let best = match self.best {
            Some((id, r2)) => format!("best {id} test_r2={r2:.4}"),
            None => "no best yet".to_string(),
        };
        let mut line = format!(
            "{last}; {best}; {} ok, {} failed, {} ticks skipped",
            self.trials_ok, self.trials_failed, self.ticks_skipped
        );
        if self.queued > 0 || self.dropped > 0 {
            line.push_str(&format!(
                ", {} queued for the sink, {} dropped",
                self.queued, self.dropped
            ));
        }
        line
    }
}
