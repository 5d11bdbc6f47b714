//! Loops compiled three times, for AVX-512 and AVX2 (each with FMA) and the baseline
//! x86-64, the widest the CPU has chosen at each call. Only the instructions for the
//! same IEEE operations change (Rust never fuses a multiply and an add on its own, and
//! an explicit `mul_add` is one rounding on every path), so every path gives the same
//! bits; the release build stays portable.

/// Defines `fn name(args) body` as a dispatcher over copies of `body` compiled with
/// wider vector instructions.
macro_rules! widest {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,fma")]
                fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                let fma = is_x86_feature_detected!("fma");
                if fma && is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F and FMA.
                    return unsafe { avx512($($arg),*) };
                }
                if fma && is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 and FMA.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub(super) use widest;
