//! The scans of working-set selection on eight lanes (AVX-512F, BW, VL and DQ), the
//! same steps as the four-lane scans with masks in place of blends. Each block's masks
//! are loaded as the solver keeps them (`ScanMasks`), straight into mask
//! registers.

use std::arch::x86_64::*;

use super::{Best, Bound, Cursor, Partner, TAU};

/// Lanes of best values and their indices (-1 for none). The indices are integers:
/// advanced as f64, a block's indices waited on the block before's addition (four
/// cycles), which bounded the violator scan.
struct Lanes {
    value: __m512d,
    index: __m512i,
}

impl Lanes {
    #[target_feature(enable = "avx512f")]
    fn new(value: f64) -> Lanes {
        Lanes {
            value: _mm512_set1_pd(value),
            index: _mm512_set1_epi64(-1),
        }
    }

    #[target_feature(enable = "avx512f")]
    fn take(&mut self, take: __mmask8, value: __m512d, index: __m512i) {
        self.value = _mm512_mask_blend_pd(take, self.value, value);
        self.index = _mm512_mask_blend_epi64(take, self.index, index);
    }

    /// Lane by lane, the better of two sets' values, and of equal ones the higher
    /// index: two sets of lanes that scanned alternate blocks, as one.
    #[target_feature(enable = "avx512f")]
    fn combine<const MAX: bool>(&self, other: &Lanes) -> Lanes {
        let better = if MAX {
            _mm512_cmp_pd_mask::<_CMP_GT_OQ>(other.value, self.value)
        } else {
            _mm512_cmp_pd_mask::<_CMP_LT_OQ>(other.value, self.value)
        };
        let later = _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(other.value, self.value)
            & _mm512_cmpgt_epi64_mask(other.index, self.index);
        let taken = _mm512_cmpge_epi64_mask(other.index, _mm512_setzero_si512());
        let mut lanes = Lanes {
            value: self.value,
            index: self.index,
        };
        lanes.take((better | later) & taken, other.value, other.index);
        lanes
    }

    /// The in-order scan's result (as [`super::merge_lanes`] gives it) without leaving the
    /// vector registers: the best value over the lanes that took one (the largest,
    /// or with `MAX` false the least), then the highest index among the lanes holding
    /// a value equal to it, with that lane's value. Merging the lanes one by one in
    /// branches was a third of the violator scan's time.
    #[target_feature(enable = "avx512f")]
    fn merge<const MAX: bool>(&self, start: f64) -> Best {
        let taken = _mm512_cmpge_epi64_mask(self.index, _mm512_setzero_si512());
        if taken == 0 {
            return (start, None);
        }
        let best = if MAX {
            _mm512_mask_reduce_max_pd(taken, self.value)
        } else {
            _mm512_mask_reduce_min_pd(taken, self.value)
        };
        let ties = taken & _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(self.value, _mm512_set1_pd(best));
        let index = _mm512_mask_reduce_max_epi64(ties, self.index);
        let lane = ties & _mm512_cmpeq_epi64_mask(self.index, _mm512_set1_epi64(index));
        let value = _mm512_cvtsd_f64(_mm512_maskz_compress_pd(lane, self.value));
        (value, Some(index as usize))
    }
}

/// The masks of block `b` (variables `8 b..8 b + 8`): label +1, in I_up, in I_low.
///
/// # Safety
/// `masks` must hold the block's three bytes (`3 b + 3` bytes at least).
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn block_masks(masks: &[u8], b: usize) -> (__mmask8, __mmask8, __mmask8) {
    let at = masks.as_ptr().add(3 * b);
    (*at, *at.add(1), *at.add(2))
}

/// Every lane of a block.
const ALL: __mmask8 = 0xff;

/// The first `count` lanes (fewer than eight).
fn first_lanes(count: usize) -> __mmask8 {
    (1 << count) - 1
}

/// Eight values of `values` from `t`, the lanes outside `within` zero: a masked load
/// reads no memory in those lanes, so the last block of a scan, past the end of
/// `values`, takes the same steps as the others.
///
/// # Safety
/// The lanes in `within` must lie in `values`.
#[target_feature(enable = "avx512f")]
unsafe fn load(values: &[f64], t: usize, within: __mmask8) -> __m512d {
    if within == ALL {
        _mm512_loadu_pd(values.as_ptr().add(t))
    } else {
        _mm512_maskz_loadu_pd(within, values.as_ptr().add(t))
    }
}

#[target_feature(enable = "avx512f")]
fn index_lanes(t: usize) -> __m512i {
    let t = t as i64;
    _mm512_setr_epi64(t, t + 1, t + 2, t + 3, t + 4, t + 5, t + 6, t + 7)
}

/// `x` negated in `lanes` (the sign flipped, `-x` to the bit), one masked instruction.
#[target_feature(enable = "avx512f,avx512dq")]
fn negate_where(lanes: __mmask8, x: __m512d) -> __m512d {
    _mm512_mask_xor_pd(x, lanes, x, _mm512_set1_pd(-0.0))
}

/// # Safety
/// The CPU must have AVX-512F, BW, VL and DQ.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub unsafe fn max_violator(y: &[i8], status: &[Bound], g: &[f64], masks: &[u8]) -> Best {
    let (len, whole) = (g.len(), g.len() / 8 * 8);
    assert!(masks.len() >= 3 * len.div_ceil(8));
    // Two sets of lanes taking alternate blocks, so that a block's comparison waits on
    // its set's block before last rather than on the block before.
    let (mut first, mut second) = (Lanes::new(f64::NEG_INFINITY), Lanes::new(f64::NEG_INFINITY));
    // `within`: the block's lanes that hold variables (all but in the last block).
    let step = |lanes: &mut Lanes, t: usize, index: __m512i, within: __mmask8| {
        let (positive, up, _) = block_masks(masks, t / 8);
        let up = up & within;
        let grad = load(g, t, within);
        // Label +1: -G; label -1: G; over I_up.
        let value = negate_where(positive, grad);
        let take = up & _mm512_cmp_pd_mask::<_CMP_GE_OQ>(value, lanes.value);
        lanes.take(take, value, index);
    };
    let (mut index, eight) = (index_lanes(0), _mm512_set1_epi64(8));
    let pairs = whole / 16 * 16;
    for t in (0..pairs).step_by(16) {
        step(&mut first, t, index, ALL);
        index = _mm512_add_epi64(index, eight);
        step(&mut second, t + 8, index, ALL);
        index = _mm512_add_epi64(index, eight);
    }
    if pairs < whole {
        step(&mut first, pairs, index, ALL);
        index = _mm512_add_epi64(index, eight);
    }
    if whole < len {
        step(&mut second, whole, index, first_lanes(len - whole));
    }
    let best = first
        .combine::<true>(&second)
        .merge::<true>(f64::NEG_INFINITY);
    super::max_violator_from(y, status, g, len, best)
}

/// # Safety
/// The CPU must have AVX-512F, BW, VL and DQ.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub unsafe fn best_partner(
    y: &[i8],
    status: &[Bound],
    g: &[f64],
    p: Partner,
    masks: &[u8],
) -> (f64, Best) {
    // A kept column, one part as stored, is read straight: following parts block by
    // block cost the long fits' scans (kept columns all) 7 %.
    match p.row_i.0 {
        [] | [(0, _, false)] => best_partner_in::<false>(y, status, g, p, masks),
        _ => best_partner_in::<true>(y, status, g, p, masks),
    }
}

/// [`best_partner`], row i read through its parts (`PARTS`) or as one slice.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
unsafe fn best_partner_in<const PARTS: bool>(
    y: &[i8],
    status: &[Bound],
    g: &[f64],
    p: Partner,
    masks: &[u8],
) -> (f64, Best) {
    let (len, whole) = (g.len(), g.len() / 8 * 8);
    assert!(masks.len() >= 3 * len.div_ceil(8));
    // Without a violator (gmax is -inf) no block holds a candidate, and the column,
    // then empty, is not read.
    assert!(p.qd.len() >= len);
    assert!(PARTS || p.row_i.0.first().is_none_or(|part| part.1.len() >= len));
    let mut cursor = Cursor::new(p.row_i);
    let mut row_i = |t: usize, count: usize| {
        if PARTS {
            cursor.block(t, count)
        } else {
            // One part from variable 0: its values begin at the cursor's base.
            (cursor.base.wrapping_add(t), false)
        }
    };
    let gmax = _mm512_set1_pd(p.gmax);
    let qd_i = _mm512_set1_pd(p.qd_i);
    // ((sign * 2) * y_i) * sign_i, sign being -1 for label +1 and +1 for label -1: the
    // reference multiplies (sign * 2) * y_i by Q_ij = sign_i * row_i[j], and with both
    // signs +-1 the product is the same either way round, to the bit. It is an f32 times
    // +-2, exact, so one fused multiply-add adds it to Q_ii + Q_jj as the reference's
    // sum does.
    let coef_positive = _mm512_set1_pd(-2.0 * p.y_i * f64::from(p.sign_i));
    let coef_negative = _mm512_set1_pd(2.0 * p.y_i * f64::from(p.sign_i));
    let (zero, tau) = (_mm512_setzero_pd(), _mm512_set1_pd(TAU));
    // The lanes keep `(b * b) / a`, which is the reference's `-(b * b) / a` negated to
    // the bit (division rounds the same either sign), and take the largest: one
    // negation per scan instead of one per block.
    // Two sets of lanes (and of least values) taking alternate blocks, as in the violator
    // scan.
    // `row`: where the block's values of row i lie, and whether to negate them.
    let step = |lanes: &mut Lanes,
                least: &mut __m512d,
                t: usize,
                index: __m512i,
                within,
                row: (*const f32, bool)| {
        let (positive, _, low) = block_masks(masks, t / 8);
        let low = low & within;
        let grad = load(g, t, within);
        // The reference's values over I_low (label +1: G; label -1: -G) negated, so
        // that the violator scan's mask serves as it is: gmax + value is gmax - negated
        // to the bit, and gmax2, the largest value, is minus the least of these (of two
        // zeros either, as only gmax + gmax2 < eps, eps positive, reads it).
        let negated = negate_where(positive, grad);
        *least = _mm512_mask_min_pd(*least, low, negated, *least);

        let grad_diff = _mm512_sub_pd(gmax, negated);
        let candidate = low & _mm512_cmp_pd_mask::<_CMP_GT_OQ>(grad_diff, zero);
        if candidate == 0 {
            return;
        }
        let (row, negated) = row;
        let row = if within == ALL {
            _mm256_loadu_ps(row)
        } else {
            _mm256_maskz_loadu_ps(within, row)
        };
        let q_ij = negate_where(if negated { ALL } else { 0 }, _mm512_cvtps_pd(row));
        let coef = _mm512_mask_blend_pd(positive, coef_negative, coef_positive);
        let quad_coef = _mm512_fmadd_pd(coef, q_ij, _mm512_add_pd(qd_i, load(p.qd, t, within)));
        let curved = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(quad_coef, zero);
        let denominator = _mm512_mask_blend_pd(curved, tau, quad_coef);
        let gain = _mm512_mul_pd(grad_diff, grad_diff);
        let quotient = _mm512_div_pd(gain, denominator);
        let take = candidate & _mm512_cmp_pd_mask::<_CMP_GE_OQ>(quotient, lanes.value);
        lanes.take(take, quotient, index);
    };
    let (mut first, mut second) = (Lanes::new(f64::NEG_INFINITY), Lanes::new(f64::NEG_INFINITY));
    let mut least = [_mm512_set1_pd(f64::INFINITY); 2];
    let (mut index, eight) = (index_lanes(0), _mm512_set1_epi64(8));
    let pairs = whole / 16 * 16;
    for t in (0..pairs).step_by(16) {
        let [one, two] = &mut least;
        step(&mut first, one, t, index, ALL, row_i(t, 8));
        index = _mm512_add_epi64(index, eight);
        step(&mut second, two, t + 8, index, ALL, row_i(t + 8, 8));
        index = _mm512_add_epi64(index, eight);
    }
    if pairs < whole {
        let row = row_i(pairs, 8);
        step(&mut first, &mut least[0], pairs, index, ALL, row);
        index = _mm512_add_epi64(index, eight);
    }
    if whole < len {
        let (within, row) = (first_lanes(len - whole), row_i(whole, len - whole));
        step(&mut second, &mut least[1], whole, index, within, row);
    }
    // Only the value of gmax2 is used, so the order its lanes merge in is free.
    let gmax2 = -_mm512_reduce_min_pd(_mm512_min_pd(least[0], least[1]));
    let (quotient, index) = first
        .combine::<true>(&second)
        .merge::<true>(f64::NEG_INFINITY);
    super::best_partner_from(y, status, g, p, len, (gmax2, (-quotient, index)))
}
