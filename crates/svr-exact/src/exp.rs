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
//!
//! Kernel rows are kept as f32, and an f32 needs fewer bits than that: on AVX-512 a
//! row's values come from a cheaper approximation wherever its rounding to f32 is
//! provably the C library's, and from the exact path elsewhere
//! (`x86::exp_scaled_f32_avx512`).

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
        *v = exp(*v);
    }
}

/// The C library's `exp(x)`, without the call for `x = +-0`, whose `exp` is 1 exactly
/// (C99, Annex F). Every kernel's diagonal and every prediction of a training row from
/// itself as a support vector has a distance of 0: thousands of calls a trial.
///
/// Never inlined: inlined into a loop, the comparison was vectorized away, the loop
/// calling the C library for every lane and choosing 1 afterwards, since the compiler
/// takes `exp` to have no side effects.
#[inline(never)]
pub fn exp(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        x.exp()
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

/// `out[j] = exp(factor * ((sq_x + squares[j]) - 2 x.x_j))` as f32 for the rows of
/// `blocks` (eight rows each, feature by feature; `out` may end inside the last), each
/// dot product a chain of fused multiply-adds in feature order, in one pass, where the
/// CPU has AVX-512; false, with nothing written, elsewhere.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub(crate) fn kernel_row_in_one_pass(
    out: &mut [f32],
    x: &[f64],
    blocks: &[f64],
    squares: &[f64],
    sq_x: f64,
    factor: f64,
) -> bool {
    match path() {
        // SAFETY: `path` picks AVX-512 only where the CPU has it; the lengths are checked
        // inside.
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => {
            unsafe { x86::kernel_row_avx512(out, x, blocks, squares, sq_x, factor) };
            true
        }
        _ => false,
    }
}

/// `sums[b] += coef[s] * exp(factor * sum_k (x_bk - t_sk)^2)` for a block of eight
/// rows (`rows_t`, feature-major) and the support vectors (`support`, row-major) in
/// order, in one pass, where the CPU has AVX-512; false, with nothing changed,
/// elsewhere.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub(crate) fn predict_block_in_one_pass(
    sums: &mut [f64; 8],
    rows_t: &[f64],
    support: &[f64],
    coef: &[f64],
    dim: usize,
    factor: f64,
) -> bool {
    match path() {
        // SAFETY: `path` picks AVX-512 only where the CPU has it; the lengths are checked
        // inside.
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => {
            unsafe { x86::predict_block_avx512(sums, rows_t, support, coef, dim, factor) };
            true
        }
        _ => false,
    }
}

/// `out[s * 8 + b] = exp(factor * sum_k (x_bk - t_sk)^2)` for eight rows (`rows_t`,
/// feature-major: entry `k * 8 + b`) and the rows t of `targets` (row-major), as the
/// reference computes a prediction's kernel values; in one pass where the CPU has
/// AVX-512.
pub(crate) fn prediction_columns(
    out: &mut [f64],
    rows_t: &[f64],
    targets: &[f64],
    dim: usize,
    factor: f64,
) {
    match path() {
        // SAFETY: `path` picks AVX-512 only where the CPU has it; the lengths are checked
        // inside.
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => unsafe {
            x86::prediction_columns_avx512(out, rows_t, targets, dim, factor)
        },
        _ => {
            super::distances::scaled_square_distances_8(out, rows_t, targets, dim, factor);
            exp_in_place(out);
        }
    }
}

fn exp_scaled_f32_scalar(d: &[f64], factor: f64, out: &mut [f32]) {
    for (out, d) in out.iter_mut().zip(d) {
        *out = exp(factor * d) as f32;
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
mod x86;

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// `count` kernel arguments, -gamma * distance, over the widest ranges searched.
    fn kernel_arguments(seed: u64, count: usize) -> Vec<f64> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                let unit = (xorshift(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
                -(10f64.powf(-8.0 + 11.0 * unit))
            })
            .collect()
    }

    #[test]
    fn equals_the_c_library_on_every_argument_tried() {
        let mut args = probe_arguments();
        args.extend(kernel_arguments(7, 1_000_000));
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

    /// Eight lanes read glibc's table by gathers on Intel's CPUs and by loads on others:
    /// both agree with the C library wherever the CPU has AVX-512.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_table_read_by_gathers_or_by_loads_gives_the_c_library_s_bits() {
        if !available(Path::Avx512) {
            return;
        }
        let mut args = probe_arguments();
        args.extend(kernel_arguments(11, 1_000_000));
        let (mut gathered, mut loaded) = (args.clone(), args.clone());
        // SAFETY: AVX-512F and FMA were detected.
        unsafe {
            x86::exp_in_place_avx512_reading::<true>(&mut gathered);
            x86::exp_in_place_avx512_reading::<false>(&mut loaded);
        }
        for (k, x) in args.iter().enumerate() {
            let exact = x.exp().to_bits();
            assert_eq!(gathered[k].to_bits(), exact, "gathers, exp({x})");
            assert_eq!(loaded[k].to_bits(), exact, "loads, exp({x})");
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

    /// Arguments whose `exp` lies a few f64 places from a point halfway between two f32
    /// (normal and subnormal), where an `exp` good to a few more bits than f32 would round
    /// the other way, and kernel arguments over the widest ranges searched: each kernel
    /// value is the C library's `exp` rounded to f32.
    #[test]
    fn kernel_values_round_as_the_c_library_does_next_to_halfway_points() {
        let mut state = 11u64;
        let mut args = Vec::new();
        // f32 from the least subnormal to 1 (every 97th subnormal, and normal ones at
        // random), the halfway point above each.
        let subnormal = (1..0x80_0000).step_by(97);
        let normal: Vec<u32> = (0..400_000)
            .map(|_| (xorshift(&mut state) % 0x3f00_0000) as u32 + 0x80_0000)
            .collect();
        for (k, bits) in subnormal.chain(normal).enumerate() {
            let below = f64::from(f32::from_bits(bits));
            let halfway = (below + f64::from(f32::from_bits(bits + 1))) / 2.0;
            let x = halfway.ln();
            let nudge = (k % 5) as i64 - 2;
            args.push(f64::from_bits((x.to_bits() as i64 + nudge) as u64));
        }
        args.extend(kernel_arguments(state, 1_000_000));
        let expected: Vec<u32> = args.iter().map(|x| (x.exp() as f32).to_bits()).collect();
        for p in [Path::Avx512, Path::Avx2, Path::Scalar] {
            if available(p) && first_difference(p, &probe_arguments()).is_none() {
                let mut out = vec![f32::NAN; args.len()];
                exp_scaled_f32_on(p, &args, 1.0, &mut out);
                let wrong = (0..args.len())
                    .filter(|&k| out[k].to_bits() != expected[k])
                    .count();
                assert_eq!(wrong, 0, "{p:?}");
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
