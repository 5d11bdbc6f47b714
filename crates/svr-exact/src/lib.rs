//! The exact engine: epsilon-SVR with the RBF kernel, solved as libsvm solves it in
//! scikit-learn, so that coefficients, intercept, iteration count and predictions are
//! scikit-learn's to the last bit on the CPUs measured.
//!
//! Shaped as linfa's estimators are: [`SvrParams`] are checked into [`ValidSvrParams`],
//! whose `fit` returns an [`SvrModel`] that can only predict. The per-data-set work
//! ([`Distances`]) is done once and shared by every fit; the kernel of one gamma
//! ([`SharedKernel`]) can be shared by the fits of one trial, its folds included. A fit
//! asks a stop function every 1,000 iterations, so a deadline or a shutdown can end it.
//!
//! The algorithm is libsvm's (Copyright (c) 2000-2009 Chih-Chung Chang and Chih-Jen
//! Lin, BSD-3-Clause), as scikit-learn ships it; their notice is in NOTICE.

mod distances;
mod exp;
// Only the x86-64 vector exp reads the table; other targets call the C library's exp.
#[cfg(target_arch = "x86_64")]
mod exp_table;
mod kernel;
mod shared;
mod solver;
mod wide;

pub use distances::{Distances, MAX_KEPT_DISTANCES};
pub use exp::{path as exp_path, Path as ExpPath};
pub use kernel::KeepRows;
pub use shared::{Shared, SharedKernel};

/// Storage kept between fits and trials for the next ones to reuse (kernel rows per
/// thread, trials' kernels), in bytes: a count of the process's live heap subtracts it
/// to see what trials leave.
pub fn spare_bytes() -> usize {
    kernel::spare_row_bytes() + shared::spare_kernel_bytes()
}
pub use solver::Stopped;

use kernel::KernelRows;

/// Hyperparameters, unchecked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SvrParams {
    pub gamma: f64,
    pub c: f64,
    pub epsilon: f64,
    /// The solver's stopping tolerance (libsvm's `eps`).
    pub tolerance: f64,
}

/// Hyperparameters that a fit can use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidSvrParams(SvrParams);

impl SvrParams {
    pub fn check(self) -> Result<ValidSvrParams, String> {
        for (name, v) in [
            ("gamma", self.gamma),
            ("C", self.c),
            ("tolerance", self.tolerance),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a finite number above 0, got {v}"));
            }
        }
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return Err(format!(
                "epsilon must be a finite number of at least 0, got {}",
                self.epsilon
            ));
        }
        Ok(ValidSvrParams(self))
    }
}

/// A fitted model: support vectors (as training-row indices), their coefficients and
/// the intercept.
#[derive(Debug, Clone, PartialEq)]
pub struct SvrModel {
    gamma: f64,
    pub support: Vec<usize>,
    pub dual_coef: Vec<f64>,
    pub intercept: f64,
    pub iterations: usize,
}

impl ValidSvrParams {
    /// Fits on the training rows `dist` was made from, with targets `y`.
    pub fn fit(
        &self,
        dist: &Distances,
        y: &[f64],
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<SvrModel, Stopped> {
        self.fit_sharing(dist, y, None, stop)
    }

    /// [`ValidSvrParams::fit`], its kernel rows taken from `shared` (made for this
    /// gamma) when given: the same model to the last bit, with fewer kernel rows
    /// computed when several fits share one.
    pub fn fit_sharing(
        &self,
        dist: &Distances,
        y: &[f64],
        shared: Option<Shared<'_>>,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<SvrModel, Stopped> {
        let p = self.0;
        if let Some(s) = shared {
            assert!(
                s.kernel.gamma() == p.gamma && s.rows.len() == dist.n_train(),
                "a shared kernel is for the fit's gamma and rows"
            );
        }
        let q = KernelRows::new(dist, p.gamma, shared);
        let solution = solver::solve(q, y, p.c, p.epsilon, p.tolerance, stop)?;
        let (support, dual_coef) = solution
            .coef
            .iter()
            .enumerate()
            .filter(|(_, c)| c.abs() > 0.0)
            .map(|(i, c)| (i, *c))
            .unzip();
        Ok(SvrModel {
            gamma: p.gamma,
            support,
            dual_coef,
            intercept: -solution.rho,
            iterations: solution.iterations,
        })
    }
}

impl SvrModel {
    /// Predictions for every row `dist` knows, in row order: the kernel sum over the
    /// support vectors in their order, then the intercept, as the reference sums.
    /// Rows go in blocks of eight whose distances and sums advance side by side (each
    /// still in support-vector order); with AVX-512 each support vector's eight kernel
    /// values are summed as they are computed (a whole trial on the default band 4 %
    /// faster than computing all of a block's values, then summing them).
    pub fn predict(&self, dist: &Distances) -> Vec<f64> {
        const BLOCK: usize = 8;
        let rho = -self.intercept;
        let n_rows = dist.n_rows();
        let support: Vec<f64> = self
            .support
            .iter()
            .flat_map(|t| dist.train_features(*t).iter().copied())
            .collect();
        let dim = dist.dim();
        let mut predictions = Vec::with_capacity(n_rows);
        // kernel[s * BLOCK + b]: support vector s against row b of the block, where
        // the block is not computed in one pass.
        let mut kernel = Vec::new();
        let mut block_t = vec![0.0; dim * BLOCK];
        for first in (0..n_rows).step_by(BLOCK) {
            let rows = BLOCK.min(n_rows - first);
            for b in 0..BLOCK {
                // A short last block repeats its first row in the unused lanes.
                let x = dist.row_features(first + if b < rows { b } else { 0 });
                for (k, x_k) in x.iter().enumerate() {
                    block_t[k * BLOCK + b] = *x_k;
                }
            }
            let mut sums = [0.0; BLOCK];
            let (coef, factor) = (&self.dual_coef[..], -self.gamma);
            if !exp::predict_block_in_one_pass(&mut sums, &block_t, &support, coef, dim, factor) {
                kernel.resize(self.support.len() * BLOCK, 0.0);
                distances::scaled_square_distances_8(&mut kernel, &block_t, &support, dim, factor);
                exp::exp_in_place(&mut kernel);
                sum_block(&mut sums, coef, &kernel);
            }
            predictions.extend(sums[..rows].iter().map(|sum| sum - rho));
        }
        predictions
    }
}

wide::widest! {
    /// `sums[b] += coef[s] * kernel[s][b]`, over s in order.
    fn sum_block(sums: &mut [f64; 8], coef: &[f64], kernel: &[f64]) {
        for (coef, k) in coef.iter().zip(kernel.chunks_exact(8)) {
            for (sum, k) in sums.iter_mut().zip(k) {
                *sum += coef * k;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_predicted_in_one_pass_is_the_steps_one_after_another() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for (dim, n_support) in [(1, 1), (3, 7), (10, 300)] {
            let mut support: Vec<f64> = (0..dim * n_support).map(|_| 4.0 * next()).collect();
            let coef: Vec<f64> = (0..n_support).map(|_| 100.0 * next()).collect();
            let mut rows_t: Vec<f64> = (0..dim * 8).map(|_| 4.0 * next()).collect();
            // A row that is a support vector: a distance of 0, which `exp` takes apart.
            for k in 0..dim {
                support[k] = rows_t[k * 8 + 3];
            }
            rows_t[5] = 40.0;
            for gamma in [1e-3, 0.5, 30.0] {
                let mut kernel = vec![0.0; n_support * 8];
                distances::scaled_square_distances_8(&mut kernel, &rows_t, &support, dim, -gamma);
                exp::exp_in_place(&mut kernel);
                let mut want = [0.25; 8];
                sum_block(&mut want, &coef, &kernel);
                let mut got = [0.25; 8];
                if exp::predict_block_in_one_pass(&mut got, &rows_t, &support, &coef, dim, -gamma) {
                    assert_eq!(
                        got.map(f64::to_bits),
                        want.map(f64::to_bits),
                        "dim {dim}, gamma {gamma}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_model_without_support_vectors_predicts_its_intercept() {
        let x = ndarray::array![[0.5, 1.0], [2.0, -1.0], [3.0, 0.0]];
        let dist = Distances::new(&x, &x, 1 << 20);
        let model = SvrModel {
            gamma: 0.1,
            support: Vec::new(),
            dual_coef: Vec::new(),
            intercept: 1.5,
            iterations: 0,
        };
        assert_eq!(model.predict(&dist), vec![1.5; 3]);
    }
}
