//! The Parzen estimator of TPE: a weighted mixture of products of truncated normals,
//! one kernel per observed trial plus a broad prior, over the log parameters.
//!
//! Built the way Optuna's `TPESampler` (version 5) builds it with its defaults
//! (prior weight 1, magic clip on, endpoints not considered): each kernel's width in a
//! dimension is the larger gap to its sorted neighbours (the bounds count as
//! neighbours, except that the outermost kernels take their inner gap), clipped to
//! `[range / min(100, kernels + 1), range]`; the prior sits at the centre with the
//! whole range as its width.

use rand::Rng;

use super::truncnorm;

/// Parameters in a trial, as the estimator sees them: natural logs.
pub type Point = [f64; DIMS];
/// gamma, C, epsilon.
pub const DIMS: usize = 3;

/// The bounds of the (log) search space, per dimension.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub low: Point,
    pub high: Point,
}

/// Optuna's default weights for `n` observations, oldest first: equal up to 25, past
/// that the older ones ramp up linearly from `1/n` and the newest 25 weigh 1.
pub fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut w: Vec<f64> = (0..ramp)
        .map(|i| {
            // numpy's linspace(1/n, 1, ramp).
            let start = 1.0 / n as f64;
            if ramp == 1 {
                start
            } else if i == ramp - 1 {
                1.0
            } else {
                start + i as f64 * ((1.0 - start) / (ramp - 1) as f64)
            }
        })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

#[derive(Debug, Clone)]
pub struct ParzenEstimator {
    bounds: Bounds,
    /// Normalized, prior last.
    weights: Vec<f64>,
    mus: Vec<Point>,
    sigmas: Vec<Point>,
    /// Per kernel, what its log density adds whatever the point: the log weight and,
    /// per dimension, the normalization of the truncated normal. Computed once, it
    /// leaves a quadratic form per kernel and point.
    offsets: Vec<f64>,
    inverse_sigmas: Vec<Point>,
}

impl ParzenEstimator {
    /// The estimator of `observations` (oldest first).
    pub fn new(observations: &[Point], bounds: Bounds) -> ParzenEstimator {
        let n = observations.len();
        let mut weights = default_weights(n);
        weights.push(1.0);
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        let mut mus: Vec<Point> = observations.to_vec();
        let mut sigmas = vec![[0.0; DIMS]; n];
        for d in 0..DIMS {
            let column: Vec<f64> = observations.iter().map(|p| p[d]).collect();
            for (i, s) in widths(&column, bounds.low[d], bounds.high[d])
                .into_iter()
                .enumerate()
            {
                sigmas[i][d] = s;
            }
        }
        let mut prior_mu = [0.0; DIMS];
        let mut prior_sigma = [0.0; DIMS];
        for d in 0..DIMS {
            prior_mu[d] = 0.5 * (bounds.low[d] + bounds.high[d]);
            prior_sigma[d] = bounds.high[d] - bounds.low[d];
        }
        mus.push(prior_mu);
        sigmas.push(prior_sigma);
        let offsets = (0..mus.len())
            .map(|k| {
                let dims = (0..DIMS).map(|d| {
                    let (mu, sigma) = (mus[k][d], sigmas[k][d]);
                    let a = (bounds.low[d] - mu) / sigma;
                    let b = (bounds.high[d] - mu) / sigma;
                    -truncnorm::LN_SQRT_2PI - truncnorm::log_gauss_mass(a, b) - sigma.ln()
                });
                dims.fold(0.0, |acc, v| acc + v) + weights[k].ln()
            })
            .collect();
        let inverse_sigmas = sigmas.iter().map(|s| s.map(|v| 1.0 / v)).collect();
        ParzenEstimator {
            bounds,
            weights,
            mus,
            sigmas,
            offsets,
            inverse_sigmas,
        }
    }

    /// The kernels' widths, observations then prior.
    pub fn sigmas(&self) -> &[Point] {
        &self.sigmas
    }

    /// A draw: a kernel by weight, then each dimension from it.
    pub fn sample(&self, rng: &mut impl Rng) -> Point {
        let u: f64 = rng.gen();
        let mut acc = 0.0;
        let mut k = self.weights.len() - 1;
        for (i, w) in self.weights.iter().enumerate() {
            acc += w;
            if u < acc {
                k = i;
                break;
            }
        }
        let mut x = [0.0; DIMS];
        for (d, x) in x.iter_mut().enumerate() {
            let (low, high) = (self.bounds.low[d], self.bounds.high[d]);
            *x = truncnorm::sample(rng, self.mus[k][d], self.sigmas[k][d], low, high);
        }
        x
    }

    /// The log density of the mixture at `x`.
    pub fn log_pdf(&self, x: &Point) -> f64 {
        let (low, high) = (self.bounds.low, self.bounds.high);
        if (0..DIMS).any(|d| x[d] < low[d] || x[d] > high[d]) {
            return f64::NEG_INFINITY;
        }
        let terms: Vec<f64> = (0..self.offsets.len())
            .map(|k| {
                let (mu, inverse) = (&self.mus[k], &self.inverse_sigmas[k]);
                let mut square = 0.0;
                for d in 0..DIMS {
                    let z = (x[d] - mu[d]) * inverse[d];
                    square += z * z;
                }
                self.offsets[k] - 0.5 * square
            })
            .collect();
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return max;
        }
        // Terms this far below the largest add less than 1e-17 each: skipping their
        // exp changes the sum of 10,000 of them by under 1e-13 of it.
        let sum: f64 = terms
            .iter()
            .filter(|t| **t - max > -40.0)
            .map(|t| (t - max).exp())
            .sum();
        sum.ln() + max
    }
}

/// One dimension's kernel widths, in the order of `mus`.
fn widths(mus: &[f64], low: f64, high: f64) -> Vec<f64> {
    let n = mus.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
    let mut sorted = Vec::with_capacity(n + 2);
    sorted.push(low);
    sorted.extend(order.iter().map(|&i| mus[i]));
    sorted.push(high);
    let mut sorted_sigmas: Vec<f64> = (1..=n)
        .map(|k| (sorted[k] - sorted[k - 1]).max(sorted[k + 1] - sorted[k]))
        .collect();
    if n >= 2 {
        sorted_sigmas[0] = sorted[2] - sorted[1];
        sorted_sigmas[n - 1] = sorted[n] - sorted[n - 1];
    }
    let range = high - low;
    let kernels = n + 1;
    let min_sigma = range / f64::min(100.0, 1.0 + kernels as f64);
    let mut sigmas = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        sigmas[i] = sorted_sigmas[rank].clamp(min_sigma, range);
    }
    sigmas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_ramp_past_25() {
        assert_eq!(default_weights(0), Vec::<f64>::new());
        assert_eq!(default_weights(24), vec![1.0; 24]);
        let w = default_weights(30);
        assert_eq!(w.len(), 30);
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-15);
        assert_eq!(w[4], 1.0);
        assert!(w[1] > w[0] && w[2] > w[1]);
    }

    #[test]
    fn the_density_is_the_weighted_sum_of_truncated_normals() {
        let bounds = Bounds {
            low: [-1.0, 0.0, -3.0],
            high: [2.0, 1.0, 0.0],
        };
        let pe = ParzenEstimator::new(&[[0.5, 0.2, -1.0], [1.9, 0.9, -2.5]], bounds);
        let x = [0.3, 0.7, -0.4];
        let direct: f64 = (0..3)
            .map(|k| {
                let dims: f64 = (0..DIMS)
                    .map(|d| {
                        let (mu, s) = (pe.mus[k][d], pe.sigmas[k][d]);
                        truncnorm::log_pdf(x[d], mu, s, bounds.low[d], bounds.high[d]).exp()
                    })
                    .product();
                pe.weights[k] * dims
            })
            .sum();
        assert!((pe.log_pdf(&x) - direct.ln()).abs() < 1e-12);
        assert_eq!(pe.log_pdf(&[3.0, 0.5, -1.0]), f64::NEG_INFINITY);
    }

    #[test]
    fn widths_follow_the_neighbours() {
        // Sorted 1, 2, 6 in [0, 10]: inner gaps for the ends, larger gap between.
        let s = widths(&[6.0, 1.0, 2.0], 0.0, 10.0);
        // min width 10 / min(100, 5) = 2.
        assert_eq!(s, vec![4.0, 2.0, 4.0]);
    }
}
