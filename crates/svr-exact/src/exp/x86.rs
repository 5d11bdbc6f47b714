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
#[target_feature(enable = "avx512f,fma")]
pub unsafe fn exp_in_place_avx512(values: &mut [f64]) {
    let mut chunks = values.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let x = _mm512_loadu_pd(chunk.as_ptr());
        let (y, outside) = exp8(x);
        _mm512_storeu_pd(chunk.as_mut_ptr(), y);
        if outside != 0 {
            let mut args = [0.0; 8];
            _mm512_storeu_pd(args.as_mut_ptr(), x);
            redo_outside(chunk, &args, outside as u32);
        }
    }
    super::exp_scalar(chunks.into_remainder());
}

/// # Safety
/// The CPU must have AVX-512F and FMA; `d` and `out` of one length.
#[target_feature(enable = "avx512f,fma")]
pub unsafe fn exp_scaled_f32_avx512(d: &[f64], factor: f64, out: &mut [f32]) {
    let whole = d.len() / 8 * 8;
    let factor_v = _mm512_set1_pd(factor);
    for k in (0..whole).step_by(8) {
        let x = _mm512_mul_pd(factor_v, _mm512_loadu_pd(d.as_ptr().add(k)));
        let (mut y, outside) = exp8(x);
        if outside != 0 {
            let (mut values, mut args) = ([0.0; 8], [0.0; 8]);
            _mm512_storeu_pd(values.as_mut_ptr(), y);
            _mm512_storeu_pd(args.as_mut_ptr(), x);
            redo_outside(&mut values, &args, outside as u32);
            y = _mm512_loadu_pd(values.as_ptr());
        }
        _mm256_storeu_ps(out.as_mut_ptr().add(k), _mm512_cvtpd_ps(y));
    }
    super::exp_scaled_f32_scalar(&d[whole..], factor, &mut out[whole..]);
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

/// [`exp4`] on eight lanes.
#[target_feature(enable = "avx512f,fma")]
unsafe fn exp8(x: __m512d) -> (__m512d, u8) {
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
    // Each lane's (tail, scale) pair is one 16-byte load (entries are even and at
    // most 254, so both words are in the table); pairs of even lanes go to `even`,
    // of odd lanes to `odd`, so that unpacking them gives lane order. Two gathers
    // took 1.40 ns a value on the development machine's AMD EPYC, this 1.02.
    let mut at = [0i64; 8];
    _mm512_storeu_si512(at.as_mut_ptr().cast(), entry);
    let pair = |lane: usize| _mm_loadu_si128(table.add(at[lane] as usize).cast());
    let quad =
        |a: usize, b: usize| _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(pair(a)), pair(b));
    let even = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(quad(0, 2)), quad(4, 6));
    let odd = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(quad(1, 3)), quad(5, 7));
    let tail = _mm512_castsi512_pd(_mm512_unpacklo_epi64(even, odd));
    let scale_bits = _mm512_unpackhi_epi64(even, odd);
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
