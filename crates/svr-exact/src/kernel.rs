//! The kernel rows of one fit: f32, cached up to the budget and evicted least recently
//! used, as libsvm does, but kept in the solver's order of variables so that its loops
//! read them straight.

use std::ops::Range;

mod row;
mod spare;

use super::distances::Distances;
use super::shared::Shared;
use row::Row;
pub(crate) use spare::spare_row_bytes;
pub use spare::KeepRows;

/// Slots that rows asked for in one iteration only take turns in, when a fit cannot
/// keep every row: 16 rows of 10,000 rows are 1.25 MiB, within a core's second-level
/// cache.
const PROBATION_ROWS: usize = 16;

/// Asks for rows between a row's computing and a later ask that keeps it off probation:
/// an iteration asks for a few (its pair, G_bar's moves), and a row asked for again
/// within its own iteration is not being reused.
const REUSE_GAP: u64 = 8;

/// The columns of Q = [K -K; -K K] for one gamma, as the solver asks for them: kernel
/// rows computed on first use and kept as f32 (past the budget, rows asked for once
/// recycle a few slots and the least recently used of the others is evicted), each
/// laid out in the solver's current order of the 2n variables and signed by the
/// variable's label, so that a column of Q is a kept row times one sign.
/// Shrinking's swaps of two variables are logged and applied to a kept row when it is
/// next asked for; a row that fell further behind than the log keeps is dropped, as
/// computing it again costs less than catching up.
pub struct KernelRows<'d> {
    dist: &'d Distances,
    gamma: f64,
    /// The trial's kernel, when the fit shares one: rows are gathered from it instead
    /// of computed.
    shared: Option<Shared<'d>>,
    /// The kernel row being added, as f32, when the fit computes its own.
    computed: Vec<f32>,
    /// The fit's training rows in the row a new kernel row is read from (its own, or
    /// the shared kernel's), as runs of consecutive rows: a cross-validation fold's are
    /// two runs, the rows before and after its test block, so its columns are copied,
    /// not gathered one by one.
    runs: Vec<Range<usize>>,
    /// Kept rows, 2n entries each, one after another.
    storage: Vec<f32>,
    /// The slot in `storage` of each kernel row, by training row.
    slot: Vec<Option<usize>>,
    /// The training row in each slot (`None` when free), and when it was last asked for.
    owner: Vec<Option<usize>>,
    last_used: Vec<u64>,
    free: Vec<usize>,
    /// When the fit cannot keep every row: the slots on probation (rows not asked for
    /// again since the iteration that computed them), by flag and as a list, and when
    /// each slot's row was computed.
    on_probation: Vec<bool>,
    probation: Vec<usize>,
    computed_at: Vec<u64>,
    /// Whether each training row's kernel row has been computed before in this fit.
    seen: Vec<bool>,
    /// Swaps since the log was last cleared, and how many of them each slot has had.
    swaps: Vec<(usize, usize)>,
    applied: Vec<usize>,
    clock: u64,
    scratch: Vec<f64>,
    sign: Vec<f32>,
    /// The training row of each variable: a permutation of `k mod n`, so every entry is
    /// below n.
    index: Vec<u32>,
    /// Where each variable's entry lies in the row a new kernel row is read from: its
    /// training row's column in the shared kernel, or (fitting alone) `index`'s entry.
    column_of: Vec<u32>,
    /// One past the largest entry of `column_of` (swaps leave it), which a row read
    /// from must reach: the vector gathers read unchecked.
    column_reach: usize,
    /// Whether a swap has moved any variable from its first place.
    permuted: bool,
    qd: Vec<f64>,
}

impl<'d> KernelRows<'d> {
    pub fn new(dist: &'d Distances, gamma: f64, shared: Option<Shared<'d>>) -> KernelRows<'d> {
        let n = dist.n_train();
        let diagonal = dist.diagonal.iter().map(|d| super::exp::exp(-gamma * d));
        let qd: Vec<f64> = diagonal.clone().chain(diagonal).collect();
        let storage = spare::take(8 * dist.cached_rows * n);
        let column_of: Vec<u32> = (0..2 * n)
            .map(|k| row_number(shared.map_or(k % n, |s| s.rows[k % n])))
            .collect();
        let column_reach = column_of.iter().max().map_or(0, |&c| c as usize + 1);
        KernelRows {
            dist,
            gamma,
            shared,
            computed: Vec::new(),
            runs: shared.map_or_else(|| std::iter::once(0..n).collect(), |s| runs(s.rows)),
            storage,
            slot: vec![None; n],
            owner: Vec::new(),
            last_used: Vec::new(),
            free: Vec::new(),
            on_probation: Vec::new(),
            probation: Vec::new(),
            computed_at: Vec::new(),
            seen: vec![false; n],
            swaps: Vec::new(),
            applied: Vec::new(),
            clock: 0,
            scratch: Vec::new(),
            sign: (0..2 * n).map(|k| if k < n { 1.0 } else { -1.0 }).collect(),
            index: (0..2 * n).map(|k| row_number(k % n)).collect(),
            column_of,
            column_reach,
            permuted: false,
            qd,
        }
    }

    /// Whether every kernel row the fit asks for stays kept (none is evicted).
    pub fn keeps_every_row(&self) -> bool {
        self.dist.is_dense()
    }

    /// Bytes of the fit's kernel rows when all are kept.
    pub fn row_bytes(&self) -> u128 {
        Distances::bytes_for(self.dist.n_train())
    }

    /// Q's diagonal at variable `i`.
    pub fn qd(&self, i: usize) -> f64 {
        self.qd[i]
    }

    /// Q's diagonal, in the solver's order of variables.
    pub fn qd_all(&self) -> &[f64] {
        &self.qd
    }

    fn width(&self) -> usize {
        self.sign.len()
    }

    /// Makes column `i` present for [`KernelRows::column`], evicting a row past the cap
    /// ([`KernelRows::slot_for_new_row`]).
    pub fn ensure(&mut self, i: usize) {
        let real = self.index[i] as usize;
        self.clock += 1;
        let slot = if let Some(slot) = self.slot[real] {
            if self.clock - self.computed_at[slot] > REUSE_GAP {
                self.leave_probation(slot);
            }
            self.last_used[slot] = self.clock;
            if self.catch_up(slot) {
                return;
            }
            slot
        } else {
            self.slot_for_new_row(real)
        };
        self.owner[slot] = Some(real);
        self.last_used[slot] = self.clock;
        self.applied[slot] = self.swaps.len();
        self.slot[real] = Some(slot);
        let shared_row = self.shared.and_then(|shared| shared.full_row(real));
        let source: &[f32] = match (shared_row, self.shared) {
            (Some(row), _) => row,
            // Another fit is computing the shared kernel: this row is computed here.
            (None, Some(shared)) => {
                self.computed.resize(shared.full.n_train(), 0.0);
                kernel_row(
                    shared.full,
                    shared.rows[real],
                    self.gamma,
                    &mut self.scratch,
                    &mut self.computed,
                );
                &self.computed
            }
            (None, None) => {
                self.computed.resize(self.dist.n_train(), 0.0);
                kernel_row(
                    self.dist,
                    real,
                    self.gamma,
                    &mut self.scratch,
                    &mut self.computed,
                );
                &self.computed
            }
        };
        let row = Row {
            source,
            runs: &self.runs,
            column_of: &self.column_of,
            column_reach: self.column_reach,
        };
        row.write(
            &mut self.storage,
            slot * self.sign.len(),
            &self.sign,
            self.permuted,
        );
    }

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
    fn slot_for_new_row(&mut self, real: usize) -> usize {
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
    fn leave_probation(&mut self, slot: usize) {
        if self.on_probation[slot] {
            self.on_probation[slot] = false;
            self.probation.retain(|&s| s != slot);
        }
    }

    /// Makes columns `i` and `j` present together (at least two rows are kept).
    pub fn ensure_pair(&mut self, i: usize, j: usize) {
        self.ensure(i);
        self.ensure(j);
        debug_assert!(self.slot[self.index[i] as usize].is_some());
    }

    /// Column `i` of Q, made present by [`KernelRows::ensure`]: entry k is
    /// `sign * row[k]` (both factors exact, so the product is the reference's f32).
    pub fn column(&self, i: usize) -> (f32, &[f32]) {
        let slot = self.slot[self.index[i] as usize].expect("column ensured");
        let width = self.width();
        (
            self.sign[i],
            &self.storage[slot * width..(slot + 1) * width],
        )
    }

    pub fn swap(&mut self, i: usize, j: usize) {
        self.sign.swap(i, j);
        self.index.swap(i, j);
        self.column_of.swap(i, j);
        self.qd.swap(i, j);
        self.permuted = true;
        self.swaps.push((i, j));
        if self.swaps.len() > 4 * self.width() {
            self.clear_swaps();
        }
    }

    /// Applies the swaps `slot` has not had, unless there are so many that computing
    /// the row again costs less (a swap touches two random entries, a new row
    /// computes all 2n); whether it did.
    fn catch_up(&mut self, slot: usize) -> bool {
        let width = self.width();
        let pending = &self.swaps[self.applied[slot]..];
        if 4 * pending.len() > width {
            return false;
        }
        let row = &mut self.storage[slot * width..(slot + 1) * width];
        for (a, b) in pending {
            row.swap(*a, *b);
        }
        self.applied[slot] = self.swaps.len();
        true
    }

    /// Empties the swap log: rows that can catch up do, the others are dropped.
    fn clear_swaps(&mut self) {
        for slot in 0..self.owner.len() {
            if !self.catch_up(slot) {
                if let Some(owner) = self.owner[slot].take() {
                    self.slot[owner] = None;
                    self.free.push(slot);
                    self.leave_probation(slot);
                }
            }
            self.applied[slot] = 0;
        }
        self.swaps.clear();
    }
}

impl Drop for KernelRows<'_> {
    fn drop(&mut self) {
        spare::keep(std::mem::take(&mut self.storage));
    }
}

/// A training row's number as the gathers read it.
fn row_number(row: usize) -> u32 {
    u32::try_from(row).expect("training rows fit u32")
}

/// `rows` as runs of consecutive numbers, in order.
fn runs(rows: &[usize]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for &j in rows {
        match runs.last_mut() {
            Some(run) if run.end == j => run.end += 1,
            _ => runs.push(j..j + 1),
        }
    }
    runs
}

/// Row `i` of the kernel of `dist`'s training rows at `gamma`, as f32, into `out`
/// (`scratch` holds the distances on the way when they are not kept).
pub(super) fn kernel_row(
    dist: &Distances,
    i: usize,
    gamma: f64,
    scratch: &mut Vec<f64>,
    out: &mut [f32],
) {
    super::exp::exp_scaled_f32(dist.train_row(i, scratch), -gamma, out);
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let (sign, column) = rows.column(7);
        let mut expected = vec![0.0; n];
        kernel_row(&dist, 7, 0.5, &mut Vec::new(), &mut expected);
        assert_eq!(sign, 1.0);
        assert_eq!(&column[..n], &expected[..]);
    }
}
