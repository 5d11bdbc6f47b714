//! Shrinking: variables bound at 0 or C whose gradients say they will stay there are
//! set aside, and the gradient is rebuilt for them before the solver may stop, exactly
//! as the reference does (its counter, its unshrink at 10 x tolerance, and its choice
//! between two orders of summing when rebuilding).

use super::{Bound, Smo};
use crate::kernel::signed;

impl Smo<'_> {
    pub(super) fn reconstruct_gradient(&mut self) {
        if self.active_size == self.l {
            return;
        }
        self.settle_g_bar();
        let (active, l) = (self.active_size, self.l);
        for j in active..l {
            self.g[j] = self.g_bar[j] + self.p[j];
        }
        let nr_free = (0..active)
            .filter(|&j| self.status[j] == Bound::Free)
            .count();
        // The reference picks whichever loop touches fewer kernel entries; the two
        // sum in different orders, so the choice is kept.
        if nr_free * l > 2 * active * (l - active) {
            for i in active..l {
                self.q.ensure(i);
                let column = self.q.column(i);
                let (g, status, alpha) = (&mut self.g, &self.status, &self.alpha);
                column.parts(0..active, |vars, (row, negated)| {
                    let sign = signed(column.sign, negated);
                    for (j, q_j) in vars.zip(row) {
                        if status[j] == Bound::Free {
                            g[i] += alpha[j] * f64::from(sign * q_j);
                        }
                    }
                });
            }
        } else {
            for i in 0..active {
                if self.status[i] == Bound::Free {
                    self.q.ensure(i);
                    let column = self.q.column(i);
                    let alpha_i = self.alpha[i];
                    let g = &mut self.g;
                    column.parts(active..l, |vars, (row, negated)| {
                        let sign = signed(column.sign, negated);
                        for (g, q_j) in g[vars].iter_mut().zip(row) {
                            *g += alpha_i * f64::from(sign * q_j);
                        }
                    });
                }
            }
        }
    }

    fn be_shrunk(&self, i: usize, gmax1: f64, gmax2: f64) -> bool {
        if self.upper(i) {
            if self.y[i] == 1 {
                -self.g[i] > gmax1
            } else {
                -self.g[i] > gmax2
            }
        } else if self.lower(i) {
            if self.y[i] == 1 {
                self.g[i] > gmax2
            } else {
                self.g[i] > gmax1
            }
        } else {
            false
        }
    }

    pub(super) fn do_shrinking(&mut self) {
        // Before any swap moves the variables G_bar's pending moves name.
        self.settle_g_bar();
        let mut gmax1 = f64::NEG_INFINITY;
        let mut gmax2 = f64::NEG_INFINITY;
        for i in 0..self.active_size {
            let g = self.g[i];
            let (up, low) = if self.y[i] == 1 { (-g, g) } else { (g, -g) };
            // For y = +1: not upper feeds Gmax1 with -G, not lower feeds Gmax2 with G;
            // for y = -1 the roles of the bounds swap.
            let (feeds_1, feeds_2) = if self.y[i] == 1 {
                (!self.upper(i), !self.lower(i))
            } else {
                (!self.lower(i), !self.upper(i))
            };
            if feeds_1 && up >= gmax1 {
                gmax1 = up;
            }
            if feeds_2 && low >= gmax2 {
                gmax2 = low;
            }
        }
        if !self.unshrink && gmax1 + gmax2 <= self.eps * 10.0 {
            self.unshrink = true;
            self.reconstruct_gradient();
            self.active_size = self.l;
        }
        let mut i = 0;
        while i < self.active_size {
            if self.be_shrunk(i, gmax1, gmax2) {
                self.active_size -= 1;
                while self.active_size > i {
                    if !self.be_shrunk(self.active_size, gmax1, gmax2) {
                        self.swap_index(i, self.active_size);
                        break;
                    }
                    self.active_size -= 1;
                }
            }
            i += 1;
        }
    }

    fn swap_index(&mut self, i: usize, j: usize) {
        self.q.swap(i, j);
        self.y.swap(i, j);
        self.g.swap(i, j);
        self.status.swap(i, j);
        self.masks.set(i, self.y[i], self.status[i]);
        self.masks.set(j, self.y[j], self.status[j]);
        self.alpha.swap(i, j);
        self.p.swap(i, j);
        self.active_set.swap(i, j);
        self.g_bar.swap(i, j);
    }
}
