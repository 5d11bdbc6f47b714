//! The training kernel of one gamma, shared by the fits of one trial: the final fit
//! and every cross-validation fold. A fold trains on a subset of the training rows, and
//! its kernel entry for two of them is the full kernel's entry for the same two rows:
//! the same distance (each dot product a chain in feature order, whatever else is in
//! the set) and the same `exp`. So each row is computed once per trial, by whichever
//! fit asks first, and the others gather their columns from it.

use std::sync::OnceLock;

use super::distances::Distances;

/// Kernel rows over the whole training set, as the solver keeps them (f32), each
/// computed on first use by any of the trial's fits. The fits run on several threads;
/// a fit that finds a row missing computes it and offers it, and the first offer is
/// kept. Nobody waits for a row another fit is computing: a row takes a microsecond or
/// two, a sleep and a wake take longer.
#[derive(Debug)]
pub struct SharedKernel {
    gamma: f64,
    rows: Vec<OnceLock<Box<[f32]>>>,
}

/// What a fit shares: the trial's kernel, the distances it is computed from, and the
/// position in that training set of each of the fit's own training rows.
#[derive(Debug, Clone, Copy)]
pub struct Shared<'a> {
    pub kernel: &'a SharedKernel,
    pub full: &'a Distances,
    pub rows: &'a [usize],
}

impl SharedKernel {
    /// An empty kernel for `full`'s training rows at `gamma`. It holds at most
    /// [`SharedKernel::bytes_for`] bytes once every row has been asked for.
    pub fn new(full: &Distances, gamma: f64) -> SharedKernel {
        SharedKernel {
            gamma,
            rows: (0..full.n_train()).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Bytes the kernel of `n_train` rows takes whole.
    pub fn bytes_for(n_train: usize) -> u128 {
        4 * (n_train as u128).pow(2)
    }

    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// Computes every row not yet computed: what a trial's kernel costs at least.
    pub fn fill(&self, full: &Distances) {
        let mut scratch = Vec::new();
        for i in 0..self.rows.len() {
            if self.rows[i].get().is_none() {
                self.compute(full, i, &mut scratch);
            }
        }
    }

    /// Computes row `i` of the kernel of `full` (`scratch` holds its distances on the
    /// way when they are not kept) and offers it to the other fits. Returns the kept
    /// row: this one, or the same values offered first by another fit.
    fn compute<'a>(&'a self, full: &Distances, i: usize, scratch: &mut Vec<f64>) -> &'a [f32] {
        let mut row: Box<[f32]> = vec![0.0; full.n_train()].into();
        super::kernel::kernel_row(full, i, self.gamma, scratch, &mut row);
        let kept = &self.rows[i];
        // An offer only moves the box in, so `set` never waits long.
        let _ = kept.set(row);
        kept.get().expect("a row was offered")
    }
}

impl<'a> Shared<'a> {
    /// The trial's kernel row of the fit's training row `real`, over the whole training
    /// set; `scratch` holds distances on the way.
    pub(super) fn full_row(&self, real: usize, scratch: &mut Vec<f64>) -> &'a [f32] {
        let (kernel, i) = (self.kernel, self.rows[real]);
        match kernel.rows[i].get() {
            Some(kept) => kept,
            None => kernel.compute(self.full, i, scratch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SvrModel, SvrParams};
    use ndarray::{Array2, Axis};

    /// Fits on `rows` of `x`, sharing `kernel` (made for all of `x`) when given.
    fn fit(x: &Array2<f64>, y: &[f64], rows: &[usize], kernel: Option<&SharedKernel>) -> SvrModel {
        let own = Distances::new(&x.select(Axis(0), rows), x, u128::MAX);
        let full = Distances::new(x, x, u128::MAX);
        let targets: Vec<f64> = rows.iter().map(|r| y[*r]).collect();
        let shared = kernel.map(|kernel| Shared {
            kernel,
            full: &full,
            rows,
        });
        let params = SvrParams {
            gamma: 0.7,
            c: 3.0,
            epsilon: 0.05,
            tolerance: 1e-3,
        };
        // These fits take under 300 iterations; a broken kernel fails the test at 10,000
        // rather than running on.
        let mut checks = 0;
        let mut stop = || {
            checks += 1;
            checks > 10
        };
        params
            .check()
            .unwrap()
            .fit_sharing(&own, &targets, shared, &mut stop)
            .expect("the fit converges")
    }

    /// The whole set and four folds fitted at once on threads of their own, sharing one
    /// kernel, so that rows are computed by several fits at the same time: the models
    /// are those fitted alone.
    #[test]
    fn fits_sharing_a_kernel_at_once_are_the_fits_alone() {
        let n = 120;
        let x = Array2::from_shape_fn((n, 3), |(i, k)| ((i * 7 + k * 13) % 17) as f64 / 4.0);
        let y: Vec<f64> = (0..n).map(|i| (i as f64 / 9.0).sin()).collect();
        let mut subsets = vec![(0..n).collect::<Vec<_>>()];
        subsets.extend((0..4).map(|f| (0..n).filter(|i| i % 4 != f).collect::<Vec<_>>()));
        let alone: Vec<SvrModel> = subsets.iter().map(|rows| fit(&x, &y, rows, None)).collect();
        for _ in 0..20 {
            let full = Distances::new(&x, &x, u128::MAX);
            let kernel = SharedKernel::new(&full, 0.7);
            let together: Vec<SvrModel> = std::thread::scope(|s| {
                let fits: Vec<_> = subsets
                    .iter()
                    .map(|rows| s.spawn(|| fit(&x, &y, rows, Some(&kernel))))
                    .collect();
                fits.into_iter().map(|f| f.join().unwrap()).collect()
            });
            assert_eq!(together, alone);
        }
    }
}
