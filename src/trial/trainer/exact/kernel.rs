//! What the exact engine keeps per data set, and the kernel rows of one fit.
//!
//! Squared distances follow the reference exactly: for training it expands them as
//! `|x|^2 + |y|^2 - 2 x.y` with the dot products summed as a chain of fused
//! multiply-adds (what OpenBLAS's `ddot` does for short vectors on the CPUs measured);
//! for prediction it sums the squared differences the same way. Each chain runs in
//! feature order on its own lane, eight or four rows at a time, from the training rows
//! kept feature by feature; nothing of size n^2 is kept but the kernel rows. Kernel
//! rows are f32, cached up to the budget and evicted least recently used, as libsvm
//! does, but kept in the solver's order of variables so that its loops read them
//! straight.

use ndarray::Array2;

use super::wide::widest;

/// What distances to the training rows are computed from.
#[derive(Debug, Clone)]
pub struct Distances {
    /// The training rows in blocks of eight (the last padded with zeros), each block
    /// feature-major: feature k of row `8 b + l` is entry `(b * dim + k) * 8 + l`.
    train_blocks: Vec<f64>,
    train_x: Array2<f64>,
    all_x: Array2<f64>,
    squares: Vec<f64>,
    /// Each training row's distance to itself, expanded as any other (0 when finite).
    diagonal: Vec<f64>,
    /// Kernel rows one fit may keep.
    cached_rows: usize,
}

impl Distances {
    /// `train` are the training rows (in the order the fit sees them), `all` every row
    /// predictions are wanted for; `budget` bytes bound the kernel rows a fit keeps.
    pub fn new(train: &Array2<f64>, all: &Array2<f64>, budget: u128) -> Distances {
        let n = train.nrows();
        let train_x = train.as_standard_layout().into_owned();
        let all_x = all.as_standard_layout().into_owned();
        let squares: Vec<f64> = train_x
            .rows()
            .into_iter()
            .map(|r| r.iter().fold(0.0, |acc, x| x.mul_add(*x, acc)))
            .collect();
        let diagonal = squares.iter().map(|s| s + s - 2.0 * s).collect();
        let dim = train_x.ncols();
        let mut train_blocks = vec![0.0; n.div_ceil(8) * 8 * dim];
        for ((j, k), x) in train_x.indexed_iter() {
            train_blocks[((j / 8) * dim + k) * 8 + j % 8] = *x;
        }
        // Two rows at least: the solver works on a pair.
        let cached_rows = if Distances::bytes_for(n) <= budget {
            n
        } else {
            ((budget / (8 * n.max(1) as u128)) as usize).clamp(2, n.max(2))
        };
        Distances {
            train_blocks,
            train_x,
            all_x,
            squares,
            diagonal,
            cached_rows,
        }
    }

    pub fn n_train(&self) -> usize {
        self.train_x.nrows()
    }

    pub fn n_rows(&self) -> usize {
        self.all_x.nrows()
    }

    /// Whether every kernel row of a fit can be kept.
    pub fn is_dense(&self) -> bool {
        self.cached_rows == self.n_train()
    }

    /// Writes `factor` times the distances from training row `i` to all training rows
    /// into `out`.
    fn train_row_times(&self, i: usize, factor: f64, out: &mut Vec<f64>) {
        let n = self.n_train();
        out.resize(n.div_ceil(8) * 8, 0.0);
        dot_products(out, self.train_features(i), &self.train_blocks);
        out.truncate(n);
        let (squares, sq_i) = (&self.squares[..], self.squares[i]);
        scale_expanded(out, squares, sq_i, factor);
    }

    /// The features of training row `t`.
    pub fn train_features(&self, t: usize) -> &[f64] {
        self.train_x.row(t).to_slice().expect("standard layout")
    }

    /// The features of row `r` of those predicted.
    pub fn row_features(&self, r: usize) -> &[f64] {
        self.all_x.row(r).to_slice().expect("standard layout")
    }

    /// Bytes a fit's kernel takes when every row is kept (f32 rows over the 2n
    /// variables).
    pub fn bytes_for(n_train: usize) -> u128 {
        8 * (n_train as u128).pow(2)
    }
}

/// Independent sums advanced together, so that the latency of one fused multiply-add
/// hides behind the others.
const CHAINS: usize = 4;

widest! {
    /// `out[j] = x.x_j` for the rows of `blocks` (see `Distances::train_blocks`), each a
    /// chain of fused multiply-adds in feature order; `out` is a whole number of blocks.
    fn dot_products(out: &mut [f64], x: &[f64], blocks: &[f64]) {
        let dim = x.len();
        let block = 8 * dim.max(1);
        let mut outs = out.chunks_exact_mut(8 * CHAINS);
        let mut groups = blocks.chunks_exact(block * CHAINS);
        for (out, group) in (&mut outs).zip(&mut groups) {
            let mut acc = [[0.0f64; 8]; CHAINS];
            for (k, x_k) in x.iter().enumerate() {
                for (c, acc) in acc.iter_mut().enumerate() {
                    let column = &group[c * block + k * 8..c * block + k * 8 + 8];
                    for (acc, x_jk) in acc.iter_mut().zip(column) {
                        *acc = x_k.mul_add(*x_jk, *acc);
                    }
                }
            }
            for (out, acc) in out.chunks_exact_mut(8).zip(acc) {
                out.copy_from_slice(&acc);
            }
        }
        for (out, block) in outs.into_remainder().chunks_exact_mut(8).zip(groups.remainder().chunks_exact(block)) {
            let mut acc = [0.0f64; 8];
            for (k, x_k) in x.iter().enumerate() {
                for (acc, x_jk) in acc.iter_mut().zip(&block[k * 8..k * 8 + 8]) {
                    *acc = x_k.mul_add(*x_jk, *acc);
                }
            }
            out.copy_from_slice(&acc);
        }
    }
}

widest! {
    /// `out[j] = factor * ((|x_i|^2 + |x_j|^2) - 2 out[j])`, `out` holding x_i.x_j.
    fn scale_expanded(out: &mut [f64], squares: &[f64], sq_i: f64, factor: f64) {
        for (out, sq_j) in out.iter_mut().zip(squares) {
            *out = factor * (sq_i + sq_j - 2.0 * *out);
        }
    }
}

widest! {
    /// `out[s * 8 + b] = factor * sum_k (x_bk - t_sk)^2` for eight rows (`rows_t`,
    /// feature-major: entry `k * 8 + b`) and the rows `t` of `targets` (row-major,
    /// `dim` features each), each sum a chain of fused multiply-adds in feature order.
    pub(super) fn scaled_square_distances_8(
        out: &mut [f64],
        rows_t: &[f64],
        targets: &[f64],
        dim: usize,
        factor: f64,
    ) {
        let dim = dim.max(1);
        let mut outs = out.chunks_exact_mut(8 * CHAINS);
        let mut groups = targets.chunks_exact(dim * CHAINS);
        for (out, group) in (&mut outs).zip(&mut groups) {
            let mut acc = [[0.0f64; 8]; CHAINS];
            for k in 0..dim {
                let x = &rows_t[k * 8..k * 8 + 8];
                for (c, acc) in acc.iter_mut().enumerate() {
                    let t_k = group[c * dim + k];
                    for (acc, x) in acc.iter_mut().zip(x) {
                        let d = x - t_k;
                        *acc = d.mul_add(d, *acc);
                    }
                }
            }
            for (out, acc) in out.chunks_exact_mut(8).zip(acc) {
                for (out, acc) in out.iter_mut().zip(acc) {
                    *out = factor * acc;
                }
            }
        }
        for (out, t) in outs.into_remainder().chunks_exact_mut(8).zip(groups.remainder().chunks_exact(dim)) {
            let mut acc = [0.0f64; 8];
            for (k, t_k) in t.iter().enumerate() {
                for (acc, x) in acc.iter_mut().zip(&rows_t[k * 8..k * 8 + 8]) {
                    let d = x - t_k;
                    *acc = d.mul_add(d, *acc);
                }
            }
            for (out, acc) in out.iter_mut().zip(acc) {
                *out = factor * acc;
            }
        }
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
/// Shrinking's swaps of two variables are logged and applied to a kept row when it is
/// next asked for; a row that fell further behind than the log keeps is dropped, as
/// computing it again costs less than catching up.
pub struct KernelRows<'d> {
    dist: &'d Distances,
    gamma: f64,
    /// Kept rows, 2n entries each, one after another.
    storage: Vec<f32>,
    /// The slot in `storage` of each kernel row, by training row.
    slot: Vec<Option<usize>>,
    /// The training row in each slot (`None` when free), and when it was last asked for.
    owner: Vec<Option<usize>>,
    last_used: Vec<u64>,
    free: Vec<usize>,
    /// Swaps since the log was last cleared, and how many of them each slot has had.
    swaps: Vec<(usize, usize)>,
    applied: Vec<usize>,
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
            free: Vec::new(),
            swaps: Vec::new(),
            applied: Vec::new(),
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
        let width = self.width();
        let slot = if let Some(slot) = self.slot[real] {
            self.last_used[slot] = self.clock;
            if self.catch_up(slot) {
                return;
            }
            slot
        } else if let Some(slot) = self.free.pop() {
            slot
        } else if self.owner.len() < self.dist.cached_rows {
            self.storage.resize(self.storage.len() + width, 0.0);
            self.owner.push(None);
            self.last_used.push(0);
            self.applied.push(0);
            self.owner.len() - 1
        } else {
            let oldest = (0..self.owner.len())
                .min_by_key(|&k| self.last_used[k])
                .expect("a kept row");
            if let Some(owner) = self.owner[oldest] {
                self.slot[owner] = None;
            }
            oldest
        };
        self.owner[slot] = Some(real);
        self.last_used[slot] = self.clock;
        self.applied[slot] = self.swaps.len();
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
        self.swaps.push((i, j));
        if self.swaps.len() > 4 * self.width() {
            self.clear_swaps();
        }
    }

    /// Applies the swaps `slot` has not had, unless there are so many that computing
    /// the row again costs less (a swap touches two random entries, a new row
    /// computes all 2n); whether it did.
    fn catch_up(&mut self, slot: usize) -> bool {
        let width = self.width();
        let pending = &self.swaps[self.applied[slot]..];
        if 4 * pending.len() > width {
            return false;
        }
        let row = &mut self.storage[slot * width..(slot + 1) * width];
        for (a, b) in pending {
            row.swap(*a, *b);
        }
        self.applied[slot] = self.swaps.len();
        true
    }

    /// Empties the swap log: rows that can catch up do, the others are dropped.
    fn clear_swaps(&mut self) {
        for slot in 0..self.owner.len() {
            if !self.catch_up(slot) {
                if let Some(owner) = self.owner[slot].take() {
                    self.slot[owner] = None;
                    self.free.push(slot);
                }
            }
            self.applied[slot] = 0;
        }
        self.swaps.clear();
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

widest! {
    /// `plus = kernel` and `minus = -kernel`, as f32.
    fn narrow_both_signs(plus: &mut [f32], minus: &mut [f32], kernel: &[f64]) {
        for ((p, m), k) in plus.iter_mut().zip(minus).zip(kernel) {
            *p = *k as f32;
            *m = -(*k as f32);
        }
    }
}
