//! The SMO solver of libsvm for epsilon-SVR (Fan, Chen and Lin, JMLR 6 (2005)
//! 1889-1918), as scikit-learn ships it: second-order working-set selection, shrinking
//! with its counter, unshrinking and gradient reconstruction, and the kernel kept as f32
//! while gradients and multipliers are f64. Each step follows the reference's order of
//! floating-point operations, so that the solution is the same to the last bit.
//!
//! The problem has 2n variables: `alpha+` for i < n and `alpha-` for i >= n, with
//! labels +1 and -1 and linear terms `epsilon - y` and `epsilon + y`.

mod gradient;
mod masks;
mod select;
mod shrinking;

use super::kernel::{signed, Column, KernelRows};
use gradient::{
    add_pair_step, add_pair_step_moving_both, move_column, move_factor, move_two_columns,
};
use masks::ScanMasks;

/// The most kernel-row bytes of a fit that puts off its moves of G_bar. Larger fits
/// nearly always shrink, and by then the rows of the moves have left the caches:
/// 5,000 rows with folds took 0.84 s putting them off against 0.79 s not; 2,000 rows
/// were level.
const DEFER_G_BAR_BYTES: u128 = 32 << 20;

/// The reference's "small positive" for non-positive curvature.
const TAU: f64 = 1e-12;

/// Why the solver stopped before converging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    pub iterations: usize,
}

/// A converged solution.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// `alpha+ - alpha-` per training row.
    pub coef: Vec<f64>,
    pub rho: f64,
    pub iterations: usize,
}

/// Where a multiplier sits; one byte, as the vector scans read four at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Bound {
    Lower = 0,
    Upper = 1,
    Free = 2,
}

struct Smo<'k> {
    q: KernelRows<'k>,
    l: usize,
    active_size: usize,
    y: Vec<i8>,
    g: Vec<f64>,
    g_bar: Vec<f64>,
    /// Moves of G_bar not yet made, in order: (variable, whether it was at its upper
    /// bound). G_bar is read only when the gradient is rebuilt for shrunk variables,
    /// and moved with the variables when they are swapped, so a fit whose kernel rows
    /// are all kept, and few enough to stay in the caches ([`DEFER_G_BAR_BYTES`]),
    /// makes its moves just before shrinking; a fit that ends before it shrinks (most
    /// of the small ones) never makes them.
    g_bar_pending: Vec<(usize, bool)>,
    defer_g_bar: bool,
    alpha: Vec<f64>,
    status: Vec<Bound>,
    /// `y` and `status` as the eight-lane scans read them.
    masks: ScanMasks,
    p: Vec<f64>,
    active_set: Vec<usize>,
    c: f64,
    eps: f64,
    unshrink: bool,
}

/// Solves epsilon-SVR for targets `y` on the kernel `q`. `stop` is asked every 1,000
/// iterations whether to give up (a deadline, a shutdown).
pub fn solve(
    q: KernelRows<'_>,
    y: &[f64],
    c: f64,
    epsilon: f64,
    eps: f64,
    stop: &mut dyn FnMut() -> bool,
) -> Result<Solution, Stopped> {
    let n = y.len();
    let l = 2 * n;
    let mut p = Vec::with_capacity(l);
    p.extend(y.iter().map(|yi| epsilon - yi));
    p.extend(y.iter().map(|yi| epsilon + yi));
    let mut labels = vec![1i8; n];
    labels.extend(std::iter::repeat_n(-1i8, n));
    let defer_g_bar = q.keeps_every_row() && q.row_bytes() <= DEFER_G_BAR_BYTES;
    let status = vec![Bound::Lower; l];
    let mut smo = Smo {
        q,
        l,
        active_size: l,
        masks: ScanMasks::new(&labels, &status),
        y: labels,
        // All multipliers start at 0, at their lower bound: G = p and G_bar = 0.
        g: p.clone(),
        g_bar: vec![0.0; l],
        g_bar_pending: Vec::new(),
        defer_g_bar,
        alpha: vec![0.0; l],
        status,
        p,
        active_set: (0..l).collect(),
        c,
        eps,
        unshrink: false,
    };
    let iterations = smo.optimize(stop)?;
    let rho = smo.calculate_rho();
    let mut alpha = vec![0.0; l];
    for k in 0..l {
        alpha[smo.active_set[k]] = smo.alpha[k];
    }
    let coef = (0..n).map(|i| alpha[i] - alpha[i + n]).collect();
    Ok(Solution {
        coef,
        rho,
        iterations,
    })
}

impl Smo<'_> {
    fn optimize(&mut self, stop: &mut dyn FnMut() -> bool) -> Result<usize, Stopped> {
        let mut iter = 0usize;
        let mut counter = self.l.min(1000) + 1;
        loop {
            if iter.is_multiple_of(1000) && stop() {
                return Err(Stopped { iterations: iter });
            }
            counter -= 1;
            if counter == 0 {
                counter = self.l.min(1000);
                self.do_shrinking();
            }
            let (i, j) = match self.select_working_set() {
                Some(pair) => pair,
                None => {
                    self.reconstruct_gradient();
                    self.active_size = self.l;
                    match self.select_working_set() {
                        Some(pair) => {
                            counter = 1;
                            pair
                        }
                        None => return Ok(iter),
                    }
                }
            };
            iter += 1;
            self.update(i, j);
        }
    }

    fn update_status(&mut self, i: usize) {
        self.status[i] = if self.alpha[i] >= self.c {
            Bound::Upper
        } else if self.alpha[i] <= 0.0 {
            Bound::Lower
        } else {
            Bound::Free
        };
        self.masks.set(i, self.y[i], self.status[i]);
    }

    fn upper(&self, i: usize) -> bool {
        self.status[i] == Bound::Upper
    }

    fn lower(&self, i: usize) -> bool {
        self.status[i] == Bound::Lower
    }

    /// Solves the two-variable subproblem on (i, j) and updates the gradients.
    fn update(&mut self, i: usize, j: usize) {
        self.q.ensure_pair(i, j);
        let (old_i, old_j) = (self.alpha[i], self.alpha[j]);
        let column_i = self.q.column(i);
        let q_ij = f64::from(2.0 * (column_i.sign * column_i.get(j)));
        let (a_i, a_j) = self.pair_step(i, j, q_ij);
        self.alpha[i] = a_i;
        self.alpha[j] = a_j;

        let delta_i = self.alpha[i] - old_i;
        let delta_j = self.alpha[j] - old_j;
        let (was_upper_i, was_upper_j) = (self.upper(i), self.upper(j));
        self.update_status(i);
        self.update_status(j);
        let (column_i, column_j) = (self.q.column(i), self.q.column(j));
        let (active, l) = (self.active_size, self.l);
        let both_move = was_upper_i != self.upper(i) && was_upper_j != self.upper(j);
        // Each piece's signs carry its parts' negations (products by -1, exact).
        let sign = |column: &Column, negated| signed(column.sign, negated);
        let (g, g_bar, c) = (&mut self.g, &mut self.g_bar, self.c);
        if both_move && !self.defer_g_bar {
            // Nearly every step of a large fit moves both columns (25,039 of 26,365 in
            // a trial of 10,000 rows): the gradient and both moves of G_bar read each
            // column once.
            Column::pieces(
                &column_i,
                &column_j,
                0..l,
                |vars, (row_i, neg_i), (row_j, neg_j)| {
                    let (sign_i, sign_j) = (sign(&column_i, neg_i), sign(&column_j, neg_j));
                    let c_i = move_factor(c, sign_i, was_upper_i);
                    let c_j = move_factor(c, sign_j, was_upper_j);
                    let split = active.clamp(vars.start, vars.end) - vars.start;
                    let (g_bar_active, g_bar_rest) = g_bar[vars.clone()].split_at_mut(split);
                    let ((active_i, rest_i), (active_j, rest_j)) =
                        (row_i.split_at(split), row_j.split_at(split));
                    add_pair_step_moving_both(
                        &mut g[vars.start..vars.start + split],
                        g_bar_active,
                        (active_i, sign_i, delta_i, c_i),
                        (active_j, sign_j, delta_j, c_j),
                    );
                    move_two_columns(g_bar_rest, (rest_i, c_i), (rest_j, c_j));
                },
            );
            return;
        }
        Column::pieces(
            &column_i,
            &column_j,
            0..active,
            |vars, (row_i, neg_i), (row_j, neg_j)| {
                add_pair_step(
                    &mut g[vars],
                    (row_i, sign(&column_i, neg_i), delta_i),
                    (row_j, sign(&column_j, neg_j), delta_j),
                );
            },
        );
        for (k, was_upper) in [(i, was_upper_i), (j, was_upper_j)] {
            if was_upper != self.upper(k) {
                if self.defer_g_bar {
                    self.g_bar_pending.push((k, was_upper));
                } else {
                    self.move_g_bar(k, was_upper);
                }
            }
        }
    }

    /// The new (alpha_i, alpha_j): the unconstrained step along the pair, clipped to
    /// the box as the reference clips it. `q_ij` is `2 Q_ij`, widened from f32.
    fn pair_step(&self, i: usize, j: usize, q_ij: f64) -> (f64, f64) {
        let c = self.c;
        let (old_i, old_j) = (self.alpha[i], self.alpha[j]);
        let (qd_i, qd_j) = (self.q.qd(i), self.q.qd(j));
        if self.y[i] != self.y[j] {
            let mut quad_coef = qd_i + qd_j + q_ij;
            if quad_coef <= 0.0 {
                quad_coef = TAU;
            }
            let delta = (-self.g[i] - self.g[j]) / quad_coef;
            let diff = old_i - old_j;
            let (mut a_i, mut a_j) = (old_i + delta, old_j + delta);
            if diff > 0.0 {
                if a_j < 0.0 {
                    a_j = 0.0;
                    a_i = diff;
                }
            } else if a_i < 0.0 {
                a_i = 0.0;
                a_j = -diff;
            }
            // Both bounds are C, so the reference's `diff > C_i - C_j` is `diff > 0`.
            if diff > 0.0 {
                if a_i > c {
                    a_i = c;
                    a_j = c - diff;
                }
            } else if a_j > c {
                a_j = c;
                a_i = c + diff;
            }
            (a_i, a_j)
        } else {
            let mut quad_coef = qd_i + qd_j - q_ij;
            if quad_coef <= 0.0 {
                quad_coef = TAU;
            }
            let delta = (self.g[i] - self.g[j]) / quad_coef;
            let sum = old_i + old_j;
            let (mut a_i, mut a_j) = (old_i - delta, old_j + delta);
            if sum > c {
                if a_i > c {
                    a_i = c;
                    a_j = sum - c;
                }
            } else if a_j < 0.0 {
                a_j = 0.0;
                a_i = sum;
            }
            if sum > c {
                if a_j > c {
                    a_j = c;
                    a_i = sum - c;
                }
            } else if a_i < 0.0 {
                a_i = 0.0;
                a_j = sum;
            }
            (a_i, a_j)
        }
    }

    /// Makes the moves of G_bar put off so far, in order.
    fn settle_g_bar(&mut self) {
        let mut pending = std::mem::take(&mut self.g_bar_pending);
        for &(k, was_upper) in &pending {
            self.move_g_bar(k, was_upper);
        }
        pending.clear();
        self.g_bar_pending = pending;
    }

    /// Takes `C * Q_k` out of G_bar (`k` left its upper bound) or adds it.
    fn move_g_bar(&mut self, k: usize, was_upper: bool) {
        self.q.ensure(k);
        let column = self.q.column(k);
        let (g_bar, c) = (&mut self.g_bar, self.c);
        column.parts(0..self.l, |vars, (row, negated)| {
            let factor = move_factor(c, signed(column.sign, negated), was_upper);
            move_column(&mut g_bar[vars], row, factor);
        });
    }

    fn calculate_rho(&self) -> f64 {
        let mut nr_free = 0usize;
        let (mut ub, mut lb, mut sum_free) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
        for i in 0..self.active_size {
            let y_g = f64::from(self.y[i]) * self.g[i];
            match (self.status[i], self.y[i] == 1) {
                (Bound::Upper, false) | (Bound::Lower, true) => ub = ub.min(y_g),
                (Bound::Upper, true) | (Bound::Lower, false) => lb = lb.max(y_g),
                (Bound::Free, _) => {
                    nr_free += 1;
                    sum_free += y_g;
                }
            }
        }
        if nr_free > 0 {
            sum_free / nr_free as f64
        } else {
            (ub + lb) / 2.0
        }
    }
}
