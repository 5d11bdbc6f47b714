//! The kernel rows of one fit: f32, cached up to the budget and evicted least recently
//! used, as libsvm does, but kept in the solver's order of variables so that its loops
//! read them straight. Early in a fit that shares the trial's kernel, before any swap,
//! columns are read from the shared kernel where they lie instead (`column`).

use std::ops::Range;

mod column;
mod row;
mod slots;
mod spare;

use super::distances::Distances;
use super::shared::Shared;
pub use column::{signed, Column};
use row::Row;
use slots::REUSE_GAP;
pub(crate) use spare::spare_row_bytes;
pub use spare::KeepRows;

/// How many columns a fit sharing the trial's kernel reads in place, per variable,
/// before it keeps the columns it asks for. Reading a column in place saves copying
/// it but costs each step that reads it a few cuts: a diabetes trial of the default
/// ranges (most fits a few hundred steps) ran 7-10 % faster reading every column in
/// place, but the wide ranges' mean, long fits, 3-6 % slower; switching to kept
/// columns after 1 ask per variable left that mean within 3 % (3 per variable: the
/// same).
const IN_PLACE_ASKS_PER_VARIABLE: u64 = 1;

/// The columns of Q = [K -K; -K K] for one gamma, as the solver asks for them: kernel
/// rows computed on first use and kept as f32 (past the budget, rows asked for once
/// recycle a few slots and the least recently used of the others is evicted), each
/// laid out in the solver's current order of the 2n variables and signed by the
/// variable's label, so that a column of Q is a kept row times one sign, or, early in
/// a fit sharing the trial's kernel, the shared row's parts read in place
/// ([`Column`]).
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
        // The two variables of a training row share its diagonal entry.
        let diagonal: Vec<f64> = dist
            .diagonal
            .iter()
            .map(|d| super::exp::exp(-gamma * d))
            .collect();
        let qd = [diagonal.as_slice(), &diagonal].concat();
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
        // Early in a fit columns are read in place (the shared kernel computed if no
        // fit has begun to); past that, kept, as each step reading a column in place
        // costs more than copying it once, and a long fit reads its columns often.
        self.clock += 1;
        if self.clock <= IN_PLACE_ASKS_PER_VARIABLE * self.width() as u64
            && self.reads_in_place()
            && self.shared.is_some_and(|s| s.full_row(real).is_some())
        {
            return;
        }
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
                    &mut self.computed,
                );
                &self.computed
            }
            (None, None) => {
                self.computed.resize(self.dist.n_train(), 0.0);
                kernel_row(self.dist, real, self.gamma, &mut self.computed);
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

    /// Makes columns `i` and `j` present together (at least two rows are kept).
    pub fn ensure_pair(&mut self, i: usize, j: usize) {
        self.ensure(i);
        self.ensure(j);
    }

    /// Whether columns are read from the shared kernel where they lie, once it is
    /// computed: while no swap has moved a variable, for a fit whose training rows are
    /// at most two runs of the trial's (the final fit, a fold). Copying every column
    /// into a kept row was about a tenth of a diabetes trial (`perf record`).
    #[inline]
    fn reads_in_place(&self) -> bool {
        !self.permuted && self.runs.len() <= 2 && self.shared.is_some()
    }

    /// The shared kernel's row of training row `real`, when read in place.
    #[inline]
    fn in_place(&self, real: usize) -> Option<&'d [f32]> {
        if !self.reads_in_place() {
            return None;
        }
        self.shared?.full_row_if_computed(real)
    }

    /// Column `i` of Q, made present by [`KernelRows::ensure`]: entry k is
    /// `sign * get(k)` (both factors exact, so the product is the reference's f32).
    #[inline]
    pub fn column(&self, i: usize) -> Column<'_> {
        let real = self.index[i] as usize;
        if let Some(slot) = self.slot[real] {
            let width = self.width();
            return Column::kept(
                self.sign[i],
                &self.storage[slot * width..(slot + 1) * width],
            );
        }
        let row = self.in_place(real).expect("column ensured");
        Column::shared(self.sign[i], row, &self.runs)
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

/// Row `i` of the kernel of `dist`'s training rows at `gamma`, as f32, into `out`.
pub(super) fn kernel_row(dist: &Distances, i: usize, gamma: f64, out: &mut [f32]) {
    dist.kernel_row(i, 0, -gamma, out);
}
