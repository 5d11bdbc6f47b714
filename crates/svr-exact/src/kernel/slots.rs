//! Where a fit's new kernel row goes: a slot of its own while the fit keeps every row;
//! otherwise rows asked for once take turns in a few probation slots and rows reused
//! stay in the others, the least recently used out.

use super::KernelRows;

/// Slots that rows asked for in one iteration only take turns in, when a fit cannot
/// keep every row: 16 rows of 10,000 rows are 1.25 MiB, within a core's second-level
/// cache.
pub(super) const PROBATION_ROWS: usize = 16;

/// Asks for rows between a row's computing and a later ask that keeps it off probation:
/// an iteration asks for a few (its pair, G_bar's moves), and a row asked for again
/// within its own iteration is not being reused.
pub(super) const REUSE_GAP: u64 = 8;

impl KernelRows<'_> {
    /// The slot training row `real`'s kernel row is computed into. A fit that keeps
    /// every row takes a new slot. Otherwise a row computed for the first time goes on
    /// probation: a slot of its own while fewer than [`PROBATION_ROWS`] are, else the
    /// least recently used probation slot's, so that rows asked for once recycle a few
    /// slots that stay in the caches. A row asked for again in a later iteration leaves
    /// probation, and a row computed again goes straight to the other slots, kept as
    /// long as the budget allows, the least recently used out. Before, every new row
    /// went to a slot of the whole budget's: at 10,000 rows under 256 MiB nearly every
    /// row is asked for in one iteration only, and writing each into memory the caches
    /// had long let go made the trial 18 % slower than under 8 MiB.
    pub(super) fn slot_for_new_row(&mut self, real: usize) -> usize {
        let first_time = !self.dist.is_dense() && !std::mem::replace(&mut self.seen[real], true);
        let slot = if let Some(slot) = self.free.pop() {
            slot
        } else if self.owner.len() < self.dist.cached_rows
            && !(first_time && self.probation.len() >= PROBATION_ROWS)
        {
            // The slot's storage is appended when its row is written, not zeroed first.
            self.owner.push(None);
            self.last_used.push(0);
            self.applied.push(0);
            self.on_probation.push(false);
            self.computed_at.push(0);
            self.owner.len() - 1
        } else {
            let candidates: &mut dyn Iterator<Item = usize> =
                if first_time && self.probation.len() >= PROBATION_ROWS {
                    &mut self.probation.iter().copied()
                } else {
                    &mut (0..self.owner.len())
                };
            let oldest = candidates
                .min_by_key(|&k| self.last_used[k])
                .expect("a kept row");
            if let Some(owner) = self.owner[oldest] {
                self.slot[owner] = None;
            }
            oldest
        };
        if first_time && !self.on_probation[slot] {
            self.on_probation[slot] = true;
            self.probation.push(slot);
        } else if !first_time {
            self.leave_probation(slot);
        }
        self.computed_at[slot] = self.clock;
        slot
    }

    /// Takes `slot` off probation, if on it.
    pub(super) fn leave_probation(&mut self, slot: usize) {
        if self.on_probation[slot] {
            self.on_probation[slot] = false;
            self.probation.retain(|&s| s != slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{kernel_row, KernelRows};
    use super::PROBATION_ROWS;
    use crate::distances::Distances;
    use ndarray::Array2;

    #[test]
    fn rows_asked_for_once_take_turns_in_a_few_slots_and_rows_computed_again_stay() {
        let n = 300;
        let x = Array2::from_shape_fn((n, 2), |(i, k)| (i * 3 + k) as f64 / 50.0);
        // Room for 100 of the 300 rows.
        let dist = Distances::new(&x, &x, 100 * 8 * n as u128);
        assert!(!dist.is_dense());
        let mut rows = KernelRows::new(&dist, 0.5, None);
        for i in 0..200 {
            rows.ensure(i);
        }
        assert_eq!(
            rows.owner.len(),
            PROBATION_ROWS,
            "slots for rows asked for once"
        );
        // Computed again, the first 50 are kept beside the probation slots,
        for i in 0..50 {
            rows.ensure(i);
        }
        assert_eq!(rows.owner.len(), PROBATION_ROWS + 50);
        // and stay while rows asked for once come and go.
        for i in 200..n {
            rows.ensure(i);
        }
        assert_eq!(rows.owner.len(), PROBATION_ROWS + 50);
        assert!((0..50).all(|i| rows.slot[i].is_some()));
        let column = rows.column(7);
        let mut expected = vec![0.0; n];
        kernel_row(&dist, 7, 0.5, &mut expected);
        assert_eq!(column.sign, 1.0);
        assert!((0..n).all(|k| column.get(k) == expected[k]));
    }
}
