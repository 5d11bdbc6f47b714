//! The training kernel of one gamma, shared by the fits of one trial: the final fit
//! and every cross-validation fold. A fold trains on a subset of the training rows, and
//! its kernel entry for two of them is the full kernel's entry for the same two rows:
//! the same distance (each dot product a chain in feature order, whatever else is in
//! the set) and the same `exp`. So the kernel is computed once per trial, by whichever
//! fit asks first, and the others read their columns from it.
//!
//! The kernel is symmetric to the bit: the distance from row i to row j is formed from
//! the same products and sums as from j to i (`x_ik x_jk` is `x_jk x_ik` inside each
//! fused multiply-add, and the squares' sum commutes). So only the entries on and above
//! the diagonal are exponentiated; those below are copied across it. Every fit of a
//! trial asks for nearly every row, so the whole kernel is computed at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::distances::Distances;

/// Storage of kernels no longer used, kept for the next trial's, up to this many bytes
/// in all. A kernel of a few hundred KiB allocated afresh each trial came from new
/// pages, about 45 page faults a trial, which on two cores cost more than a tenth of
/// the daemon's time.
const SPARE_KERNEL_BYTES: usize = 32 << 20;

/// Kept storage, all of one length (the last kernel's), and its bytes.
static SPARE_KERNELS: Mutex<Vec<Box<[f32]>>> = Mutex::new(Vec::new());
static SPARE_KERNEL_HELD: AtomicUsize = AtomicUsize::new(0);

/// Storage for a kernel of `len` entries: kept storage, else new.
fn storage(len: usize) -> Box<[f32]> {
    let kept = SPARE_KERNELS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop_if(|s| s.len() == len);
    match kept {
        Some(kept) => {
            SPARE_KERNEL_HELD.fetch_sub(bytes(&kept), Ordering::Relaxed);
            kept
        }
        None => vec![0.0; len].into(),
    }
}

/// Keeps `storage` for a later kernel, unless the kept storage is full; storage of
/// another length (an earlier data set's) is let go.
fn keep(storage: Box<[f32]>) {
    let mut spare = SPARE_KERNELS.lock().unwrap_or_else(PoisonError::into_inner);
    if spare.first().is_some_and(|s| s.len() != storage.len()) {
        let held: usize = spare.drain(..).map(|s| bytes(&s)).sum();
        SPARE_KERNEL_HELD.fetch_sub(held, Ordering::Relaxed);
    }
    if SPARE_KERNEL_HELD.load(Ordering::Relaxed) + bytes(&storage) <= SPARE_KERNEL_BYTES {
        SPARE_KERNEL_HELD.fetch_add(bytes(&storage), Ordering::Relaxed);
        spare.push(storage);
    }
}

fn bytes(storage: &[f32]) -> usize {
    std::mem::size_of_val(storage)
}

/// The kernels' storage kept between trials, in bytes.
pub fn spare_kernel_bytes() -> usize {
    SPARE_KERNEL_HELD.load(Ordering::Relaxed)
}

/// The kernel over the whole training set, as the solver keeps it (f32), computed
/// when a fit first asks for a row. The fits run on several threads; those that ask
/// while another computes it compute the rows they need themselves until it is done.
#[derive(Debug)]
pub struct SharedKernel {
    gamma: f64,
    n: usize,
    /// Row i is `i * n..(i + 1) * n`.
    all: OnceLock<Box<[f32]>>,
    /// Whether a fit has begun computing it.
    started: AtomicBool,
}

/// What a fit shares: the trial's kernel, the distances it is computed from, and the
/// position in that training set of each of the fit's own training rows.
#[derive(Debug, Clone, Copy)]
pub struct Shared<'a> {
    pub kernel: &'a SharedKernel,
    pub full: &'a Distances,
    pub rows: &'a [usize],
}

/// Rows and columns of the blocks the lower triangle is copied in.
const TILE: usize = 16;

impl SharedKernel {
    /// An empty kernel for `full`'s training rows at `gamma`. It holds
    /// [`SharedKernel::bytes_for`] bytes once computed.
    pub fn new(full: &Distances, gamma: f64) -> SharedKernel {
        SharedKernel {
            gamma,
            n: full.n_train(),
            all: OnceLock::new(),
            started: AtomicBool::new(false),
        }
    }

    /// Bytes the kernel of `n_train` rows takes whole.
    pub fn bytes_for(n_train: usize) -> u128 {
        4 * (n_train as u128).pow(2)
    }

    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// Computes the kernel unless computed: what a trial's kernel costs at least.
    pub fn fill(&self, full: &Distances) {
        self.started.store(true, Ordering::Relaxed);
        self.all.get_or_init(|| self.compute(full));
    }

    /// The whole kernel, computed here if no fit has begun to; `None` while another
    /// fit computes it. A fit given `None` computes the rows it needs meanwhile rather
    /// than wait: waiting cost two cores more (the sleeps and wakes) than the rows.
    fn ready(&self, full: &Distances) -> Option<&[f32]> {
        if let Some(all) = self.all.get() {
            return Some(all);
        }
        if self.started.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(self.all.get_or_init(|| self.compute(full)))
    }

    /// The kernel of `full` at `gamma`: each row from the diagonal on, then the lower
    /// triangle copied across the diagonal a tile at a time.
    fn compute(&self, full: &Distances) -> Box<[f32]> {
        let n = self.n;
        // Every entry is written below (those from the diagonal on, then the rest), so
        // kept storage needs no clearing.
        let mut all = storage(n * n);
        for (i, row) in all.chunks_exact_mut(n.max(1)).enumerate().take(n) {
            full.kernel_row(i, i, -self.gamma, &mut row[i..]);
        }
        for top in (0..n).step_by(TILE) {
            for left in (0..=top).step_by(TILE) {
                for i in top..(top + TILE).min(n) {
                    for j in left..(left + TILE).min(i) {
                        all[i * n + j] = all[j * n + i];
                    }
                }
            }
        }
        all
    }
}

impl Drop for SharedKernel {
    fn drop(&mut self) {
        if let Some(all) = self.all.take() {
            keep(all);
        }
    }
}

impl<'a> Shared<'a> {
    /// The trial's kernel row of the fit's training row `real`, over the whole training
    /// set.
    pub(super) fn full_row(&self, real: usize) -> Option<&'a [f32]> {
        let (kernel, i) = (self.kernel, self.rows[real]);
        Some(&kernel.ready(self.full)?[i * kernel.n..(i + 1) * kernel.n])
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
