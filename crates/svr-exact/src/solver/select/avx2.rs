//! The scans of working-set selection on four lanes (AVX2).

use std::arch::x86_64::*;

use super::{merge_lanes, Best, Bound, Cursor, Partner, TAU};

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

    #[target_feature(enable = "avx2")]
    fn merge(&self, start: f64, better: fn(f64, f64) -> bool) -> Best {
        let (mut values, mut indices) = ([0.0; 4], [0.0; 4]);
        // SAFETY: four f64 each.
        unsafe {
            _mm256_storeu_pd(values.as_mut_ptr(), self.value);
            _mm256_storeu_pd(indices.as_mut_ptr(), self.index);
        }
        merge_lanes(&values, &indices, start, better)
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
    // ((sign * 2) * y_i) * sign_i, as on eight lanes.
    let coef_positive = _mm256_set1_pd(-2.0 * p.y_i * f64::from(p.sign_i));
    let coef_negative = _mm256_set1_pd(2.0 * p.y_i * f64::from(p.sign_i));
    let (zero, tau) = (_mm256_setzero_pd(), _mm256_set1_pd(TAU));
    let mut gmax2 = _mm256_set1_pd(f64::NEG_INFINITY);
    let mut lanes = Lanes::new(f64::INFINITY);
    let mut row_i = Cursor::new(p.row_i);
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
        let (row, negated) = row_i.block(t, 4);
        let mut q_ij = _mm256_cvtps_pd(_mm_loadu_ps(row));
        if negated {
            q_ij = _mm256_xor_pd(q_ij, negate);
        }
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
