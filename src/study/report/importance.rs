//! How much of the score each parameter explains alone, for the report.
//!
//! For each parameter the trials are sorted by its value and cut into equal-count bins
//! (10, fewer below 50 trials); the importance is the share of the variance of the
//! score's ranks that lies between the bins (the correlation ratio eta^2), adjusted for
//! the share that bins of pure noise would show, as adjusted R^2 is. Ranks keep a few
//! hopeless fits (R^2 of -30) from being all the variance. It is a main-effect
//! estimate, as fANOVA's (Optuna's default) is; interactions are not counted.

use crate::model::records::{HyperRecord, TrialStatus};

/// A parameter by name, and how to read it from a record.
pub(super) type Param = (&'static str, fn(&HyperRecord) -> f64);

pub(super) const PARAMS: [Param; 3] = [
    ("gamma", |r| r.gamma),
    ("C", |r| r.c),
    ("epsilon", |r| r.epsilon),
];

/// Fewer scored trials than this give no importances.
pub(super) const MIN_TRIALS: usize = 10;

/// One parameter's importance.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Importance {
    pub name: &'static str,
    /// The adjusted share of the score's rank variance the parameter explains, 0 to 1.
    pub explained: f64,
}

/// The score a trial is judged by: `cv_r2` where the study cross-validates, else test
/// R^2; `None` for a failed or unscored trial.
pub(super) fn score(r: &HyperRecord, by_cv: bool) -> Option<f64> {
    let s = if by_cv { r.cv_r2 } else { r.test_r2 };
    s.filter(|v| v.is_finite() && r.status == TrialStatus::Ok)
}

/// The three parameters' importances, most important first; empty below
/// [`MIN_TRIALS`] scored trials.
pub(super) fn importances(trials: &[HyperRecord]) -> Vec<Importance> {
    let by_cv = crate::study::cross_validated(trials);
    let scored: Vec<(&HyperRecord, f64)> = trials
        .iter()
        .filter_map(|r| Some((r, score(r, by_cv)?)))
        .collect();
    if scored.len() < MIN_TRIALS {
        return Vec::new();
    }
    let ranks = ranks(&scored.iter().map(|(_, s)| *s).collect::<Vec<_>>());
    let mut out: Vec<Importance> = PARAMS
        .iter()
        .map(|(name, value)| {
            let xs: Vec<f64> = scored.iter().map(|(r, _)| value(r)).collect();
            Importance {
                name,
                explained: explained(&xs, &ranks),
            }
        })
        .collect();
    out.sort_by(|a, b| b.explained.total_cmp(&a.explained));
    out
}

/// Ranks from 1, ties sharing their mean rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = mean;
        }
        i = j + 1;
    }
    ranks
}

/// The adjusted correlation ratio of `ys` over equal-count bins of `xs`.
fn explained(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len();
    let bins = (n / 5).clamp(2, 10);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mean = ys.iter().sum::<f64>() / n as f64;
    let total: f64 = ys.iter().map(|y| (y - mean).powi(2)).sum();
    if total == 0.0 {
        return 0.0;
    }
    let between: f64 = (0..bins)
        .map(|b| {
            let bin = &order[b * n / bins..(b + 1) * n / bins];
            let m = bin.iter().map(|&i| ys[i]).sum::<f64>() / bin.len() as f64;
            bin.len() as f64 * (m - mean).powi(2)
        })
        .sum();
    let eta2 = between / total;
    let adjusted = 1.0 - (1.0 - eta2) * (n - 1) as f64 / (n - bins) as f64;
    adjusted.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn ties_share_their_mean_rank() {
        assert_eq!(ranks(&[0.3, 0.1, 0.3, 0.2]), [3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn a_parameter_the_score_follows_explains_it_and_noise_explains_little() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let xs: Vec<f64> = (0..200).map(|_| rng.gen::<f64>()).collect();
        let noise: Vec<f64> = (0..200).map(|_| rng.gen::<f64>()).collect();
        let ys: Vec<f64> = xs.iter().map(|x| (x * 6.0).sin()).collect();
        let ys = ranks(&ys);
        assert!(explained(&xs, &ys) > 0.9, "{}", explained(&xs, &ys));
        assert!(explained(&noise, &ys) < 0.1, "{}", explained(&noise, &ys));
    }
}
