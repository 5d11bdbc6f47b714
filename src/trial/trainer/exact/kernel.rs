//! What the exact engine computes once per data set, and the kernel rows of one fit.
//!
//! Squared distances follow the reference exactly: for training it expands them as
//! `|x|^2 + |y|^2 - 2 x.y` with the dot products summed as a chain of fused
//! multiply-adds (what OpenBLAS's `ddot` does for short vectors on the CPUs measured);
//! for prediction it sums the squared differences the same way. Neither depends on the
//! hyperparameters: within the memory budget they are computed once per data set and
//! shared by every trial and fold; past it, computed again where needed. Kernel rows
//! are f32, cached up to the budget and evicted least recently used, as libsvm does.

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
        let mut dist = Distances {
            train_x: train.clone(),
            all_x: all.clone(),
            squares,
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
            dist.cached_rows = ((budget / (4 * n.max(1) as u128)) as usize).clamp(2, n.max(2));
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

    /// Writes the distances from training row `i` to all training rows into `out`.
    fn train_row(&self, i: usize, out: &mut Vec<f64>) {
        let n = self.n_train();
        out.clear();
        match &self.train {
            Some(m) => out.extend_from_slice(&m[i * n..(i + 1) * n]),
            None => out.extend((0..n).map(|j| self.compute_train(i, j))),
        }
    }

    /// The squared distance from row `r` to training row `t`.
    pub fn to_train(&self, r: usize, t: usize) -> f64 {
        match &self.to_train {
            Some(m) => m[r * self.n_train() + t],
            None => fma_square_distance(self.all_x.row(r), self.train_x.row(t)),
        }
    }

    /// Bytes the precomputed distances and a full f32 kernel take.
    pub fn bytes_for(n_train: usize, rows: usize) -> u128 {
        let n = n_train as u128;
        8 * n * (n + rows as u128) + 4 * n * n
    }
}

/// The rows of Q = [K -K; -K K] for one gamma, as the solver asks for them: kernel
/// rows computed on first use and kept as f32 (the least recently used evicted past
/// the budget), and the permutation shrinking applies to the 2n variables.
pub struct KernelRows<'d> {
    dist: &'d Distances,
    gamma: f64,
    rows: Vec<Option<Box<[f32]>>>,
    last_used: Vec<u64>,
    clock: u64,
    cached: usize,
    scratch: Vec<f64>,
    sign: Vec<i8>,
    index: Vec<usize>,
    qd: Vec<f64>,
}

impl<'d> KernelRows<'d> {
    pub fn new(dist: &'d Distances, gamma: f64) -> KernelRows<'d> {
        let n = dist.n_train();
        let diagonal = (0..n).map(|k| (-gamma * dist.compute_train(k, k)).exp());
        let qd: Vec<f64> = diagonal.clone().chain(diagonal).collect();
        KernelRows {
            dist,
            gamma,
            rows: vec![None; n],
            last_used: vec![0; n],
            clock: 0,
            cached: 0,
            scratch: Vec::with_capacity(n),
            sign: (0..2 * n).map(|k| if k < n { 1 } else { -1 }).collect(),
            index: (0..2 * n).map(|k| k % n).collect(),
            qd,
        }
    }

    /// Q's diagonal at variable `i`.
    pub fn qd(&self, i: usize) -> f64 {
        self.qd[i]
    }

    /// Makes kernel row `real` present, evicting the least recently used past the cap.
    fn ensure_row(&mut self, real: usize) {
        self.clock += 1;
        self.last_used[real] = self.clock;
        if self.rows[real].is_some() {
            return;
        }
        if self.cached >= self.dist.cached_rows {
            let oldest = (0..self.rows.len())
                .filter(|&k| self.rows[k].is_some())
                .min_by_key(|&k| self.last_used[k])
                .expect("a cached row");
            self.rows[oldest] = None;
            self.cached -= 1;
        }
        self.dist.train_row(real, &mut self.scratch);
        let gamma = self.gamma;
        self.rows[real] = Some(
            self.scratch
                .iter()
                .map(|d| (-gamma * d).exp() as f32)
                .collect(),
        );
        self.cached += 1;
    }

    /// Writes the first `len` entries of column `i` of Q into `out`.
    pub fn column(&mut self, i: usize, len: usize, out: &mut [f32]) {
        let real = self.index[i];
        self.ensure_row(real);
        let row = self.rows[real].as_ref().expect("ensured");
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
