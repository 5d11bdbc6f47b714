//! Working-set selection: the variable that most violates the optimality conditions,
//! then its partner by the second-order gain, ties going to the last index as in the
//! reference. Both scans run four variables at a time where the CPU has AVX2, each lane
//! keeping the best value and the last index reaching it; the lanes are then merged
//! (the best value, and among lanes holding it the highest index), which is the scan's
//! result in order. Every value is computed by the same operations as the scalar scan.

use super::{Bound, Smo, TAU};

/// A scan's state: the best value so far and the last index reaching it.
type Best = (f64, Option<usize>);

/// What the partner scan reads besides the variables' state.
#[derive(Clone, Copy)]
struct Partner<'a> {
    gmax: f64,
    qd_i: f64,
    y_i: f64,
    sign_i: f32,
    /// Column i of Q, unsigned (entry k is `sign_i * row_i[k]`).
    row_i: &'a [f32],
    qd: &'a [f64],
}

impl Smo<'_> {
    /// The pair (i, j) to optimize next, or `None` when the stopping criterion holds.
    pub(super) fn select_working_set(&mut self) -> Option<(usize, usize)> {
        let active = self.active_size;
        let (y, status, g) = (&self.y[..active], &self.status[..active], &self.g[..active]);
        let (gmax, gmax_idx) = max_violator(y, status, g);
        if let Some(i) = gmax_idx {
            self.q.ensure(i);
        }
        let (qd_i, y_i) = gmax_idx.map_or((0.0, 0.0), |i| (self.q.qd(i), f64::from(self.y[i])));
        // Without an i no gradient difference is positive, so the column is not read.
        let (sign_i, row_i) = gmax_idx.map_or((0.0, &[][..]), |i| self.q.column(i));
        let partner = Partner {
            gmax,
            qd_i,
            y_i,
            sign_i,
            row_i,
            qd: self.q.qd_all(),
        };
        let (gmax2, (_, gmin_idx)) = best_partner(
            &self.y[..active],
            &self.status[..active],
            &self.g[..active],
            partner,
        );
        if gmax + gmax2 < self.eps {
            return None;
        }
        Some((gmax_idx?, gmin_idx?))
    }
}

fn max_violator(y: &[i8], status: &[Bound], g: &[f64]) -> Best {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected.
        return unsafe { x86::max_violator(y, status, g) };
    }
    max_violator_from(y, status, g, 0, (f64::NEG_INFINITY, None))
}

/// The scan over `from..`, continuing from `best`.
fn max_violator_from(y: &[i8], status: &[Bound], g: &[f64], from: usize, best: Best) -> Best {
    let (mut gmax, mut gmax_idx) = best;
    for t in from..g.len() {
        if y[t] == 1 {
            if status[t] != Bound::Upper && -g[t] >= gmax {
                gmax = -g[t];
                gmax_idx = Some(t);
            }
        } else if status[t] != Bound::Lower && g[t] >= gmax {
            gmax = g[t];
            gmax_idx = Some(t);
        }
    }
    (gmax, gmax_idx)
}

/// `gmax2` and (the least objective change, the last index reaching it).
fn best_partner(y: &[i8], status: &[Bound], g: &[f64], p: Partner) -> (f64, Best) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected.
        return unsafe { x86::best_partner(y, status, g, p) };
    }
    best_partner_from(
        y,
        status,
        g,
        p,
        0,
        (f64::NEG_INFINITY, (f64::INFINITY, None)),
    )
}

fn best_partner_from(
    y: &[i8],
    status: &[Bound],
    g: &[f64],
    p: Partner,
    from: usize,
    state: (f64, Best),
) -> (f64, Best) {
    let (mut gmax2, (mut obj_diff_min, mut gmin_idx)) = state;
    for j in from..g.len() {
        let (grad_diff, sign) = if y[j] == 1 {
            if status[j] == Bound::Lower {
                continue;
            }
            if g[j] >= gmax2 {
                gmax2 = g[j];
            }
            (p.gmax + g[j], -1.0)
        } else {
            if status[j] == Bound::Upper {
                continue;
            }
            if -g[j] >= gmax2 {
                gmax2 = -g[j];
            }
            (p.gmax - g[j], 1.0)
        };
        if grad_diff > 0.0 {
            let q_ij = p.sign_i * p.row_i[j];
            let quad_coef = p.qd_i + p.qd[j] + sign * 2.0 * p.y_i * f64::from(q_ij);
            let obj_diff = if quad_coef > 0.0 {
                -(grad_diff * grad_diff) / quad_coef
            } else {
                -(grad_diff * grad_diff) / TAU
            };
            if obj_diff <= obj_diff_min {
                gmin_idx = Some(j);
                obj_diff_min = obj_diff;
            }
        }
    }
    (gmax2, (obj_diff_min, gmin_idx))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Best, Bound, Partner, TAU};

    /// Lanes of best values and their indices (as f64, exact below 2^53; -1 for none).
    struct Lanes {
        value: __m256d,
        index: __m256d,
    }

    impl Lanes {
        #[target_feature(enable = "avx2")]
        fn new(value: f64) -> Lanes {
            Lanes {
                value: _mm256_set1_pd(value),
                index: _mm256_set1_pd(-1.0),
            }
        }

        #[target_feature(enable = "avx2")]
        fn take(&mut self, take: __m256d, value: __m256d, index: __m256d) {
            self.value = _mm256_blendv_pd(self.value, value, take);
            self.index = _mm256_blendv_pd(self.index, index, take);
        }

        /// The in-order scan's result: the best value (`better(a, b)`: a beats b) and,
        /// among the lanes holding it, the highest index.
        #[target_feature(enable = "avx2")]
        fn merge(&self, start: f64, better: fn(f64, f64) -> bool) -> Best {
            let (mut values, mut indices) = ([0.0; 4], [0.0; 4]);
            // SAFETY: four f64 each.
            unsafe {
                _mm256_storeu_pd(values.as_mut_ptr(), self.value);
                _mm256_storeu_pd(indices.as_mut_ptr(), self.index);
            }
            let mut best: Best = (start, None);
            for (value, index) in values.iter().zip(indices) {
                if index < 0.0 {
                    continue;
                }
                let index = index as usize;
                let wins = match best {
                    (_, None) => true,
                    (b, Some(bi)) => better(*value, b) || (*value == b && index > bi),
                };
                if wins {
                    best = (*value, Some(index));
                }
            }
            best
        }
    }

    /// Four labels (+1 / -1) and four bounds, widened to 64-bit lanes.
    #[target_feature(enable = "avx2")]
    unsafe fn load_state(y: &[i8], status: &[Bound], t: usize) -> (__m256i, __m256i, __m256i) {
        let labels = std::ptr::read_unaligned(y.as_ptr().add(t).cast::<i32>());
        let bounds = std::ptr::read_unaligned(status.as_ptr().add(t).cast::<i32>());
        let labels = _mm256_cvtepi8_epi64(_mm_cvtsi32_si128(labels));
        let bounds = _mm256_cvtepi8_epi64(_mm_cvtsi32_si128(bounds));
        let positive = _mm256_cmpeq_epi64(labels, _mm256_set1_epi64x(1));
        let upper = _mm256_cmpeq_epi64(bounds, _mm256_set1_epi64x(Bound::Upper as i64));
        let lower = _mm256_cmpeq_epi64(bounds, _mm256_set1_epi64x(Bound::Lower as i64));
        (positive, upper, lower)
    }

    #[target_feature(enable = "avx2")]
    fn index_lanes(t: usize) -> __m256d {
        let t = t as f64;
        _mm256_setr_pd(t, t + 1.0, t + 2.0, t + 3.0)
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn max_violator(y: &[i8], status: &[Bound], g: &[f64]) -> Best {
        let whole = g.len() / 4 * 4;
        let negate = _mm256_set1_pd(-0.0);
        let mut lanes = Lanes::new(f64::NEG_INFINITY);
        for t in (0..whole).step_by(4) {
            let (positive, upper, lower) = load_state(y, status, t);
            let grad = _mm256_loadu_pd(g.as_ptr().add(t));
            // Label +1: -G unless at the upper bound; label -1: G unless at the lower.
            let value = _mm256_blendv_pd(
                grad,
                _mm256_xor_pd(grad, negate),
                _mm256_castsi256_pd(positive),
            );
            let blocked = _mm256_castsi256_pd(_mm256_blendv_epi8(lower, upper, positive));
            let take = _mm256_andnot_pd(blocked, _mm256_cmp_pd::<_CMP_GE_OQ>(value, lanes.value));
            lanes.take(take, value, index_lanes(t));
        }
        let best = lanes.merge(f64::NEG_INFINITY, |a, b| a > b);
        super::max_violator_from(y, status, g, whole, best)
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn best_partner(y: &[i8], status: &[Bound], g: &[f64], p: Partner) -> (f64, Best) {
        let whole = g.len() / 4 * 4;
        let negate = _mm256_set1_pd(-0.0);
        let gmax = _mm256_set1_pd(p.gmax);
        let qd_i = _mm256_set1_pd(p.qd_i);
        let sign_i = _mm_set1_ps(p.sign_i);
        // (sign * 2) * y_i, sign being -1 for label +1 and +1 for label -1.
        let coef_positive = _mm256_set1_pd(-2.0 * p.y_i);
        let coef_negative = _mm256_set1_pd(2.0 * p.y_i);
        let (zero, tau) = (_mm256_setzero_pd(), _mm256_set1_pd(TAU));
        let mut gmax2 = _mm256_set1_pd(f64::NEG_INFINITY);
        let mut lanes = Lanes::new(f64::INFINITY);
        for t in (0..whole).step_by(4) {
            let (positive, upper, lower) = load_state(y, status, t);
            let positive_pd = _mm256_castsi256_pd(positive);
            let grad = _mm256_loadu_pd(g.as_ptr().add(t));
            // Label +1: G unless at the lower bound; label -1: -G unless at the upper.
            let value = _mm256_blendv_pd(_mm256_xor_pd(grad, negate), grad, positive_pd);
            let blocked = _mm256_castsi256_pd(_mm256_blendv_epi8(upper, lower, positive));
            let raise = _mm256_andnot_pd(blocked, _mm256_cmp_pd::<_CMP_GE_OQ>(value, gmax2));
            gmax2 = _mm256_blendv_pd(gmax2, value, raise);

            let grad_diff = _mm256_add_pd(gmax, value);
            let candidate = _mm256_andnot_pd(blocked, _mm256_cmp_pd::<_CMP_GT_OQ>(grad_diff, zero));
            if _mm256_movemask_pd(candidate) == 0 {
                continue;
            }
            let q_ij = _mm256_cvtps_pd(_mm_mul_ps(sign_i, _mm_loadu_ps(p.row_i.as_ptr().add(t))));
            let coef = _mm256_blendv_pd(coef_negative, coef_positive, positive_pd);
            let quad_coef = _mm256_add_pd(
                _mm256_add_pd(qd_i, _mm256_loadu_pd(p.qd.as_ptr().add(t))),
                _mm256_mul_pd(coef, q_ij),
            );
            let denominator =
                _mm256_blendv_pd(tau, quad_coef, _mm256_cmp_pd::<_CMP_GT_OQ>(quad_coef, zero));
            let gain = _mm256_xor_pd(_mm256_mul_pd(grad_diff, grad_diff), negate);
            let obj_diff = _mm256_div_pd(gain, denominator);
            let take = _mm256_and_pd(
                candidate,
                _mm256_cmp_pd::<_CMP_LE_OQ>(obj_diff, lanes.value),
            );
            lanes.take(take, obj_diff, index_lanes(t));
        }
        let mut maxima = [0.0; 4];
        _mm256_storeu_pd(maxima.as_mut_ptr(), gmax2);
        // Only the value of gmax2 is used, so the order its lanes merge in is free.
        let gmax2 = maxima.into_iter().fold(f64::NEG_INFINITY, f64::max);
        let best = lanes.merge(f64::INFINITY, |a, b| a < b);
        super::best_partner_from(y, status, g, p, whole, (gmax2, best))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random solver states with many ties, scanned both ways.
    #[test]
    fn the_vector_scans_choose_what_the_scalar_scans_choose() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        for round in 0..3000 {
            let n = 1 + next(40) as usize;
            let y: Vec<i8> = (0..n).map(|_| if next(2) == 0 { 1 } else { -1 }).collect();
            let status: Vec<Bound> = (0..n)
                .map(|_| [Bound::Lower, Bound::Upper, Bound::Free][next(3) as usize])
                .collect();
            // Few distinct values, so that ties are common; some zeros of both signs.
            let pick = |k: u64| [-1.0, -0.5, 0.0, -0.0, 0.25, 0.5, 1.0, 2.0][k as usize];
            let g: Vec<f64> = (0..n).map(|_| pick(next(8))).collect();
            let qd: Vec<f64> = (0..n).map(|_| [1.0, 0.5, 0.0][next(3) as usize]).collect();
            let row_i: Vec<f32> = (0..n)
                .map(|_| [0.5, -0.5, 1.0, 0.0][next(4) as usize])
                .collect();
            let first = max_violator(&y, &status, &g);
            assert_eq!(
                first,
                max_violator_from(&y, &status, &g, 0, (f64::NEG_INFINITY, None)),
                "round {round}"
            );
            let partner = Partner {
                gmax: if round % 7 == 0 {
                    f64::NEG_INFINITY
                } else {
                    first.0
                },
                qd_i: qd[0],
                y_i: f64::from(y[0]),
                sign_i: f32::from(y[0]),
                row_i: &row_i,
                qd: &qd,
            };
            let fast = best_partner(&y, &status, &g, partner);
            let slow = best_partner_from(
                &y,
                &status,
                &g,
                partner,
                0,
                (f64::NEG_INFINITY, (f64::INFINITY, None)),
            );
            assert_eq!(fast.0, slow.0, "round {round}");
            assert_eq!(fast.1 .1, slow.1 .1, "round {round}");
            assert_eq!(fast.1 .0.to_bits(), slow.1 .0.to_bits(), "round {round}");
        }
    }
}
