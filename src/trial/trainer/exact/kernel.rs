//! What the exact engine computes once per data set, and the kernel rows of one fit.
//!
//! Squared distances follow the reference exactly: for training it expands them as
//! `|x|^2 + |y|^2 - 2 x.y` with the dot products summed as a chain of fused
//! multiply-adds (what OpenBLAS's `ddot` does for short vectors on the CPUs measured);
//! for prediction it sums the squared differences the same way. Neither depends on the
//! hyperparameters: within the memory budget they are computed once per data set and
//! shared by every trial and fold; past it, computed again where needed. Kernel rows
//! are f32, cached up to the budget and evicted least recently used, as libsvm does,
//! but kept in the solver's order of variables so that its loops read them straight.

use ndarray::{Array2, ArrayView1};

/// `sum a_k b_k`, one fused multiply-add at a time, in index order.
fn fma_dot(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    a.iter().zip(b).fold(0.0, |acc, (x, y)| x.mul_add(*y, acc))
}

/// `sum (a_k - b_k)^2`, as `fma_dot` of the difference with itself.
fn fma_square_distance(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    a.iter().zip(b).fold(0.0, |acc, (x, y)| {
        let d = x - y;
        d.mul_add(d, acc)
    })
}

/// Distances among the training rows and from every row to them.
#[derive(Debug, Clone)]
pub struct Distances {
    train_x: Array2<f64>,
    all_x: Array2<f64>,
    squares: Vec<f64>,
    /// Each training row's distance to itself, expanded as any other (0 when finite).
    diagonal: Vec<f64>,
    /// Row-major n_train x n_train `(|x_i|^2 + |x_j|^2) - 2 x_i.x_j`, when it fits.
    train: Option<Vec<f64>>,
    /// Row-major rows x n_train `sum (x_r - x_t)^2`, when it fits.
    to_train: Option<Vec<f64>>,
    /// Kernel rows one fit may keep.
    cached_rows: usize,
}

impl Distances {
    /// `train` are the training rows (in the order the fit sees them), `all` every row
    /// predictions are wanted for; `budget` bytes bound what is kept.
    pub fn new(train: &Array2<f64>, all: &Array2<f64>, budget: u128) -> Distances {
        let n = train.nrows();
        let squares: Vec<f64> = train.rows().into_iter().map(|r| fma_dot(r, r)).collect();
        let diagonal = squares.iter().map(|s| s + s - 2.0 * s).collect();
        let mut dist = Distances {
            train_x: train.clone(),
            all_x: all.clone(),
            squares,
            diagonal,
            train: None,
            to_train: None,
            cached_rows: n,
        };
        let dense = Distances::bytes_for(n, all.nrows());
        if dense <= budget {
            dist.train = Some(dist.train_matrix());
            dist.to_train = Some(dist.to_train_matrix());
        } else {
            // Two rows at least: the solver works on a pair.
            dist.cached_rows = ((budget / (8 * n.max(1) as u128)) as usize).clamp(2, n.max(2));
        }
        dist
    }

    fn train_matrix(&self) -> Vec<f64> {
        let n = self.n_train();
        let mut m = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let d = self.compute_train(i, j);
                m[i * n + j] = d;
                m[j * n + i] = d;
            }
        }
        m
    }

    fn to_train_matrix(&self) -> Vec<f64> {
        let mut m = Vec::with_capacity(self.all_x.nrows() * self.n_train());
        for r in self.all_x.rows() {
            m.extend(
                self.train_x
                    .rows()
                    .into_iter()
                    .map(|t| fma_square_distance(r, t)),
            );
        }
        m
    }

    fn compute_train(&self, i: usize, j: usize) -> f64 {
        self.squares[i] + self.squares[j] - 2.0 * fma_dot(self.train_x.row(i), self.train_x.row(j))
    }

    pub fn n_train(&self) -> usize {
        self.train_x.nrows()
    }

    pub fn n_rows(&self) -> usize {
        self.all_x.nrows()
    }

    /// Whether everything is precomputed and every kernel row can be kept.
    pub fn is_dense(&self) -> bool {
        self.train.is_some()
    }

    /// Writes `factor` times the distances from training row `i` to all training rows
    /// into `out`.
    fn train_row_times(&self, i: usize, factor: f64, out: &mut Vec<f64>) {
        let n = self.n_train();
        out.clear();
        match &self.train {
            Some(m) => {
                out.resize(n, 0.0);
                scale_into(out, &m[i * n..(i + 1) * n], factor);
            }
            None => out.extend((0..n).map(|j| factor * self.compute_train(i, j))),
        }
    }

    /// Writes the squared distances from row `r` to the training rows `support`.
    pub fn to_support(&self, r: usize, support: &[usize], out: &mut Vec<f64>) {
        out.clear();
        match &self.to_train {
            Some(m) => {
                let n = self.n_train();
                let row = &m[r * n..(r + 1) * n];
                out.extend(support.iter().map(|t| row[*t]));
            }
            None => {
                let x = self.all_x.row(r);
                out.extend(
                    support
                        .iter()
                        .map(|t| fma_square_distance(x, self.train_x.row(*t))),
                );
            }
        }
    }

    /// Bytes the precomputed distances and a full kernel take (f32 rows over the 2n
    /// variables).
    pub fn bytes_for(n_train: usize, rows: usize) -> u128 {
        let n = n_train as u128;
        8 * n * (n + rows as u128) + 8 * n * n
    }
}

/// Row storage one thread keeps between fits, up to this size, so that the next fit
/// on the thread does not fault fresh pages in.
const SPARE_BYTES: usize = 16 << 20;

thread_local! {
    static SPARE_ROWS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The columns of Q = [K -K; -K K] for one gamma, as the solver asks for them: kernel
/// rows computed on first use and kept as f32 (the least recently used evicted past
/// the budget), each laid out in the solver's current order of the 2n variables and
/// signed by the variable's label, so that a column of Q is a kept row times one sign.
/// Shrinking's swaps of two variables swap them in every kept row as well.
pub struct KernelRows<'d> {
    dist: &'d Distances,
    gamma: f64,
    /// Kept rows, 2n entries each, one after another.
    storage: Vec<f32>,
    /// The slot in `storage` of each kernel row, by training row.
    slot: Vec<Option<usize>>,
    /// The training row in each slot, and when it was last asked for.
    owner: Vec<usize>,
    last_used: Vec<u64>,
    clock: u64,
    scratch: Vec<f64>,
    sign: Vec<f32>,
    index: Vec<usize>,
    /// Whether a swap has moved any variable from its first place.
    permuted: bool,
    qd: Vec<f64>,
}

impl<'d> KernelRows<'d> {
    pub fn new(dist: &'d Distances, gamma: f64) -> KernelRows<'d> {
        let n = dist.n_train();
        let diagonal = dist.diagonal.iter().map(|d| (-gamma * d).exp());
        let qd: Vec<f64> = diagonal.clone().chain(diagonal).collect();
        let mut storage = SPARE_ROWS.with(|spare| std::mem::take(&mut *spare.borrow_mut()));
        storage.clear();
        KernelRows {
            dist,
            gamma,
            storage,
            slot: vec![None; n],
            owner: Vec::new(),
            last_used: Vec::new(),
            clock: 0,
            scratch: Vec::with_capacity(n),
            sign: (0..2 * n).map(|k| if k < n { 1.0 } else { -1.0 }).collect(),
            index: (0..2 * n).map(|k| k % n).collect(),
            permuted: false,
            qd,
        }
    }

    /// Q's diagonal at variable `i`.
    pub fn qd(&self, i: usize) -> f64 {
        self.qd[i]
    }

    /// Q's diagonal, in the solver's order of variables.
    pub fn qd_all(&self) -> &[f64] {
        &self.qd
    }

    fn width(&self) -> usize {
        self.sign.len()
    }

    /// Makes column `i` present for [`KernelRows::column`], evicting the least recently
    /// used row past the cap.
    pub fn ensure(&mut self, i: usize) {
        let real = self.index[i];
        self.clock += 1;
        if let Some(slot) = self.slot[real] {
            self.last_used[slot] = self.clock;
            return;
        }
        let width = self.width();
        let slot = if self.owner.len() < self.dist.cached_rows {
            self.storage.resize(self.storage.len() + width, 0.0);
            self.owner.push(real);
            self.last_used.push(self.clock);
            self.owner.len() - 1
        } else {
            let oldest = (0..self.owner.len())
                .min_by_key(|&k| self.last_used[k])
                .expect("a kept row");
            self.slot[self.owner[oldest]] = None;
            self.owner[oldest] = real;
            self.last_used[oldest] = self.clock;
            oldest
        };
        self.slot[real] = Some(slot);
        self.dist
            .train_row_times(real, -self.gamma, &mut self.scratch);
        super::exp::exp_in_place(&mut self.scratch);
        let kernel = &self.scratch;
        let row = &mut self.storage[slot * width..(slot + 1) * width];
        if self.permuted {
            for ((out, sign), real) in row.iter_mut().zip(&self.sign).zip(&self.index) {
                *out = sign * kernel[*real] as f32;
            }
        } else {
            // Unswapped: variable k is training row k mod n, labelled +1 then -1.
            let (plus, minus) = row.split_at_mut(kernel.len());
            narrow_both_signs(plus, minus, kernel);
        }
    }

    /// Makes columns `i` and `j` present together (at least two rows are kept).
    pub fn ensure_pair(&mut self, i: usize, j: usize) {
        self.ensure(i);
        self.ensure(j);
        debug_assert!(self.slot[self.index[i]].is_some());
    }

    /// Column `i` of Q, made present by [`KernelRows::ensure`]: entry k is
    /// `sign * row[k]` (both factors exact, so the product is the reference's f32).
    pub fn column(&self, i: usize) -> (f32, &[f32]) {
        let slot = self.slot[self.index[i]].expect("column ensured");
        let width = self.width();
        (
            self.sign[i],
            &self.storage[slot * width..(slot + 1) * width],
        )
    }

    pub fn swap(&mut self, i: usize, j: usize) {
        self.sign.swap(i, j);
        self.index.swap(i, j);
        self.qd.swap(i, j);
        self.permuted = true;
        let width = self.width();
        for row in self.storage.chunks_exact_mut(width) {
            row.swap(i, j);
        }
    }
}

impl Drop for KernelRows<'_> {
    fn drop(&mut self) {
        if self.storage.capacity() * 4 <= SPARE_BYTES {
            let storage = std::mem::take(&mut self.storage);
            SPARE_ROWS.with(|spare| *spare.borrow_mut() = storage);
        }
    }
}

super::wide::widest! {
    /// `out = factor * from`.
    fn scale_into(out: &mut [f64], from: &[f64], factor: f64) {
        for (out, d) in out.iter_mut().zip(from) {
            *out = factor * d;
        }
    }
}

super::wide::widest! {
    /// `plus = kernel` and `minus = -kernel`, as f32.
    fn narrow_both_signs(plus: &mut [f32], minus: &mut [f32], kernel: &[f64]) {
        for ((p, m), k) in plus.iter_mut().zip(minus).zip(kernel) {
            *p = *k as f32;
            *m = -(*k as f32);
        }
    }
}
