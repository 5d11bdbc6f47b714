//! What the exact engine computes once per data set, and the kernel rows of one fit.
//!
//! Squared distances follow the reference exactly: for training it expands them as
//! `|x|^2 + |y|^2 - 2 x.y` with the dot products summed as a chain of fused
//! multiply-adds (what OpenBLAS's `ddot` does for short vectors on the CPUs measured);
//! for prediction it sums the squared differences the same way. Neither depends on the
//! hyperparameters, so every trial and every fold reuses them.

use ndarray::{Array2, ArrayView1};

/// `sum a_k b_k`, one fused multiply-add at a time, in index order.
fn fma_dot(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    a.iter().zip(b).fold(0.0, |acc, (x, y)| x.mul_add(*y, acc))
}

/// Distances among the training rows and from every row to them.
#[derive(Debug, Clone)]
pub struct Distances {
    n_train: usize,
    /// Row-major n_train x n_train: `(|x_i|^2 + |x_j|^2) - 2 x_i.x_j`.
    train: Vec<f64>,
    /// Row-major rows x n_train: `sum (x_r - x_t)^2`.
    to_train: Vec<f64>,
}

impl Distances {
    /// `train` are the training rows (in the order the fit sees them), `all` every row
    /// predictions are wanted for.
    pub fn new(train: &Array2<f64>, all: &Array2<f64>) -> Distances {
        let n = train.nrows();
        let squares: Vec<f64> = train.rows().into_iter().map(|r| fma_dot(r, r)).collect();
        let mut dist = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let d = squares[i] + squares[j] - 2.0 * fma_dot(train.row(i), train.row(j));
                dist[i * n + j] = d;
                dist[j * n + i] = d;
            }
        }
        let mut to_train = Vec::with_capacity(all.nrows() * n);
        let mut diff = ndarray::Array1::zeros(train.ncols());
        for r in all.rows() {
            for t in train.rows() {
                ndarray::Zip::from(&mut diff)
                    .and(&r)
                    .and(&t)
                    .for_each(|d, a, b| *d = a - b);
                to_train.push(fma_dot(diff.view(), diff.view()));
            }
        }
        Distances {
            n_train: n,
            train: dist,
            to_train,
        }
    }

    pub fn n_train(&self) -> usize {
        self.n_train
    }

    /// The squared distances from row `r` to the training rows.
    pub fn to_train(&self, r: usize) -> &[f64] {
        &self.to_train[r * self.n_train..(r + 1) * self.n_train]
    }

    pub fn n_rows(&self) -> usize {
        self.to_train.len() / self.n_train.max(1)
    }

    /// Bytes held, for the memory guard.
    pub fn bytes_for(n_train: usize, rows: usize) -> u128 {
        8 * (n_train as u128) * (n_train as u128 + rows as u128)
    }
}

/// The rows of Q = [K -K; -K K] for one gamma, as the solver asks for them: kernel
/// rows computed on first use and kept as f32, and the permutation shrinking applies
/// to the 2n variables.
pub struct KernelRows<'d> {
    dist: &'d Distances,
    gamma: f64,
    rows: Vec<Option<Box<[f32]>>>,
    sign: Vec<i8>,
    index: Vec<usize>,
    qd: Vec<f64>,
}

impl<'d> KernelRows<'d> {
    pub fn new(dist: &'d Distances, gamma: f64) -> KernelRows<'d> {
        let n = dist.n_train;
        let diagonal = (0..n).map(|k| (-gamma * dist.train[k * n + k]).exp());
        let qd: Vec<f64> = diagonal.clone().chain(diagonal).collect();
        KernelRows {
            dist,
            gamma,
            rows: vec![None; n],
            sign: (0..2 * n).map(|k| if k < n { 1 } else { -1 }).collect(),
            index: (0..2 * n).map(|k| k % n).collect(),
            qd,
        }
    }

    /// Q's diagonal at variable `i`.
    pub fn qd(&self, i: usize) -> f64 {
        self.qd[i]
    }

    /// Writes the first `len` entries of column `i` of Q into `out`.
    pub fn column(&mut self, i: usize, len: usize, out: &mut [f32]) {
        let n = self.dist.n_train;
        let real = self.index[i];
        let gamma = self.gamma;
        let dist = &self.dist.train[real * n..(real + 1) * n];
        let row = self.rows[real]
            .get_or_insert_with(|| dist.iter().map(|d| (-gamma * d).exp() as f32).collect());
        let si = f32::from(self.sign[i]);
        for (j, out) in out.iter_mut().enumerate().take(len) {
            *out = si * f32::from(self.sign[j]) * row[self.index[j]];
        }
    }

    pub fn swap(&mut self, i: usize, j: usize) {
        self.sign.swap(i, j);
        self.index.swap(i, j);
        self.qd.swap(i, j);
    }
}
