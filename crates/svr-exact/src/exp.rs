//! `exp` over a slice, eight or four values at a time where the CPU has AVX-512 or AVX2
//! with FMA, with every result equal to the last bit to what the C library's `exp`
//! returns for it.
//!
//! Kernel values are most of a trial's arithmetic, and the reference computes each with
//! the C library's `exp`, so a faster `exp` must not differ from it. glibc (2.28 on)
//! computes `exp(x)` as `2^(k/128) * exp(r)`: a table of 128 scales and a degree-5
//! polynomial; on CPUs with AVX2 and FMA it runs a build of that code whose multiply-adds
//! are fused. The vector paths perform the same operations in the same order on eight or
//! four lanes; arguments outside the polynomial's range (tiny, past +-512, not finite)
//! go to the C library's `exp` one by one. Before using a vector path the process
//! compares it with the C library's `exp` on thousands of arguments covering every
//! table entry, and keeps to the C library where they differ (another C library,
//! another CPU path).

use std::sync::OnceLock;

/// Replaces each value with its exponential, as the C library's `exp` computes it.
pub fn exp_in_place(values: &mut [f64]) {
    match path() {
        // SAFETY: `path` picks a vector path only where the CPU has its features.
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => unsafe { x86::exp_in_place_avx512(values) },
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => unsafe { x86::exp_in_place_avx2(values) },
        Path::Scalar => exp_scalar(values),
        #[cfg(not(target_arch = "x86_64"))]
        _ => exp_scalar(values),
    }
}

fn exp_scalar(values: &mut [f64]) {
    for v in values {
        *v = v.exp();
    }
}

/// `out[j] = exp(factor * d[j])` as f32: a kernel row from its distances in one pass,
/// the same bits as scaling, [`exp_in_place`] and rounding one after another.
pub fn exp_scaled_f32(d: &[f64], factor: f64, out: &mut [f32]) {
    exp_scaled_f32_on(path(), d, factor, out);
}

/// [`exp_scaled_f32`] on `path`, which must be available.
fn exp_scaled_f32_on(path: Path, d: &[f64], factor: f64, out: &mut [f32]) {
    assert_eq!(d.len(), out.len());
    match path {
        // SAFETY: the caller checked that the CPU has the path's features.
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => unsafe { x86::exp_scaled_f32_avx512(d, factor, out) },
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => unsafe { x86::exp_scaled_f32_avx2(d, factor, out) },
        Path::Scalar => exp_scaled_f32_scalar(d, factor, out),
        #[cfg(not(target_arch = "x86_64"))]
        _ => exp_scaled_f32_scalar(d, factor, out),
    }
}

fn exp_scaled_f32_scalar(d: &[f64], factor: f64, out: &mut [f32]) {
    for (out, d) in out.iter_mut().zip(d) {
        *out = (factor * d).exp() as f32;
    }
}

/// How this process computes `exp` over slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Eight lanes (AVX-512F; FMA is part of it).
    Avx512,
    /// Four lanes (AVX2 and FMA).
    Avx2,
    /// The C library, one value at a time.
    Scalar,
}

/// The widest path the CPU has that agrees with the C library, chosen once.
pub fn path() -> Path {
    static PATH: OnceLock<Path> = OnceLock::new();
    *PATH.get_or_init(|| {
        let probe = probe_arguments();
        [Path::Avx512, Path::Avx2]
            .into_iter()
            .find(|p| available(*p) && first_difference(*p, &probe).is_none())
            .unwrap_or(Path::Scalar)
    })
}

fn available(path: Path) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match path {
            Path::Avx512 => is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma"),
            Path::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            Path::Scalar => true,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        path == Path::Scalar
    }
}

/// The first argument whose result on `path` differs from the C library's, if any.
/// `path` must be available.
fn first_difference(path: Path, args: &[f64]) -> Option<f64> {
    let mut fast = args.to_vec();
    match path {
        // SAFETY: the caller checked that the CPU has the path's features.
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => unsafe { x86::exp_in_place_avx512(&mut fast) },
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => unsafe { x86::exp_in_place_avx2(&mut fast) },
        _ => exp_scalar(&mut fast),
    }
    args.iter()
        .zip(&fast)
        .find(|(x, y)| x.exp().to_bits() != y.to_bits())
        .map(|(x, _)| *x)
}

/// Arguments of the kind the engine passes (0 down to past underflow) and a few of
/// every other kind, every table entry hit many times over.
fn probe_arguments() -> Vec<f64> {
    let mut args: Vec<f64> = (0..8192).map(|k| -750.0 * f64::from(k) / 8192.0).collect();
    // A linear congruential walk: arguments with all 52 fraction bits in play.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..8192 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
        args.push(-760.0 + 770.0 * unit);
    }
    args.extend([
        0.0,
        -0.0,
        1e-300,
        -1e-17,
        709.7,
        710.0,
        -745.1,
        -746.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ]);
    args
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::exp_table::TABLE;

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
                *out = arg.exp();
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
        let quad = |a: usize, b: usize| {
            _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(pair(a)), pair(b))
        };
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
        let scale =
            _mm256_castsi256_pd(_mm256_add_epi64(scale_bits, _mm256_slli_epi64(ki, 52 - 7)));

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_c_library_on_every_argument_tried() {
        let mut args = probe_arguments();
        let mut state = 7u64;
        // Kernel arguments: -gamma * distance over the widest ranges searched.
        for _ in 0..1_000_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            args.push(-(10f64.powf(-8.0 + 11.0 * unit)));
        }
        for p in [Path::Avx512, Path::Avx2, Path::Scalar] {
            if available(p) {
                assert_eq!(first_difference(p, &args), None, "{p:?}");
            }
        }
    }

    #[test]
    fn every_path_the_cpu_has_agrees_with_the_c_library_under_glibc() {
        for p in [Path::Avx512, Path::Avx2] {
            if available(p) && cfg!(target_env = "gnu") {
                assert_eq!(first_difference(p, &probe_arguments()), None, "{p:?}");
            }
        }
        // The widest agreeing path is chosen.
        let widest = [Path::Avx512, Path::Avx2]
            .into_iter()
            .find(|p| available(*p) && cfg!(target_env = "gnu"));
        if let Some(widest) = widest {
            assert_eq!(path(), widest);
        }
    }

    /// Scaled, exponentiated and rounded in one pass: the bits of the three steps, on
    /// every length up to three blocks and arguments in and out of the polynomial's
    /// range.
    #[test]
    fn a_kernel_row_in_one_pass_is_the_steps_one_after_another() {
        let d: Vec<f64> = (0..27)
            .map(|k| [0.0, 1e-19, 0.37, 3.1, 800.0, 2.5e4][k % 6] * (1.0 + k as f64 / 7.0))
            .collect();
        let paths = [Path::Avx512, Path::Avx2, Path::Scalar];
        for p in paths.into_iter().filter(|p| available(*p)) {
            for factor in [-0.013, -1.7, -60.0] {
                for len in 0..d.len() {
                    let steps: Vec<u32> = d[..len]
                        .iter()
                        .map(|d| ((factor * d).exp() as f32).to_bits())
                        .collect();
                    let mut fused = vec![f32::NAN; len];
                    exp_scaled_f32_on(p, &d[..len], factor, &mut fused);
                    let fused: Vec<u32> = fused.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(fused, steps, "{p:?}, factor {factor}, length {len}");
                }
            }
        }
    }

    #[test]
    fn lengths_that_are_not_multiples_of_four_are_done_whole() {
        for len in 0..19 {
            let args: Vec<f64> = (0..len).map(|k| -0.37 * k as f64).collect();
            let mut fast = args.clone();
            exp_in_place(&mut fast);
            let slow: Vec<f64> = args.iter().map(|x| x.exp()).collect();
            assert_eq!(fast, slow);
        }
    }
}
