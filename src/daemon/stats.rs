//! What the daemon has done since it started, for STATUS= lines and logs.

use chrono::{DateTime, Utc};

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
    pub best: Option<Best>,
    pub last_compaction: Option<LastCompaction>,
}

/// The best ok trial so far, by the study's score: `cv_r2` where trials have it (as the
/// leaderboard ranks them), else test R^2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Best {
    pub id: HyperId,
    pub cv_r2: Option<f64>,
    pub test_r2: f64,
}

impl Best {
    /// A trial with a cross-validated score outranks one without.
    fn rank(&self) -> (bool, f64) {
        match self.cv_r2 {
            Some(cv) => (true, cv),
            None => (false, self.test_r2),
        }
    }
}

/// When the daily compaction last ended, and what it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastCompaction {
    pub at: DateTime<Utc>,
    pub compacted: usize,
    pub failed: usize,
}

impl Stats {
    pub fn record(&mut self, report: &TrialReport) {
        let r = &report.record;
        if report.is_ok() {
            self.trials_ok += 1;
            if let Some(test_r2) = r.test_r2 {
                let candidate = Best {
                    id: r.hyper_id,
                    cv_r2: r.cv_r2.filter(|v| v.is_finite()),
                    test_r2,
                };
                self.offer_best(candidate);
            }
        } else {
            self.trials_failed += 1;
        }
        self.last = Some((r.hyper_id, r.test_r2));
    }

    /// Keeps `candidate` if it ranks above the best so far.
    fn offer_best(&mut self, candidate: Best) {
        if self.best.is_none_or(|best| candidate.rank() > best.rank()) {
            self.best = Some(candidate);
        }
    }

    pub fn status_line(&self) -> String {
        let last = match self.last {
            Some((id, Some(r2))) => format!("last {id} test_r2={r2:.4}"),
            Some((id, None)) => format!("last {id} failed"),
            None => "no trial yet".to_string(),
        };
        let best = match self.best {
            Some(Best {
                id,
                cv_r2: Some(cv),
                test_r2,
            }) => format!("best {id} cv_r2={cv:.4} test_r2={test_r2:.4}"),
            Some(Best { id, test_r2, .. }) => format!("best {id} test_r2={test_r2:.4}"),
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
        if let Some(c) = self.last_compaction {
            line.push_str(&format!(
                "; compacted {} ({} days, {} failed)",
                c.at.format("%Y-%m-%d %H:%M UTC"),
                c.compacted,
                c.failed
            ));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn best(id: i64, cv_r2: Option<f64>, test_r2: f64) -> Best {
        Best {
            id: HyperId::from_raw(id),
            cv_r2,
            test_r2,
        }
    }

    #[test]
    fn the_best_trial_is_the_best_by_cv_r2_whatever_its_test_r2() {
        let mut stats = Stats::default();
        for b in [
            best(1, None, 0.9),
            best(2, Some(0.40), 0.60),
            best(3, Some(0.47), 0.52),
            best(4, Some(0.45), 0.58),
        ] {
            stats.offer_best(b);
        }
        assert_eq!(stats.best.unwrap().id, HyperId::from_raw(3));
        assert!(
            stats
                .status_line()
                .contains("best 3 cv_r2=0.4700 test_r2=0.5200"),
            "{}",
            stats.status_line()
        );
    }
}
