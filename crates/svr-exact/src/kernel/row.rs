//! Writing a kept kernel row: a fit's columns of a source row (its own kernel row, or
//! the trial's shared one), in the solver's current order of variables and signed,
//! copied run by run while no swap has moved a variable and gathered after.

use std::ops::Range;

use crate::wide::widest;

/// A kernel row to be kept: its fit's columns of `source`, the runs `runs` of it in
/// order, whose variable k reads `source[column_of[k]]` (every entry below
/// `column_reach`).
pub(super) struct Row<'a> {
    pub(super) source: &'a [f32],
    pub(super) runs: &'a [Range<usize>],
    pub(super) column_of: &'a [u32],
    pub(super) column_reach: usize,
}

impl Row<'_> {
    /// Writes the row at `start` of `storage` (appending when `start` is its end), in
    /// the solver's order of variables and signed: when no swap has moved a variable,
    /// the runs and then their negations; otherwise entry by entry.
    pub(super) fn write(&self, storage: &mut Vec<f32>, start: usize, sign: &[f32], permuted: bool) {
        let width = sign.len();
        assert_eq!(self.column_of.len(), width);
        assert_eq!(
            self.runs.iter().map(ExactSizeIterator::len).sum::<usize>() * 2,
            width
        );
        assert!(self.runs.iter().all(|r| r.end <= self.source.len()));
        assert!(self.column_reach <= self.source.len());
        if start == storage.len() {
            if permuted {
                storage.reserve(width);
                let out = &mut storage.spare_capacity_mut()[..width];
                // SAFETY: every `column_of` entry is below `column_reach`, which the
                // source reaches; all `width` entries are written before the length
                // covers them.
                unsafe {
                    gather_signed(out, sign, self.column_of, self.source);
                    storage.set_len(start + width);
                }
            } else {
                for run in self.runs {
                    storage.extend_from_slice(&self.source[run.clone()]);
                }
                for run in self.runs {
                    storage.extend(self.source[run.clone()].iter().map(|k| -k));
                }
            }
            return;
        }
        let row = &mut storage[start..start + width];
        if permuted {
            // SAFETY: every `column_of` entry is below `column_reach`, which the source
            // reaches; f32 and MaybeUninit<f32> have the same layout, and only
            // initialized values are written.
            unsafe {
                let out = std::slice::from_raw_parts_mut(row.as_mut_ptr().cast(), width);
                gather_signed(out, sign, self.column_of, self.source);
            }
        } else {
            // Unswapped: variable k is the fit's row k mod n, labelled +1 then -1.
            let (mut plus, mut minus) = row.split_at_mut(width / 2);
            for run in self.runs {
                let (p, rest_p) = plus.split_at_mut(run.len());
                let (m, rest_m) = minus.split_at_mut(run.len());
                copy_both_signs(p, m, &self.source[run.clone()]);
                (plus, minus) = (rest_p, rest_m);
            }
        }
    }
}

/// `out[k] = sign[k] * kernel[index[k]]` for every k: a kernel row in the solver's
/// order of variables, signed (a product by +-1, exact). The reads are random; one by
/// one they were about a quarter of a 10,000-row trial's time, as vector gathers where
/// the CPU has them an eighth.
///
/// # Safety
/// Every entry of `index` must be below `kernel.len()`, and `sign`, `index` and `out`
/// of one length.
unsafe fn gather_signed(
    out: &mut [std::mem::MaybeUninit<f32>],
    sign: &[f32],
    index: &[u32],
    kernel: &[f32],
) {
    debug_assert!(out.len() == sign.len() && out.len() == index.len());
    debug_assert!(index.iter().all(|&k| (k as usize) < kernel.len()));
    // Where the vector path left off.
    #[cfg(target_arch = "x86_64")]
    let from = if is_x86_feature_detected!("avx512f") {
        gather::avx512(out, sign, index, kernel)
    } else if is_x86_feature_detected!("avx2") {
        gather::avx2(out, sign, index, kernel)
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let from = 0;
    for k in from..out.len() {
        out.get_unchecked_mut(k)
            .write(sign.get_unchecked(k) * kernel.get_unchecked(*index.get_unchecked(k) as usize));
    }
}

#[cfg(target_arch = "x86_64")]
mod gather {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// [`super::gather_signed`] sixteen entries at a time; where the scalar tail starts.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(
        out: &mut [MaybeUninit<f32>],
        sign: &[f32],
        index: &[u32],
        kernel: &[f32],
    ) -> usize {
        let whole = out.len() / 16 * 16;
        for k in (0..whole).step_by(16) {
            let at = _mm512_loadu_si512(index.as_ptr().add(k).cast());
            let values = _mm512_i32gather_ps::<4>(at, kernel.as_ptr());
            let signed = _mm512_mul_ps(_mm512_loadu_ps(sign.as_ptr().add(k)), values);
            _mm512_storeu_ps(out.as_mut_ptr().add(k).cast(), signed);
        }
        whole
    }

    /// [`super::gather_signed`] eight entries at a time; where the scalar tail starts.
    #[target_feature(enable = "avx2")]
    pub unsafe fn avx2(
        out: &mut [MaybeUninit<f32>],
        sign: &[f32],
        index: &[u32],
        kernel: &[f32],
    ) -> usize {
        let whole = out.len() / 8 * 8;
        for k in (0..whole).step_by(8) {
            let at = _mm256_loadu_si256(index.as_ptr().add(k).cast());
            let values = _mm256_i32gather_ps::<4>(kernel.as_ptr(), at);
            let signed = _mm256_mul_ps(_mm256_loadu_ps(sign.as_ptr().add(k)), values);
            _mm256_storeu_ps(out.as_mut_ptr().add(k).cast(), signed);
        }
        whole
    }
}

widest! {
    /// `plus = kernel` and `minus = -kernel`.
    fn copy_both_signs(plus: &mut [f32], minus: &mut [f32], kernel: &[f32]) {
        for ((p, m), k) in plus.iter_mut().zip(minus).zip(kernel) {
            *p = *k;
            *m = -*k;
        }
    }
}
