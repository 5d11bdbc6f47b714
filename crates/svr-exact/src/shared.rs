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
//!
//! The fits' predictions share a kernel of their own, computed another way (see
//! [`SharedKernel::predictions`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::distances::Distances;
use super::SvrModel;

/// Storage of kernels no longer used, kept for the next trial's, up to this many bytes
/// in all for each kind (training kernels, prediction kernels). A kernel of a few
/// hundred KiB allocated afresh each trial came from new pages, about 45 page faults a
/// trial, which on two cores cost more than a tenth of the daemon's time.
const SPARE_KERNEL_BYTES: usize = 32 << 20;

/// Kept storage of one kind, all of one length (the last kernel's), and its bytes.
struct Spare<T> {
    kept: Mutex<Vec<Box<[T]>>>,
    held: AtomicUsize,
}

static SPARE_KERNELS: Spare<f32> = Spare::new();
static SPARE_PREDICTIONS: Spare<f64> = Spare::new();

impl<T: Copy + Default> Spare<T> {
    const fn new() -> Spare<T> {
        Spare {
            kept: Mutex::new(Vec::new()),
            held: AtomicUsize::new(0),
        }
    }

    /// Storage for a kernel of `len` entries: kept storage, else new.
    fn take(&self, len: usize) -> Box<[T]> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_if(|s| s.len() == len);
        match kept {
            Some(kept) => {
                self.held.fetch_sub(size_of_val(&*kept), Ordering::Relaxed);
                kept
            }
            None => vec![T::default(); len].into(),
        }
    }

    /// Keeps `storage` for a later kernel, unless the kept storage is full; storage of
    /// another length (an earlier data set's) is let go.
    fn keep(&self, storage: Box<[T]>) {
        let mut spare = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.first().is_some_and(|s| s.len() != storage.len()) {
            let held: usize = spare.drain(..).map(|s| size_of_val(&*s)).sum();
            self.held.fetch_sub(held, Ordering::Relaxed);
        }
        let bytes = size_of_val(&*storage);
        if self.held.load(Ordering::Relaxed) + bytes <= SPARE_KERNEL_BYTES {
            self.held.fetch_add(bytes, Ordering::Relaxed);
            spare.push(storage);
        }
    }
}

/// The kernels' storage kept between trials, in bytes.
pub fn spare_kernel_bytes() -> usize {
    SPARE_KERNELS.held.load(Ordering::Relaxed) + SPARE_PREDICTIONS.held.load(Ordering::Relaxed)
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
    /// The trial's prediction kernel (see [`SharedKernel::predictions`]), and whether a
    /// fit has begun computing it.
    predictions: OnceLock<Box<[f64]>>,
    predicting: AtomicBool,
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
            predictions: OnceLock::new(),
            predicting: AtomicBool::new(false),
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
        let mut all = SPARE_KERNELS.take(n * n);
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

/// The largest prediction kernel kept for a trial, in bytes, the bound the training
/// rows' distances have (about 1,400 training rows), and within the fit's budget;
/// beyond it each fit computes the values its predictions need (at 10,000 rows the
/// kernel would be 1 GB).
const MAX_PREDICTION_KERNEL: u128 = super::MAX_KEPT_DISTANCES;

impl SharedKernel {
    /// Computes the trial's prediction kernel unless a fit has begun to or it is too
    /// large to keep: with [`SharedKernel::fill`], what a trial computes besides its
    /// solvers' iterations, for the reference's fits and predictions.
    pub fn fill_predictions(&self, full: &Distances, others: &[usize]) {
        let _ = self.predictions(full, others);
    }

    /// The trial's prediction kernel, computed here if no fit has begun to; `None`
    /// while another fit computes it, or when it is larger than
    /// [`MAX_PREDICTION_KERNEL`] or the fit's budget. `others` are the rows of `full`'s predicted rows that
    /// it does not train on, the same for every fit of the trial.
    ///
    /// The reference computes a prediction's kernel from the sum of squared
    /// differences, `exp(-gamma sum_k (x_k - t_k)^2)`, not from the expanded distance
    /// of the training kernel, and each fit of a trial computes it for its predicted
    /// rows and support vectors. Those values depend on the two rows and gamma alone,
    /// so one matrix over the trial's rows (its training rows, then `others`) and its
    /// training rows serves the final fit and every fold. It is symmetric to the bit
    /// over the training rows (`(t_k - x_k)^2` is `(x_k - t_k)^2`), so only its
    /// blocks on and below the diagonal go through `exp`, the others copied across.
    ///
    /// Laid out for the sums: eight rows at a time (the training rows in blocks of
    /// eight, then `others` in blocks of eight), each block every training row's
    /// column of eight values, so entry `((b * n) + s) * 8 + l` is row `8 b + l` of
    /// the layout against training row s.
    fn predictions(&self, full: &Distances, others: &[usize]) -> Option<&[f64]> {
        if let Some(all) = self.predictions.get() {
            return Some(all);
        }
        let bytes = 8 * (prediction_rows(self.n, others.len()) * self.n) as u128;
        if bytes > MAX_PREDICTION_KERNEL.min(full.budget)
            || self.predicting.swap(true, Ordering::Relaxed)
        {
            return None;
        }
        Some(
            self.predictions
                .get_or_init(|| self.compute_predictions(full, others)),
        )
    }

    fn compute_predictions(&self, full: &Distances, others: &[usize]) -> Box<[f64]> {
        let (n, dim) = (self.n, full.dim());
        let train_blocks = n.div_ceil(8);
        let rows = prediction_rows(n, others.len());
        // Every entry is written below (each block's columns up to its own, then those
        // beyond copied from later blocks), so kept storage needs no clearing.
        let mut all = SPARE_PREDICTIONS.take(rows * n);
        let mut rows_t = vec![0.0; dim * 8];
        for b in 0..rows / 8 {
            // The block's rows, feature by feature; lanes past the last repeat its first.
            for l in 0..8 {
                let x =
                    match prediction_row(n, others, 8 * b + l).or(prediction_row(n, others, 8 * b))
                    {
                        Some(Ok(t)) => full.train_features(t),
                        Some(Err(r)) => full.row_features(r),
                        None => unreachable!("every block has a first row"),
                    };
                for (k, x_k) in x.iter().enumerate() {
                    rows_t[k * 8 + l] = *x_k;
                }
            }
            let columns = if b < train_blocks {
                (8 * b + 8).min(n)
            } else {
                n
            };
            let block = &mut all[b * n * 8..(b * n + columns) * 8];
            let targets = &full.train_matrix()[..columns * dim];
            super::exp::prediction_columns(block, &rows_t, targets, dim, -self.gamma);
            if b < train_blocks {
                // Rows 8 b.. against the training rows of each earlier block are those
                // rows against the block's rows.
                let rows = 8.min(n - 8 * b);
                for earlier in 0..b {
                    let (before, block) = all.split_at_mut(b * n * 8);
                    let tile = &block[earlier * 64..earlier * 64 + 64];
                    let across = &mut before[(earlier * n + 8 * b) * 8..][..rows * 8];
                    transpose_tile(across, tile.try_into().unwrap());
                }
            }
        }
        all
    }
}

/// Rows of a prediction kernel over `n` training rows and `others` more: each part in
/// whole blocks of eight.
fn prediction_rows(n: usize, others: usize) -> usize {
    8 * (n.div_ceil(8) + others.div_ceil(8))
}

/// What row `row` of the prediction kernel's layout is: training row t (`Ok(t)`), row r
/// of the predicted rows (`Err(r)`), or padding (`None`).
fn prediction_row(n: usize, others: &[usize], row: usize) -> Option<Result<usize, usize>> {
    let train_rows = 8 * n.div_ceil(8);
    if row < n {
        Some(Ok(row))
    } else if row < train_rows {
        None
    } else {
        others.get(row - train_rows).map(|r| Err(*r))
    }
}

impl Shared<'_> {
    /// Predictions of `model` (fitted on this fit's training rows) for the trial's rows
    /// `rows` (below n a training row of the whole set, else the predicted row
    /// `others[row - n]`), read from the trial's prediction kernel; `None` while another
    /// fit computes it, or where it is not kept. Each sum runs over the support vectors
    /// in order, as [`SvrModel::predict`] sums, to the same bits.
    pub fn predict(&self, model: &SvrModel, others: &[usize], rows: &[usize]) -> Option<Vec<f64>> {
        let n = self.full.n_train();
        assert!(self.kernel.gamma == model.gamma && self.kernel.n == n);
        assert_eq!(n + others.len(), self.full.n_rows());
        let kernel = self.kernel.predictions(self.full, others)?;
        let train_rows = 8 * n.div_ceil(8);
        let slot = |row: usize| if row < n { row } else { train_rows + row - n };
        let columns: Vec<usize> = model.support.iter().map(|s| self.rows[*s]).collect();
        let mut sums = vec![[0.0; 8]; kernel.len() / n.max(1) / 8];
        let mut blocks: Vec<usize> = rows.iter().map(|row| slot(*row) / 8).collect();
        blocks.sort_unstable();
        blocks.dedup();
        let block = |b: usize| &kernel[b * n * 8..(b + 1) * n * 8];
        // Four blocks at a time (a last group short of four repeats its last block): each
        // lane's sum is one chain of additions, and four chains side by side keep the
        // adder busy where one would wait on each addition.
        for group in blocks.chunks(4) {
            let of = |j: usize| block(group[j.min(group.len() - 1)]);
            let mut four = [[0.0; 8]; 4];
            sum_columns(
                &mut four,
                &model.dual_coef,
                &columns,
                [of(0), of(1), of(2), of(3)],
            );
            for (b, s) in group.iter().zip(four) {
                sums[*b] = s;
            }
        }
        let rho = -model.intercept;
        let sums = sums.as_flattened();
        Some(rows.iter().map(|row| sums[slot(*row)] - rho).collect())
    }
}

super::wide::widest! {
    /// `across[l * 8 + t] = tile[t * 8 + l]` for the rows l of `across` (at most 8).
    fn transpose_tile(across: &mut [f64], tile: &[f64; 64]) {
        for (l, row) in across.chunks_exact_mut(8).enumerate() {
            for (t, value) in row.iter_mut().enumerate() {
                *value = tile[t * 8 + l];
            }
        }
    }
}

super::wide::widest! {
    /// `sums[j][l] += coef[s] * blocks[j][columns[s] * 8 + l]`, over s in order.
    fn sum_columns(sums: &mut [[f64; 8]; 4], coef: &[f64], columns: &[usize], blocks: [&[f64]; 4]) {
        // Indexed over arrays of fixed length and summed in a local, the four blocks'
        // sums stay in vector registers; written with iterators over the references,
        // the loop compiled to one scalar addition at a time.
        let mut acc = *sums;
        for (coef, column) in coef.iter().zip(columns) {
            for j in 0..4 {
                let k: &[f64; 8] = blocks[j][column * 8..column * 8 + 8].try_into().unwrap();
                for l in 0..8 {
                    acc[j][l] += coef * k[l];
                }
            }
        }
        *sums = acc;
    }
}

impl Drop for SharedKernel {
    fn drop(&mut self) {
        if let Some(all) = self.all.take() {
            SPARE_KERNELS.keep(all);
        }
        if let Some(all) = self.predictions.take() {
            SPARE_PREDICTIONS.keep(all);
        }
    }
}

impl<'a> Shared<'a> {
    /// The trial's kernel row of the fit's training row `real`, over the whole training
    /// set.
    pub(super) fn full_row(&self, real: usize) -> Option<&'a [f32]> {
        self.kernel.ready(self.full)?;
        self.full_row_if_computed(real)
    }

    /// [`Shared::full_row`], only if the kernel is computed.
    pub(super) fn full_row_if_computed(&self, real: usize) -> Option<&'a [f32]> {
        let (kernel, i) = (self.kernel, self.rows[real]);
        Some(&kernel.all.get()?[i * kernel.n..(i + 1) * kernel.n])
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

    /// A trial as the trainer runs it: a final fit on the training rows predicting every
    /// row, and folds of the training rows predicting their test rows, their predictions
    /// read from the trial's prediction kernel (by the first fit to get there, the
    /// others computing their own meanwhile): the predictions of each model alone.
    #[test]
    fn predictions_read_from_the_trial_s_kernel_are_each_fit_s_own() {
        let n_all = 150;
        let x = Array2::from_shape_fn((n_all, 3), |(i, k)| ((i * 7 + k * 13) % 17) as f64 / 4.0);
        let y: Vec<f64> = (0..n_all).map(|i| (i as f64 / 9.0).sin()).collect();
        let train: Vec<usize> = (0..n_all).filter(|i| i % 5 != 2).collect();
        let others: Vec<usize> = (0..n_all).filter(|i| i % 5 == 2).collect();
        let n = train.len();
        let mut trial_rows = vec![0; n_all];
        for (t, row) in train.iter().enumerate() {
            trial_rows[*row] = t;
        }
        for (u, row) in others.iter().enumerate() {
            trial_rows[*row] = n + u;
        }
        let train_x = x.select(Axis(0), &train);
        let train_y: Vec<f64> = train.iter().map(|r| y[*r]).collect();
        let full = Distances::new(&train_x, &x, u128::MAX);
        // The final fit (every training row, predicting all rows), then four folds.
        let mut fits: Vec<(Vec<usize>, Vec<usize>)> = vec![((0..n).collect(), trial_rows)];
        for f in 0..4 {
            let test: Vec<usize> = (f * n / 4..(f + 1) * n / 4).collect();
            fits.push(((0..n).filter(|t| !test.contains(t)).collect(), test));
        }
        let params = SvrParams {
            gamma: 0.7,
            c: 3.0,
            epsilon: 0.05,
            tolerance: 1e-3,
        };
        let fit_one = |rows: &[usize], predicted: &[usize], kernel: &SharedKernel| {
            let fit_x = train_x.select(Axis(0), rows);
            // The rows predicted, as the fit alone would be given them.
            let features = |p: usize| {
                let row = if p < n { train[p] } else { others[p - n] };
                x.row(row).to_owned()
            };
            let views: Vec<_> = predicted.iter().map(|p| features(*p)).collect();
            let predict_x =
                ndarray::stack(Axis(0), &views.iter().map(|v| v.view()).collect::<Vec<_>>())
                    .unwrap();
            let own = Distances::new(&fit_x, &predict_x, u128::MAX);
            let targets: Vec<f64> = rows.iter().map(|r| train_y[*r]).collect();
            let shared = Shared {
                kernel,
                full: &full,
                rows,
            };
            let mut never = || false;
            let model = params
                .check()
                .unwrap()
                .fit_sharing(&own, &targets, Some(shared), &mut never)
                .unwrap();
            (
                model.predict(&own),
                shared.predict(&model, &others, predicted),
            )
        };
        let mut read = 0;
        for round in 0..20 {
            let kernel = SharedKernel::new(&full, params.gamma);
            let results: Vec<_> = if round == 0 {
                fits.iter()
                    .map(|(rows, predicted)| fit_one(rows, predicted, &kernel))
                    .collect()
            } else {
                std::thread::scope(|s| {
                    let handles: Vec<_> = fits
                        .iter()
                        .map(|(rows, predicted)| s.spawn(|| fit_one(rows, predicted, &kernel)))
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).collect()
                })
            };
            for (alone, through_kernel) in results {
                if let Some(through_kernel) = through_kernel {
                    assert_eq!(
                        through_kernel
                            .iter()
                            .map(|p| p.to_bits())
                            .collect::<Vec<_>>(),
                        alone.iter().map(|p| p.to_bits()).collect::<Vec<_>>()
                    );
                    read += 1;
                }
            }
            if round == 0 {
                assert_eq!(read, fits.len(), "one after another, every fit reads it");
            }
        }
        // Past the fit's budget it is not kept: each fit computes its own.
        let tight = Distances::new(&train_x, &x, 64 << 10);
        let kernel = SharedKernel::new(&tight, params.gamma);
        let (rows, predicted) = &fits[0];
        let shared = Shared {
            kernel: &kernel,
            full: &tight,
            rows,
        };
        let model = SvrModel {
            gamma: params.gamma,
            support: vec![0, 5],
            dual_coef: vec![1.0, -0.5],
            intercept: 0.25,
            iterations: 1,
        };
        assert!(shared.predict(&model, &others, predicted).is_none());
        let roomy = Distances::new(&train_x, &x, 1 << 20);
        let kernel = SharedKernel::new(&roomy, params.gamma);
        let shared = Shared {
            kernel: &kernel,
            full: &roomy,
            rows,
        };
        assert!(shared.predict(&model, &others, predicted).is_some());
    }

    /// The whole set and nine folds fitted at once on threads of their own, sharing one
    /// kernel, so that rows are computed by several fits at the same time: the models
    /// are those fitted alone.
    #[test]
    fn fits_sharing_a_kernel_at_once_are_the_fits_alone() {
        let n = 120;
        let x = Array2::from_shape_fn((n, 3), |(i, k)| ((i * 7 + k * 13) % 17) as f64 / 4.0);
        let y: Vec<f64> = (0..n).map(|i| (i as f64 / 9.0).sin()).collect();
        let mut subsets = vec![(0..n).collect::<Vec<_>>()];
        subsets.extend((0..4).map(|f| (0..n).filter(|i| i % 4 != f).collect::<Vec<_>>()));
        // Folds as the trainer cuts them, the rows before and after a block: read in
        // place from the shared kernel, in parts.
        let blocks = [0..30, 30..60, 60..90, 90..120, 17..41];
        subsets.extend(blocks.map(|test| (0..n).filter(|i| !test.contains(i)).collect()));
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
