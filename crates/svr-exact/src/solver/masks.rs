//! Which sets each variable is in for the working-set scans (label +1, I_up, I_low), as
//! bits by blocks of eight, kept up to date as bounds change and shrinking swaps
//! variables. The eight-lane scans load a block's three masks as they are instead of
//! deriving them from its labels and bounds on every scan, which had taken two loads, a
//! table lookup and two tests per block: the violator scan a third faster, the partner
//! scan a tenth.

use super::Bound;

/// Byte `3 b + set` holds the bits of variables `8 b..8 b + 8` in `set`.
pub(super) struct ScanMasks(Vec<u8>);

impl ScanMasks {
    pub(super) fn new(y: &[i8], status: &[Bound]) -> ScanMasks {
        // A block's three bytes at once: set variable by variable, each block's bytes
        // were read and written back eight times: about 1 % of a diabetes trial.
        let bytes = y.chunks(8).zip(status.chunks(8)).flat_map(|(y, status)| {
            let mut block = [0u8; 3];
            for (bit, (&y, &status)) in y.iter().zip(status).enumerate() {
                for (byte, member) in block.iter_mut().zip(sets(y, status)) {
                    *byte |= u8::from(member) << bit;
                }
            }
            block
        });
        ScanMasks(bytes.collect())
    }

    /// Variable `k`'s bits from its label and bound.
    pub(super) fn set(&mut self, k: usize, y: i8, status: Bound) {
        let (block, bit) = (3 * (k / 8), 1u8 << (k % 8));
        for (set, member) in sets(y, status).into_iter().enumerate() {
            let byte = &mut self.0[block + set];
            *byte = if member { *byte | bit } else { *byte & !bit };
        }
    }

    /// Every block's masks, three bytes each (label +1, I_up, I_low).
    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Whether a variable of label `y` at `status` is in each set (label +1, I_up, I_low):
/// label +1 below its upper bound or label -1 above its lower may rise (I_up); the
/// other way round, fall (I_low).
fn sets(y: i8, status: Bound) -> [bool; 3] {
    let positive = y == 1;
    let (up, low) = if positive {
        (status != Bound::Upper, status != Bound::Lower)
    } else {
        (status != Bound::Lower, status != Bound::Upper)
    };
    [positive, up, low]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built a block at a time, the masks are those set variable by variable, for
    /// every label and bound and a last block short of eight.
    #[test]
    fn masks_built_whole_are_the_masks_set_one_by_one() {
        let bounds = [Bound::Lower, Bound::Free, Bound::Upper];
        let n = 43;
        let y: Vec<i8> = (0..n).map(|k| if k % 5 < 2 { 1 } else { -1 }).collect();
        let status: Vec<Bound> = (0..n).map(|k| bounds[k * 7 % 3]).collect();
        let mut one_by_one = ScanMasks(vec![0; 3 * n.div_ceil(8)]);
        for k in 0..n {
            one_by_one.set(k, y[k], status[k]);
        }
        assert_eq!(ScanMasks::new(&y, &status).bytes(), one_by_one.bytes());
    }
}
