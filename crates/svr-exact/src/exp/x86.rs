//! The vector paths of [`super`]: glibc's `exp` on eight lanes (AVX-512F) or four (AVX2
//! with FMA), its operations in its order, and the one-pass kernel rows built on them.

use std::arch::x86_64::*;

use crate::exp_table::TABLE;

/// 128 / ln 2, and ln 2 / 128 split in two (negated), as glibc's exp uses them.
const INV_LN2_N: f64 = f64::from_bits(0x4067_1547_652b_82fe);
const NEG_LN2_HI_N: f64 = f64::from_bits(0xbf76_2e42_fefa_0000);
const NEG_LN2_LO_N: f64 = f64::from_bits(0xbd0c_f79a_bc9e_3b3a);
/// 1.5 * 2^52: adding it rounds to an integer held in the low bits.
const SHIFT: f64 = f64::from_bits(0x4338_0000_0000_0000);
/// The polynomial's coefficients of r^2 to r^5.
const C2: f64 = f64::from_bits(0x3fdf_ffff_ffff_fdbd);
const C3: f64 = f64::from_bits(0x3fc5_5555_5555_543c);
const C4: f64 = f64::from_bits(0x3fa5_5555_cf17_2b91);
const C5: f64 = f64::from_bits(0x3f81_1111_67a4_d017);
/// Biased exponents of 2^-54 and 512: the polynomial path takes |x| in between.
const TOP_TINY: i64 = 0x3c9;
const TOP_LARGE: i64 = 0x408;

/// Replaces the results of the lanes set in `outside` with the C library's `exp`
/// of their arguments `args`.
fn redo_outside(chunk: &mut [f64], args: &[f64], outside: u32) {
    for (lane, (out, arg)) in chunk.iter_mut().zip(args).enumerate() {
        if outside & (1 << lane) != 0 {
            *out = super::exp(*arg);
        }
    }
}

/// # Safety
/// The CPU must have AVX-512F and FMA.
pub unsafe fn exp_in_place_avx512(values: &mut [f64]) {
    if table_by_gathers() {
        exp_in_place_avx512_reading::<true>(values);
    } else {
        exp_in_place_avx512_reading::<false>(values);
    }
}

/// Whether eight lanes read glibc's table by two vector gathers rather than one
/// 16-byte load per lane: on Intel's CPUs. Per value, on an Intel Xeon (AVX-512)
/// 1.09 ns with the loads and 0.90 with gathers; on an AMD EPYC the loads took 1.02
/// ns and gathers 1.40.
fn table_by_gathers() -> bool {
    static GATHERS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GATHERS.get_or_init(|| {
        let id = __cpuid(0);
        let vendor: Vec<u8> = [id.ebx, id.edx, id.ecx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        vendor == b"GenuineIntel"
    })
}

/// [`exp_in_place_avx512`], the table read by gathers (`GATHER`) or by loads.
///
/// # Safety
/// The CPU must have AVX-512F and FMA.
#[target_feature(enable = "avx512f,fma")]
pub unsafe fn exp_in_place_avx512_reading<const GATHER: bool>(values: &mut [f64]) {
    let mut chunks = values.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let x = _mm512_loadu_pd(chunk.as_ptr());
        let (y, outside) = exp8::<GATHER>(x);
        _mm512_storeu_pd(chunk.as_mut_ptr(), y);
        if outside != 0 {
            let mut args = [0.0; 8];
            _mm512_storeu_pd(args.as_mut_ptr(), x);
            redo_outside(chunk, &args, outside as u32);
        }
    }
    super::exp_scalar(chunks.into_remainder());
}

/// 2^(j/16), j = 0..16, each rounded to f64.
const POW2_SIXTEENTHS: [u64; 16] = [
    0x3ff0_0000_0000_0000,
    0x3ff0_b558_6cf9_890f,
    0x3ff1_72b8_3c7d_517b,
    0x3ff2_387a_6e75_6238,
    0x3ff3_06fe_0a31_b715,
    0x3ff3_dea6_4c12_3422,
    0x3ff4_bfda_d536_2a27,
    0x3ff5_ab07_dd48_5429,
    0x3ff6_a09e_667f_3bcd,
    0x3ff7_a114_73eb_0187,
    0x3ff8_ace5_422a_a0db,
    0x3ff9_c491_82a3_f090,
    0x3ffa_e89f_995a_d3ad,
    0x3ffc_199b_dd85_529c,
    0x3ffd_5818_dcfb_a487,
    0x3ffe_a4af_a2a4_90da,
];
/// 16 / ln 2, and ln 2 / 16 negated: one part is enough for `|x| <= 110`, where
/// `k ln2/16` is off by at most 2^-47.
const INV_LN2_16: f64 = f64::from_bits(0x4037_1547_652b_82fe);
const NEG_LN2_16: f64 = f64::from_bits(0xbfa6_2e42_fefa_39ef);
/// Arguments [`exp8_approx`] is used for: above the ceiling `exp` is past f32's range,
/// and from the floor down every result rounds to an f32 zero (`exp(-104) < 2^-150`).
/// Below -87 results are f32 subnormals, whose halfway points lie elsewhere in the
/// bits; those down to -104 are computed as the C library does.
const CEILING: f64 = 80.0;
const FLOOR: f64 = -110.0;
const LEAST_NORMAL: f64 = -87.0;
const ZERO_BELOW: f64 = -104.0;

/// # Safety
/// The CPU must have AVX-512F and FMA; `d` and `out` of one length.
///
/// A kernel row keeps `exp` rounded to f32, which needs far fewer bits than the C
/// library's f64 result. [`exp8_approx`] is within 2^-42 of `exp`, and the C library
/// within 0.51 of its last place (2^-52), so the two are within 2^-40 of each other.
/// Where no f32 halfway point lies within 2^-40 of the approximation (in f64 bits: the
/// 29 bits below f32's last place are farther than 2^13 from their halfway value,
/// 2^28), both round to the same f32. The other blocks, about one in 4,000, and those
/// with an argument outside `LEAST_NORMAL..=CEILING` (but for certain zeros) or not a
/// number are computed as the C library computes them.
#[target_feature(enable = "avx512f,fma")]
pub unsafe fn exp_scaled_f32_avx512(d: &[f64], factor: f64, out: &mut [f32]) {
    let whole = d.len() / 8 * 8;
    let consts = ScaledF32::new(factor);
    for k in (0..whole).step_by(8) {
        let rounded = consts.exp8(_mm512_loadu_pd(d.as_ptr().add(k)));
        _mm256_storeu_ps(out.as_mut_ptr().add(k), rounded);
    }
    super::exp_scaled_f32_scalar(&d[whole..], factor, &mut out[whole..]);
}

/// What [`exp_scaled_f32_avx512`] keeps in registers.
#[derive(Clone, Copy)]
struct ScaledF32 {
    factor: __m512d,
    low: __m512d,
    high: __m512d,
}

impl ScaledF32 {
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn new(factor: f64) -> ScaledF32 {
        ScaledF32 {
            factor: _mm512_set1_pd(factor),
            low: _mm512_loadu_pd(POW2_SIXTEENTHS.as_ptr().cast()),
            high: _mm512_loadu_pd(POW2_SIXTEENTHS.as_ptr().add(8).cast()),
        }
    }

    /// `exp(factor * d)` rounded to f32 on eight lanes.
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn exp8(self, d: __m512d) -> __m256 {
        let x = _mm512_mul_pd(self.factor, d);
        let y = exp8_approx(_mm512_max_pd(x, _mm512_set1_pd(FLOOR)), self.low, self.high);
        let below_f32 = _mm512_and_si512(
            _mm512_add_epi64(
                _mm512_castpd_si512(y),
                _mm512_set1_epi64((1 << 13) - (1 << 28)),
            ),
            _mm512_set1_epi64(0x1fff_ffff),
        );
        let near_halfway = _mm512_cmplt_epu64_mask(below_f32, _mm512_set1_epi64(1 << 14));
        let subnormal = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(x, _mm512_set1_pd(LEAST_NORMAL))
            & _mm512_cmp_pd_mask::<_CMP_GT_OQ>(x, _mm512_set1_pd(ZERO_BELOW));
        let other = _mm512_cmp_pd_mask::<_CMP_NLE_UQ>(x, _mm512_set1_pd(CEILING));
        if (near_halfway | subnormal | other) == 0 {
            _mm512_cvtpd_ps(y)
        } else {
            exact8_f32(x)
        }
    }
}

/// `exp(x)` rounded to f32 on eight lanes as the C library computes it: the rare
/// blocks [`ScaledF32::exp8`] cannot round from its approximation.
#[cold]
#[target_feature(enable = "avx512f,fma")]
unsafe fn exact8_f32(x: __m512d) -> __m256 {
    let (mut y, outside) = exp8::<false>(x);
    if outside != 0 {
        y = redo_outside8(x, y, outside);
    }
    _mm512_cvtpd_ps(y)
}

/// A kernel row computed in one pass, `out[j] = exp(factor * d_j)` as f32 with `d_j =
/// (sq_x + squares[j]) - 2 x.x_j` for the rows of `blocks` (eight rows each, feature by
/// feature), the same bits as expanding the distances and then taking
/// [`exp_scaled_f32_avx512`] of them: each group of 32 goes through `exp` as soon as its
/// dot products are done, so that the dot products' reads from the second-level cache
/// overlap the arithmetic of `exp`. `out` may end inside the last block, whose padding
/// rows are computed and not stored.
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `blocks` must hold `x.len()` features of
/// `squares.len()` rows, a whole number of blocks covering `out`.
#[target_feature(enable = "avx512f,fma")]
pub unsafe fn kernel_row_avx512(
    out: &mut [f32],
    x: &[f64],
    blocks: &[f64],
    squares: &[f64],
    sq_x: f64,
    factor: f64,
) {
    let dim = x.len();
    assert!(squares.len().is_multiple_of(8) && out.len() <= squares.len());
    assert!(squares.len() - out.len() < 8 && blocks.len() == squares.len() * dim);
    let consts = ScaledF32::new(factor);
    let sq_x = _mm512_set1_pd(sq_x);
    // The squared distance from its dot product, as the reference expands it.
    let expand = |j: usize, dot: __m512d| {
        let sum = _mm512_add_pd(sq_x, _mm512_loadu_pd(squares.as_ptr().add(j)));
        _mm512_sub_pd(sum, _mm512_add_pd(dot, dot))
    };
    let len = out.len();
    let mut store = |j: usize, value: __m256| {
        if j + 8 <= len {
            _mm256_storeu_ps(out.as_mut_ptr().add(j), value);
        } else {
            let mut last = [0.0f32; 8];
            _mm256_storeu_ps(last.as_mut_ptr(), value);
            out[j..].copy_from_slice(&last[..len - j]);
        }
    };
    let rows = squares.len();
    let mut j = 0;
    while j + 32 <= rows {
        let group = blocks.as_ptr().add(j * dim);
        let mut acc = [_mm512_setzero_pd(); 4];
        for (k, x_k) in x.iter().enumerate() {
            let x_k = _mm512_set1_pd(*x_k);
            for (c, acc) in acc.iter_mut().enumerate() {
                let column = _mm512_loadu_pd(group.add((c * dim + k) * 8));
                *acc = _mm512_fmadd_pd(x_k, column, *acc);
            }
        }
        for (c, acc) in acc.into_iter().enumerate() {
            store(j + 8 * c, consts.exp8(expand(j + 8 * c, acc)));
        }
        j += 32;
    }
    while j < rows {
        let block = blocks.as_ptr().add(j * dim);
        let mut acc = _mm512_setzero_pd();
        for (k, x_k) in x.iter().enumerate() {
            acc = _mm512_fmadd_pd(_mm512_set1_pd(*x_k), _mm512_loadu_pd(block.add(k * 8)), acc);
        }
        store(j, consts.exp8(expand(j, acc)));
        j += 8;
    }
}

/// A block of eight predictions in one pass: `sums[b] += coef[s] * exp(factor *
/// sum_k (x_bk - t_sk)^2)` over the support vectors s in order (`support` row-major,
/// `rows_t` feature-major: entry `k * 8 + b`), each sum of squares a chain of fused
/// multiply-adds in feature order and `exp` the C library's, the same bits as
/// computing every distance, then every `exp`, then the sums. Each support vector's
/// eight values are summed as soon as they are computed, rather than written out for
/// the next pass to read.
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `rows_t` must hold `8 * dim` values and
/// `support` `dim` for each of `coef`'s entries.
#[target_feature(enable = "avx512f,fma")]
pub unsafe fn predict_block_avx512(
    sums: &mut [f64; 8],
    rows_t: &[f64],
    support: &[f64],
    coef: &[f64],
    dim: usize,
    factor: f64,
) {
    assert!(rows_t.len() == 8 * dim && support.len() == coef.len() * dim);
    let gather = table_by_gathers();
    let mut total = _mm512_loadu_pd(sums.as_ptr());
    for (t, coef) in support.chunks_exact(dim.max(1)).zip(coef) {
        let y = prediction_column(rows_t, t, factor, gather);
        total = _mm512_add_pd(total, _mm512_mul_pd(_mm512_set1_pd(*coef), y));
    }
    _mm512_storeu_pd(sums.as_mut_ptr(), total);
}

/// `exp(factor * sum_k (x_bk - t_k)^2)` for the eight rows of `rows_t` (feature-major)
/// and the row `t`, the sum a chain of fused multiply-adds in feature order and `exp`
/// the C library's.
/// `gather` picks how `exp` reads its table ([`table_by_gathers`]).
#[inline]
#[target_feature(enable = "avx512f,fma")]
unsafe fn prediction_column(rows_t: &[f64], t: &[f64], factor: f64, gather: bool) -> __m512d {
    let mut acc = _mm512_setzero_pd();
    for (k, t_k) in t.iter().enumerate() {
        let x = _mm512_loadu_pd(rows_t.as_ptr().add(k * 8));
        let d = _mm512_sub_pd(x, _mm512_set1_pd(*t_k));
        acc = _mm512_fmadd_pd(d, d, acc);
    }
    let x = _mm512_mul_pd(_mm512_set1_pd(factor), acc);
    let (y, outside) = if gather {
        exp8::<true>(x)
    } else {
        exp8::<false>(x)
    };
    if outside != 0 {
        redo_outside8(x, y, outside)
    } else {
        y
    }
}

/// `out[s * 8 + b] = exp(factor * sum_k (x_bk - t_sk)^2)` for eight rows (`rows_t`,
/// feature-major) and the rows t of `targets` (row-major), each sum of squares a chain
/// of fused multiply-adds in feature order and `exp` the C library's: the same bits as
/// the distances and then `exp` of them, in one pass.
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `rows_t` must hold `8 * dim` values, `targets`
/// `dim` for each eight entries of `out`.
#[target_feature(enable = "avx512f,fma")]
pub unsafe fn prediction_columns_avx512(
    out: &mut [f64],
    rows_t: &[f64],
    targets: &[f64],
    dim: usize,
    factor: f64,
) {
    assert!(
        rows_t.len() == 8 * dim
            && out.len().is_multiple_of(8)
            && targets.len() == out.len() / 8 * dim
    );
    let gather = table_by_gathers();
    for (out, t) in out
        .chunks_exact_mut(8)
        .zip(targets.chunks_exact(dim.max(1)))
    {
        let y = prediction_column(rows_t, t, factor, gather);
        _mm512_storeu_pd(out.as_mut_ptr(), y);
    }
}

/// `y` with the lanes set in `outside` replaced by the C library's `exp` of `x`'s.
#[cold]
#[target_feature(enable = "avx512f,fma")]
unsafe fn redo_outside8(x: __m512d, y: __m512d, outside: u8) -> __m512d {
    let (mut values, mut args) = ([0.0; 8], [0.0; 8]);
    _mm512_storeu_pd(values.as_mut_ptr(), y);
    _mm512_storeu_pd(args.as_mut_ptr(), x);
    redo_outside(&mut values, &args, outside as u32);
    _mm512_loadu_pd(values.as_ptr())
}

/// `exp(x)` within 2^-42 on eight lanes, `FLOOR <= x <= CEILING`, with no memory
/// lookups: a table of 16 scales held in two registers and a polynomial of degree 5.
/// `low` and `high` hold `POW2_SIXTEENTHS`.
#[target_feature(enable = "avx512f,fma")]
unsafe fn exp8_approx(x: __m512d, low: __m512d, high: __m512d) -> __m512d {
    // x = k ln2/16 + r, |r| <= ln2/32, and exp(x) = 2^(k div 16) 2^((k mod 16)/16) exp(r).
    let shifted = _mm512_fmadd_pd(x, _mm512_set1_pd(INV_LN2_16), _mm512_set1_pd(SHIFT));
    let ki = _mm512_castpd_si512(shifted);
    let kd = _mm512_sub_pd(shifted, _mm512_set1_pd(SHIFT));
    let r = _mm512_fmadd_pd(kd, _mm512_set1_pd(NEG_LN2_16), x);
    // The low four bits of k pick the entry (the index takes those bits alone).
    let entry = _mm512_permutex2var_pd(low, ki, high);
    // Taylor's degree 5: the next term is under 2^-42 for |r| <= ln2/32.
    let mut p = _mm512_set1_pd(1.0 / 120.0);
    for c in [1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c));
    }
    // Times 2^(k div 16): `scalef` multiplies by 2 to the floor of its second operand.
    _mm512_scalef_pd(
        _mm512_mul_pd(entry, p),
        _mm512_mul_pd(kd, _mm512_set1_pd(1.0 / 16.0)),
    )
}

/// # Safety
/// The CPU must have AVX2 and FMA; `d` and `out` of one length.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn exp_scaled_f32_avx2(d: &[f64], factor: f64, out: &mut [f32]) {
    let whole = d.len() / 4 * 4;
    let factor_v = _mm256_set1_pd(factor);
    for k in (0..whole).step_by(4) {
        let x = _mm256_mul_pd(factor_v, _mm256_loadu_pd(d.as_ptr().add(k)));
        let (mut y, outside) = exp4(x);
        if outside != 0 {
            let (mut values, mut args) = ([0.0; 4], [0.0; 4]);
            _mm256_storeu_pd(values.as_mut_ptr(), y);
            _mm256_storeu_pd(args.as_mut_ptr(), x);
            redo_outside(&mut values, &args, outside as u32);
            y = _mm256_loadu_pd(values.as_ptr());
        }
        _mm_storeu_ps(out.as_mut_ptr().add(k), _mm256_cvtpd_ps(y));
    }
    super::exp_scaled_f32_scalar(&d[whole..], factor, &mut out[whole..]);
}

/// [`exp4`] on eight lanes, the table read by gathers (`GATHER`) or by loads.
#[target_feature(enable = "avx512f,fma")]
unsafe fn exp8<const GATHER: bool>(x: __m512d) -> (__m512d, u8) {
    let bits = _mm512_castpd_si512(x);
    let top = _mm512_and_si512(_mm512_srli_epi64::<52>(bits), _mm512_set1_epi64(0x7ff));
    let outside = _mm512_cmplt_epi64_mask(top, _mm512_set1_epi64(TOP_TINY))
        | _mm512_cmpge_epi64_mask(top, _mm512_set1_epi64(TOP_LARGE));

    let shifted = _mm512_fmadd_pd(x, _mm512_set1_pd(INV_LN2_N), _mm512_set1_pd(SHIFT));
    let ki = _mm512_castpd_si512(shifted);
    let kd = _mm512_sub_pd(shifted, _mm512_set1_pd(SHIFT));
    let r = _mm512_fmadd_pd(kd, _mm512_set1_pd(NEG_LN2_HI_N), x);
    let r = _mm512_fmadd_pd(kd, _mm512_set1_pd(NEG_LN2_LO_N), r);

    let entry = _mm512_slli_epi64::<1>(_mm512_and_si512(ki, _mm512_set1_epi64(0x7f)));
    let table = TABLE.as_ptr().cast::<i64>();
    let (tail, scale_bits) = if GATHER {
        (
            _mm512_castsi512_pd(_mm512_i64gather_epi64::<8>(entry, table)),
            _mm512_i64gather_epi64::<8>(_mm512_add_epi64(entry, _mm512_set1_epi64(1)), table),
        )
    } else {
        // Each lane's (tail, scale) pair is one 16-byte load (entries are even and at
        // most 254, so both words are in the table); pairs of even lanes go to `even`,
        // of odd lanes to `odd`, so that unpacking them gives lane order.
        let mut at = [0i64; 8];
        _mm512_storeu_si512(at.as_mut_ptr().cast(), entry);
        let pair = |lane: usize| _mm_loadu_si128(table.add(at[lane] as usize).cast());
        let quad = |a: usize, b: usize| {
            _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(pair(a)), pair(b))
        };
        let even = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(quad(0, 2)), quad(4, 6));
        let odd = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(quad(1, 3)), quad(5, 7));
        let tail = _mm512_castsi512_pd(_mm512_unpacklo_epi64(even, odd));
        let scale_bits = _mm512_unpackhi_epi64(even, odd);
        (tail, scale_bits)
    };
    let scale = _mm512_castsi512_pd(_mm512_add_epi64(
        scale_bits,
        _mm512_slli_epi64::<{ 52 - 7 }>(ki),
    ));

    let c23 = _mm512_fmadd_pd(r, _mm512_set1_pd(C3), _mm512_set1_pd(C2));
    let tail_r = _mm512_add_pd(r, tail);
    let r2 = _mm512_mul_pd(r, r);
    let c45 = _mm512_fmadd_pd(r, _mm512_set1_pd(C5), _mm512_set1_pd(C4));
    let sum = _mm512_fmadd_pd(c23, r2, tail_r);
    let r4 = _mm512_mul_pd(r2, r2);
    let poly = _mm512_fmadd_pd(r4, c45, sum);
    (_mm512_fmadd_pd(scale, poly, scale), outside)
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn exp_in_place_avx2(values: &mut [f64]) {
    let mut chunks = values.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let x = _mm256_loadu_pd(chunk.as_ptr());
        let (y, outside) = exp4(x);
        _mm256_storeu_pd(chunk.as_mut_ptr(), y);
        if outside != 0 {
            let mut args = [0.0; 4];
            _mm256_storeu_pd(args.as_mut_ptr(), x);
            redo_outside(chunk, &args, outside as u32);
        }
    }
    super::exp_scalar(chunks.into_remainder());
}

/// Four exponentials and a mask of the lanes whose argument is outside the
/// polynomial's range (their results are to be replaced).
#[target_feature(enable = "avx2,fma")]
unsafe fn exp4(x: __m256d) -> (__m256d, i32) {
    let bits = _mm256_castpd_si256(x);
    let top = _mm256_and_si256(_mm256_srli_epi64(bits, 52), _mm256_set1_epi64x(0x7ff));
    let outside = _mm256_or_si256(
        _mm256_cmpgt_epi64(_mm256_set1_epi64x(TOP_TINY), top),
        _mm256_cmpgt_epi64(top, _mm256_set1_epi64x(TOP_LARGE - 1)),
    );
    let outside = _mm256_movemask_pd(_mm256_castsi256_pd(outside));

    // x = k ln2/128 + r, |r| <= ln2/256.
    let shifted = _mm256_fmadd_pd(x, _mm256_set1_pd(INV_LN2_N), _mm256_set1_pd(SHIFT));
    let ki = _mm256_castpd_si256(shifted);
    let kd = _mm256_sub_pd(shifted, _mm256_set1_pd(SHIFT));
    let r = _mm256_fmadd_pd(kd, _mm256_set1_pd(NEG_LN2_HI_N), x);
    let r = _mm256_fmadd_pd(kd, _mm256_set1_pd(NEG_LN2_LO_N), r);

    // 2^(k/128) = scale * (1 + tail), from entry k mod 128.
    let entry = _mm256_slli_epi64(_mm256_and_si256(ki, _mm256_set1_epi64x(0x7f)), 1);
    let table = TABLE.as_ptr().cast::<i64>();
    // As on eight lanes: one 16-byte load per lane, unpacked into lane order
    // (1.35 ns a value with gathers, 1.10 with this).
    let mut at = [0i64; 4];
    _mm256_storeu_si256(at.as_mut_ptr().cast(), entry);
    let pair = |lane: usize| _mm_loadu_si128(table.add(at[lane] as usize).cast());
    let even = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(pair(0)), pair(2));
    let odd = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(pair(1)), pair(3));
    let tail = _mm256_castsi256_pd(_mm256_unpacklo_epi64(even, odd));
    let scale_bits = _mm256_unpackhi_epi64(even, odd);
    let scale = _mm256_castsi256_pd(_mm256_add_epi64(scale_bits, _mm256_slli_epi64(ki, 52 - 7)));

    // tail + r + r^2 (C2 + r C3) + r^4 (C4 + r C5), fused as glibc's build fuses it.
    let c23 = _mm256_fmadd_pd(r, _mm256_set1_pd(C3), _mm256_set1_pd(C2));
    let tail_r = _mm256_add_pd(r, tail);
    let r2 = _mm256_mul_pd(r, r);
    let c45 = _mm256_fmadd_pd(r, _mm256_set1_pd(C5), _mm256_set1_pd(C4));
    let sum = _mm256_fmadd_pd(c23, r2, tail_r);
    let r4 = _mm256_mul_pd(r2, r2);
    let poly = _mm256_fmadd_pd(r4, c45, sum);
    (_mm256_fmadd_pd(scale, poly, scale), outside)
}
