//! What the exact engine keeps per data set to compute squared distances to the
//! training rows, and the loops that compute them.
//!
//! Distances follow the reference exactly: for training it expands them as
//! `|x|^2 + |y|^2 - 2 x.y` with the dot products summed as a chain of fused
//! multiply-adds (what OpenBLAS's `ddot` does for short vectors on the CPUs measured);
//! for prediction it sums the squared differences the same way. Each chain runs in
//! feature order on its own lane, eight rows at a time and four chains side by side,
//! from the training rows kept in blocks feature by feature.
//!
//! The training rows' distances to each other do not depend on gamma, so every trial
//! on a data set needs the same ones. While their matrix is small
//! ([`MAX_KEPT_DISTANCES`], and within the fit's budget) it is computed once, on first
//! use, and kept; a kernel row is then `exp(-gamma * d)` of the kept numbers, the
//! values it would have computed. Predictions compute theirs each time; kept too, they
//! were no faster.

use std::sync::OnceLock;

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
    /// Each training row's squared norm, zeros after the last row up to a whole block.
    squares: Vec<f64>,
    /// Each training row's distance to itself, expanded as any other (0 when finite).
    pub(super) diagonal: Vec<f64>,
    /// Kernel rows one fit may keep.
    pub(super) cached_rows: usize,
    /// The bytes one fit's kernel may take (`budget` of [`Distances::new`]).
    pub(super) budget: u128,
    /// Training row i to training row j, expanded (entry `i * n + j`), when kept.
    train_kept: Option<OnceLock<Box<[f64]>>>,
}

/// The largest matrix of distances kept whole, in bytes: 16 MiB, the training rows'
/// own distances up to about 1,400 rows. A trial on a larger data set computes them;
/// there they are a smaller share of its work, and kept they would be hundreds of MiB.
pub const MAX_KEPT_DISTANCES: u128 = 16 << 20;

impl Distances {
    /// `train` are the training rows (in the order the fit sees them), `all` every row
    /// predictions are wanted for; `budget` bytes bound the kernel rows a fit keeps.
    pub fn new(train: &Array2<f64>, all: &Array2<f64>, budget: u128) -> Distances {
        let n = train.nrows();
        let train_x = train.as_standard_layout().into_owned();
        let all_x = all.as_standard_layout().into_owned();
        let mut squares: Vec<f64> = train_x
            .rows()
            .into_iter()
            .map(|r| r.iter().fold(0.0, |acc, x| x.mul_add(*x, acc)))
            .collect();
        let diagonal = squares.iter().map(|s| s + s - 2.0 * s).collect();
        squares.resize(n.div_ceil(8) * 8, 0.0);
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
        let keep = 8 * (n as u128).pow(2) <= MAX_KEPT_DISTANCES.min(budget);
        Distances {
            train_kept: keep.then(OnceLock::new),
            train_blocks,
            train_x,
            all_x,
            squares,
            diagonal,
            cached_rows,
            budget,
        }
    }

    pub fn n_train(&self) -> usize {
        self.train_x.nrows()
    }

    /// Features per row.
    pub fn dim(&self) -> usize {
        self.train_x.ncols()
    }

    pub fn n_rows(&self) -> usize {
        self.all_x.nrows()
    }

    /// Whether every kernel row of a fit can be kept.
    pub fn is_dense(&self) -> bool {
        self.cached_rows == self.n_train()
    }

    /// Whether the training rows' distances to each other are kept whole.
    pub fn keeps_train_distances(&self) -> bool {
        self.train_kept.is_some()
    }

    /// The kept distances from training row `i` to all training rows, computed whole
    /// on first use; `None` when they are not kept.
    fn kept_train_row(&self, i: usize) -> Option<&[f64]> {
        let n = self.n_train();
        let all = self.train_kept.as_ref()?.get_or_init(|| {
            let mut all = Vec::with_capacity(n * n);
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                self.compute_train_row(i, &mut row);
                all.extend_from_slice(&row);
            }
            all.into()
        });
        Some(&all[i * n..(i + 1) * n])
    }

    /// `out[j - from] = exp(factor * d(i, j))` as f32 for the training rows j from
    /// `from` on: a kernel row. Without kept distances, on AVX-512 the distances go
    /// through `exp` as they are computed, so that the dot products' reads of the
    /// training rows from the second-level cache overlap the arithmetic of `exp`
    /// (computed and then taken through `exp`, a 10,000-row trial took a tenth
    /// longer); elsewhere they are computed a few blocks at a time.
    pub(super) fn kernel_row(&self, i: usize, from: usize, factor: f64, out: &mut [f32]) {
        let n = self.n_train();
        assert_eq!(out.len(), n - from);
        if let Some(row) = self.kept_train_row(i) {
            return super::exp::exp_scaled_f32(&row[from..], factor, out);
        }
        let dim = self.dim();
        let (x, sq_i) = (self.train_features(i), self.squares[i]);
        let (blocks, squares) = (&self.train_blocks[..], &self.squares[..]);
        let mut start = from / 8 * 8;
        if start < from {
            let mut d = [0.0f64; 8];
            let block = &blocks[start * dim..(start + 8) * dim];
            expanded_dot_products(&mut d, x, block, &squares[start..start + 8], sq_i);
            let end = (start + 8).min(n);
            super::exp::exp_scaled_f32(
                &d[from - start..end - start],
                factor,
                &mut out[..end - from],
            );
            start += 8;
        }
        if start >= n {
            return;
        }
        let out = &mut out[start - from..];
        let (blocks, squares) = (&blocks[start * dim..], &squares[start..]);
        if super::exp::kernel_row_in_one_pass(out, x, blocks, squares, sq_i, factor) {
            return;
        }
        let mut d = [0.0f64; KERNEL_CHUNK];
        for (c, out) in out.chunks_mut(KERNEL_CHUNK).enumerate() {
            let (first, whole) = (c * KERNEL_CHUNK, out.len().div_ceil(8) * 8);
            expanded_dot_products(
                &mut d[..whole],
                x,
                &blocks[first * dim..(first + whole) * dim],
                &squares[first..first + whole],
                sq_i,
            );
            super::exp::exp_scaled_f32(&d[..out.len()], factor, out);
        }
    }

    fn compute_train_row(&self, i: usize, out: &mut Vec<f64>) {
        let n = self.n_train();
        out.resize(n.div_ceil(8) * 8, 0.0);
        let (squares, sq_i) = (&self.squares[..], self.squares[i]);
        expanded_dot_products(
            out,
            self.train_features(i),
            &self.train_blocks,
            squares,
            sq_i,
        );
        out.truncate(n);
    }

    /// The training rows' features, row after row.
    pub(super) fn train_matrix(&self) -> &[f64] {
        self.train_x.as_slice().expect("standard layout")
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

/// Training rows whose distances [`Distances::kernel_row`] computes at a time without
/// AVX-512: 4 KiB of f64, which stay in the first-level cache until `exp` reads them.
const KERNEL_CHUNK: usize = 512;

/// Independent sums advanced together, so that the latency of one fused multiply-add
/// hides behind the others.
const CHAINS: usize = 4;

widest! {
    /// `out[j] = (sq_x + squares[j]) - 2 x.x_j` for the rows of `blocks` (see
    /// `Distances::train_blocks`), the squared distance expanded as the reference
    /// expands it, each dot product a chain of fused multiply-adds in feature order;
    /// `out` and `squares` are a whole number of blocks. Expanded as each block's dot
    /// products are done rather than in a second pass over the row, which was a twentieth
    /// of a 10,000-row trial.
    fn expanded_dot_products(out: &mut [f64], x: &[f64], blocks: &[f64], squares: &[f64], sq_x: f64) {
        let dim = x.len();
        let block = 8 * dim.max(1);
        let expand = |out: &mut [f64], squares: &[f64], dot: &[f64; 8]| {
            for ((out, sq_j), dot) in out.iter_mut().zip(squares).zip(dot) {
                *out = sq_x + sq_j - 2.0 * dot;
            }
        };
        let mut outs = out.chunks_exact_mut(8 * CHAINS);
        let mut groups = blocks.chunks_exact(block * CHAINS);
        let mut norms = squares.chunks_exact(8 * CHAINS);
        for ((out, group), squares) in (&mut outs).zip(&mut groups).zip(&mut norms) {
            let mut acc = [[0.0f64; 8]; CHAINS];
            for (k, x_k) in x.iter().enumerate() {
                for (c, acc) in acc.iter_mut().enumerate() {
                    let column = &group[c * block + k * 8..c * block + k * 8 + 8];
                    for (acc, x_jk) in acc.iter_mut().zip(column) {
                        *acc = x_k.mul_add(*x_jk, *acc);
                    }
                }
            }
            for ((out, squares), acc) in out.chunks_exact_mut(8).zip(squares.chunks_exact(8)).zip(&acc) {
                expand(out, squares, acc);
            }
        }
        let rest = outs
            .into_remainder()
            .chunks_exact_mut(8)
            .zip(groups.remainder().chunks_exact(block))
            .zip(norms.remainder().chunks_exact(8));
        for ((out, block), squares) in rest {
            let mut acc = [0.0f64; 8];
            for (k, x_k) in x.iter().enumerate() {
                for (acc, x_jk) in acc.iter_mut().zip(&block[k * 8..k * 8 + 8]) {
                    *acc = x_k.mul_add(*x_jk, *acc);
                }
            }
            expand(out, squares, &acc);
        }
    }
}

widest! {
    /// `out[s * 8 + b] = factor * sum_k (x_bk - t_sk)^2` for eight rows (`rows_t`,
    /// feature-major: entry `k * 8 + b`) and the rows `t` of `targets` (row-major,
    /// `dim` features each), each sum a chain of fused multiply-adds in feature order.
    pub(crate) fn scaled_square_distances_8(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Features spread over several scales, so that some kernel values round near f32
    /// halfway points and some underflow.
    fn rows(n: usize, dim: usize, seed: u64) -> Array2<f64> {
        let mut state = seed;
        Array2::from_shape_fn((n, dim), |_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            (unit - 0.5) * [0.1, 1.0, 3.0][(state % 3) as usize]
        })
    }

    #[test]
    fn kernel_rows_are_the_c_library_s_exp_of_the_expanded_distances() {
        // Row counts off whole blocks and groups of blocks; first columns inside a block.
        for (n, dim) in [(1, 1), (7, 3), (45, 5), (333, 10), (1_000, 5)] {
            let train = rows(n, dim, n as u64 * 31 + dim as u64);
            // A budget of one row: nothing kept, every distance computed.
            let dist = Distances::new(&train, &train, 1);
            assert!(!dist.keeps_train_distances());
            for gamma in [0.01, 0.7, 20.0, 300.0] {
                for i in [0, n / 2, n - 1] {
                    let mut d = Vec::new();
                    dist.compute_train_row(i, &mut d);
                    for from in [0, 1, 7, 8, 9, n / 3, n - 1] {
                        let from = from.min(n - 1);
                        let mut out = vec![f32::NAN; n - from];
                        dist.kernel_row(i, from, -gamma, &mut out);
                        for (j, got) in (from..n).zip(&out) {
                            let want = crate::exp::exp(-gamma * d[j]) as f32;
                            assert_eq!(
                                got.to_bits(),
                                want.to_bits(),
                                "n {n}, dim {dim}, gamma {gamma}, row {i}, column {j} from {from}"
                            );
                        }
                    }
                }
            }
        }
    }
}
