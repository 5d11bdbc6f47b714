//! The training kernel of one gamma, shared by the fits of one trial: the final fit
//! and every cross-validation fold. A fold trains on a subset of the training rows, and
//! its kernel entry for two of them is the full kernel's entry for the same two rows:
//! the same distance (each dot product a chain in feature order, whatever else is in
//! the set) and the same `exp`. So each row is computed once per trial, by whichever
//! fit asks first, and the others gather their columns from it.

use std::sync::OnceLock;

use super::distances::Distances;

/// Kernel rows over the whole training set, as the solver keeps them (f32), each
/// computed on first use by any of the trial's fits.
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

    /// Row `i` of the kernel of `full` (the distances this kernel was made for).
    pub fn row(&self, full: &Distances, i: usize) -> &[f32] {
        self.rows[i].get_or_init(|| {
            let (mut scratch, mut row) = (Vec::new(), Vec::new());
            super::kernel::kernel_row(full, i, self.gamma, &mut scratch, &mut row);
            row.into_boxed_slice()
        })
    }
}

impl Shared<'_> {
    /// The kernel row of the fit's training row `real` over its own training rows,
    /// into `out`.
    pub(super) fn gather(&self, real: usize, out: &mut Vec<f32>) {
        let full = self.kernel.row(self.full, self.rows[real]);
        out.clear();
        out.extend(self.rows.iter().map(|&j| full[j]));
    }
}
