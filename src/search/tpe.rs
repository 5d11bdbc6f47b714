//! The tree-structured Parzen estimator, as Optuna's `TPESampler` (version 5) runs
//! with its defaults: multivariate, constant liar, 10 start-up trials, 24 candidates.
//!
//! The completed trials are split into the best `min(ceil(n / 10), 25)` ("below") and
//! the rest ("above"); trials still running elsewhere join the rest, so that two
//! workers do not chase the same spot. Each group becomes a [`ParzenEstimator`];
//! candidates are drawn from the good one and the one where `l(x) / g(x)` is largest
//! wins.

use rand::Rng;

use super::parzen::{Bounds, ParzenEstimator, Point};

/// Trials completed before the estimator takes over from random draws.
pub const STARTUP_TRIALS: usize = 10;
/// Candidates drawn from the good trials' estimator for each suggestion.
pub const CANDIDATES: usize = 24;

/// A completed trial, as TPE needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Orders trials oldest first (the trial id, which is time-ordered).
    pub order: i64,
    pub x: Point,
    /// Higher is better.
    pub value: f64,
}

/// How many of `n` completed trials count as good.
pub fn n_below(n: usize) -> usize {
    (n.div_ceil(10)).min(25)
}

/// The good and the other trials' points, each oldest first; `running` (oldest
/// first) join the others.
pub fn split(completed: &[Scored], running: &[(i64, Point)]) -> (Vec<Point>, Vec<Point>) {
    let mut ranked: Vec<&Scored> = completed.iter().collect();
    // Oldest first, then a stable sort by value: ties keep age order.
    ranked.sort_by_key(|t| t.order);
    ranked.sort_by(|a, b| b.value.total_cmp(&a.value));
    let cut = n_below(completed.len());
    let mut below: Vec<(i64, Point)> = ranked[..cut].iter().map(|t| (t.order, t.x)).collect();
    let mut above: Vec<(i64, Point)> = ranked[cut..].iter().map(|t| (t.order, t.x)).collect();
    above.extend_from_slice(running);
    below.sort_by_key(|t| t.0);
    above.sort_by_key(|t| t.0);
    let points = |v: Vec<(i64, Point)>| v.into_iter().map(|t| t.1).collect();
    (points(below), points(above))
}

/// The estimators of the good and the other trials.
pub fn estimators(
    completed: &[Scored],
    running: &[(i64, Point)],
    bounds: Bounds,
) -> (ParzenEstimator, ParzenEstimator) {
    let (below, above) = split(completed, running);
    (
        ParzenEstimator::new(&below, bounds),
        ParzenEstimator::new(&above, bounds),
    )
}

/// The next point to try, or `None` while fewer than [`STARTUP_TRIALS`] trials have
/// completed (the caller draws at random then).
pub fn suggest(
    completed: &[Scored],
    running: &[(i64, Point)],
    bounds: Bounds,
    rng: &mut impl Rng,
) -> Option<Point> {
    if completed.len() < STARTUP_TRIALS {
        return None;
    }
    let (good, other) = estimators(completed, running, bounds);
    let mut best: Option<(f64, Point)> = None;
    for _ in 0..CANDIDATES {
        let x = good.sample(rng);
        let score = good.log_pdf(&x) - other.log_pdf(&x);
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, x));
        }
    }
    best.map(|(_, x)| x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn bounds() -> Bounds {
        Bounds {
            low: [-1.0; 3],
            high: [1.0; 3],
        }
    }

    #[test]
    fn the_good_share_is_a_tenth_up_to_25() {
        assert_eq!(n_below(1), 1);
        assert_eq!(n_below(10), 1);
        assert_eq!(n_below(11), 2);
        assert_eq!(n_below(1000), 25);
    }

    #[test]
    fn running_trials_count_as_bad() {
        let completed: Vec<Scored> = (0..10)
            .map(|i| Scored {
                order: i,
                x: [i as f64 / 10.0; 3],
                value: i as f64,
            })
            .collect();
        let (below, above) = split(&completed, &[(20, [-0.5; 3])]);
        assert_eq!(below, vec![[0.9; 3]]);
        assert_eq!(above.len(), 10);
        assert_eq!(above[9], [-0.5; 3]);
    }

    #[test]
    fn it_moves_towards_the_good_region() {
        // Value peaks at (0.5, 0.5, 0.5): after some rounds, suggestions cluster there.
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let f = |x: &Point| -x.iter().map(|v| (v - 0.5).powi(2)).sum::<f64>();
        let mut completed: Vec<Scored> = (0..10)
            .map(|i| {
                let x = [0.0; 3].map(|_: f64| rng.gen_range(-1.0..1.0));
                Scored {
                    order: i,
                    x,
                    value: f(&x),
                }
            })
            .collect();
        assert!(suggest(&completed[..9], &[], bounds(), &mut rng).is_none());
        for i in 10..60 {
            let x = suggest(&completed, &[], bounds(), &mut rng).unwrap();
            assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
            completed.push(Scored {
                order: i,
                x,
                value: f(&x),
            });
        }
        let late: f64 = completed[50..].iter().map(|t| t.value).sum::<f64>() / 10.0;
        let early: f64 = completed[..10].iter().map(|t| t.value).sum::<f64>() / 10.0;
        assert!(late > early + 0.3, "late {late}, early {early}");
    }
}
