//! Working-set selection: the variable that most violates the optimality conditions,
//! then its partner by the second-order gain, ties going to the last index as in the
//! reference. Both scans run eight or four variables at a time where the CPU has
//! AVX-512 or AVX2, each lane keeping the best value and the last index reaching it;
//! the lanes are then merged (the best value, and among lanes holding it the highest
//! index), which is the scan's result in order. Every value is computed by the same
//! operations as the scalar scan.

use super::{Bound, Smo, TAU};

/// A scan's state: the best value so far and the last index reaching it.
type Best = (f64, Option<usize>);

/// What the partner scan reads besides the variables' state.
#[derive(Clone, Copy)]
struct Partner<'a> {
    gmax: f64,
    qd_i: f64,
    y_i: f64,
    sign_i: f32,
    /// Column i of Q, unsigned (entry k is `sign_i` times its value).
    row_i: RowI<'a>,
    qd: &'a [f64],
}

/// Column i of Q over the scanned variables, as parts of consecutive variables, each
/// its first variable, its values and whether they are to be negated: a kept column
/// is one part, a column read in place from the shared kernel up to four.
#[derive(Clone, Copy)]
struct RowI<'a>(&'a [(usize, &'a [f32], bool)]);

/// Reads row i in order of variables, a block at a time.
struct Cursor<'a> {
    parts: &'a [(usize, &'a [f32], bool)],
    /// The part holding the last block read, where its values would begin if it
    /// began at variable 0 (so that variable t's value is at `base + t`), the
    /// variable it ends before, and whether it is negated.
    at: usize,
    base: *const f32,
    end: usize,
    negated: bool,
    /// A block straddling two parts, assembled.
    straddle: [f32; 8],
}

impl<'a> Cursor<'a> {
    fn new(row: RowI<'a>) -> Cursor<'a> {
        let mut cursor = Cursor {
            parts: row.0,
            at: 0,
            base: std::ptr::null(),
            end: 0,
            negated: false,
            straddle: [0.0; 8],
        };
        cursor.enter(0);
        cursor
    }

    /// Makes part `at` the current one (none past the last).
    fn enter(&mut self, at: usize) {
        self.at = at;
        if let Some(&(start, values, negated)) = self.parts.get(at) {
            self.base = values.as_ptr().wrapping_sub(start);
            self.end = start + values.len();
            self.negated = negated;
        }
    }

    /// The values of variables `t..t + count` (`count` at most 8, `t` not before the
    /// last block's, the variables within the column): where they lie and whether to
    /// negate them. A block straddling two parts is assembled, negations applied; the
    /// pointer is valid until the next call. Without a column (no violator), no block
    /// holds a candidate, so the pointer is never read.
    #[inline(always)]
    fn block(&mut self, t: usize, count: usize) -> (*const f32, bool) {
        if t + count <= self.end {
            return (self.base.wrapping_add(t), self.negated);
        }
        self.past_part(t, count)
    }

    /// [`Cursor::block`] for a block not within the current part.
    #[cold]
    #[inline(never)]
    fn past_part(&mut self, t: usize, count: usize) -> (*const f32, bool) {
        while self.at + 1 < self.parts.len() && self.end <= t {
            self.enter(self.at + 1);
        }
        if t + count <= self.end || self.parts.is_empty() {
            return (self.base.wrapping_add(t), self.negated);
        }
        // The block's variables from the current part on, part by part.
        let mut k = t;
        for &(start, values, negated) in &self.parts[self.at..] {
            let stop = (start + values.len()).min(t + count);
            for (out, value) in self.straddle[k - t..stop - t]
                .iter_mut()
                .zip(&values[k - start..])
            {
                *out = if negated { -value } else { *value };
            }
            k = stop;
            if k == t + count {
                break;
            }
        }
        (self.straddle.as_ptr(), false)
    }

    /// The value of variable `t` (after the last block's), negation applied.
    #[inline(always)]
    fn value(&mut self, t: usize) -> f32 {
        let (at, negated) = self.block(t, 1);
        // SAFETY: `block` points at the value of a variable of the column.
        let value = unsafe { *at };
        if negated {
            -value
        } else {
            value
        }
    }
}

impl Smo<'_> {
    /// The pair (i, j) to optimize next, or `None` when the stopping criterion holds.
    pub(super) fn select_working_set(&mut self) -> Option<(usize, usize)> {
        let active = self.active_size;
        let (y, status, g) = (&self.y[..active], &self.status[..active], &self.g[..active]);
        let masks = self.masks.bytes();
        let (gmax, gmax_idx) = max_violator(y, status, g, masks);
        if let Some(i) = gmax_idx {
            self.q.ensure(i);
        }
        let (qd_i, y_i) = gmax_idx.map_or((0.0, 0.0), |i| (self.q.qd(i), f64::from(self.y[i])));
        // Without an i no gradient difference is positive, so the column is not read.
        let column = gmax_idx.map(|i| self.q.column(i));
        let mut parts = [(0, &[][..], false); 4];
        let mut count = 0;
        if let Some(column) = &column {
            column.parts(0..active, |vars, (values, negated)| {
                parts[count] = (vars.start, values, negated);
                count += 1;
            });
        }
        let partner = Partner {
            gmax,
            qd_i,
            y_i,
            sign_i: column.map_or(0.0, |c| c.sign),
            row_i: RowI(&parts[..count]),
            qd: self.q.qd_all(),
        };
        let (gmax2, (_, gmin_idx)) = best_partner(
            &self.y[..active],
            &self.status[..active],
            &self.g[..active],
            partner,
            self.masks.bytes(),
        );
        if gmax + gmax2 < self.eps {
            return None;
        }
        Some((gmax_idx?, gmin_idx?))
    }
}

/// The scan over `g`'s variables; `masks` are the solver's `ScanMasks` bytes.
// Only the eight-lane scans read the masks.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn max_violator(y: &[i8], status: &[Bound], g: &[f64], masks: &[u8]) -> Best {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512() {
            // SAFETY: AVX-512F, BW, VL and DQ were detected.
            return unsafe { avx512::max_violator(y, status, g, masks) };
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected.
            return unsafe { avx2::max_violator(y, status, g) };
        }
    }
    max_violator_from(y, status, g, 0, (f64::NEG_INFINITY, None))
}

/// The scan over `from..`, continuing from `best`.
fn max_violator_from(y: &[i8], status: &[Bound], g: &[f64], from: usize, best: Best) -> Best {
    let (mut gmax, mut gmax_idx) = best;
    for t in from..g.len() {
        if y[t] == 1 {
            if status[t] != Bound::Upper && -g[t] >= gmax {
                gmax = -g[t];
                gmax_idx = Some(t);
            }
        } else if status[t] != Bound::Lower && g[t] >= gmax {
            gmax = g[t];
            gmax_idx = Some(t);
        }
    }
    (gmax, gmax_idx)
}

/// `gmax2` and (the least objective change, the last index reaching it).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn best_partner(y: &[i8], status: &[Bound], g: &[f64], p: Partner, masks: &[u8]) -> (f64, Best) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512() {
            // SAFETY: AVX-512F, BW, VL and DQ were detected.
            return unsafe { avx512::best_partner(y, status, g, p, masks) };
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected.
            return unsafe { avx2::best_partner(y, status, g, p) };
        }
    }
    best_partner_from(
        y,
        status,
        g,
        p,
        0,
        (f64::NEG_INFINITY, (f64::INFINITY, None)),
    )
}

fn best_partner_from(
    y: &[i8],
    status: &[Bound],
    g: &[f64],
    p: Partner,
    from: usize,
    state: (f64, Best),
) -> (f64, Best) {
    let (mut gmax2, (mut obj_diff_min, mut gmin_idx)) = state;
    let mut row_i = Cursor::new(p.row_i);
    for j in from..g.len() {
        let (grad_diff, sign) = if y[j] == 1 {
            if status[j] == Bound::Lower {
                continue;
            }
            if g[j] >= gmax2 {
                gmax2 = g[j];
            }
            (p.gmax + g[j], -1.0)
        } else {
            if status[j] == Bound::Upper {
                continue;
            }
            if -g[j] >= gmax2 {
                gmax2 = -g[j];
            }
            (p.gmax - g[j], 1.0)
        };
        if grad_diff > 0.0 {
            let q_ij = p.sign_i * row_i.value(j);
            let quad_coef = p.qd_i + p.qd[j] + sign * 2.0 * p.y_i * f64::from(q_ij);
            let obj_diff = if quad_coef > 0.0 {
                -(grad_diff * grad_diff) / quad_coef
            } else {
                -(grad_diff * grad_diff) / TAU
            };
            if obj_diff <= obj_diff_min {
                gmin_idx = Some(j);
                obj_diff_min = obj_diff;
            }
        }
    }
    (gmax2, (obj_diff_min, gmin_idx))
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512dq")
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// The in-order scan's result from lanes that each kept their best value and the last
/// index reaching it (`< 0`: none): the best value (`better(a, b)`: a beats b) and,
/// among the lanes holding it, the highest index.
#[cfg(target_arch = "x86_64")]
fn merge_lanes(values: &[f64], indices: &[f64], start: f64, better: fn(f64, f64) -> bool) -> Best {
    let mut best: Best = (start, None);
    for (value, index) in values.iter().zip(indices) {
        if *index < 0.0 {
            continue;
        }
        let index = *index as usize;
        let wins = match best {
            (_, None) => true,
            (b, Some(bi)) => better(*value, b) || (*value == b && index > bi),
        };
        if wins {
            best = (*value, Some(index));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::super::masks::ScanMasks;
    use super::*;

    /// Random solver states with many ties, scanned both ways.
    #[test]
    fn the_vector_scans_choose_what_the_scalar_scans_choose() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        for round in 0..3000 {
            let n = 1 + next(120) as usize;
            let y: Vec<i8> = (0..n).map(|_| if next(2) == 0 { 1 } else { -1 }).collect();
            let status: Vec<Bound> = (0..n)
                .map(|_| [Bound::Lower, Bound::Upper, Bound::Free][next(3) as usize])
                .collect();
            // Few distinct values, so that ties are common; some zeros of both signs, and
            // values an ulp apart, so that gains differ in their last bits.
            let ulp = f64::EPSILON;
            let values = [
                -1.0,
                -0.5,
                0.0,
                -0.0,
                0.25,
                0.5,
                1.0,
                2.0,
                -1.0 - ulp,
                -0.5 * (1.0 + ulp),
                0.5 * (1.0 + ulp),
            ];
            let g: Vec<f64> = (0..n)
                .map(|_| values[next(values.len() as u64) as usize])
                .collect();
            let qd: Vec<f64> = (0..n)
                .map(|_| [1.0, 0.5, 0.0, 0.3][next(4) as usize])
                .collect();
            let row_i: Vec<f32> = (0..n)
                .map(|_| [0.5, -0.5, 1.0, 0.0, -0.0, 0.1][next(6) as usize])
                .collect();
            // The scans see the first `active` variables, as the solver's after
            // shrinking; the masks cover all of them, so the last block's bits beyond
            // `active` may be set.
            let active = 1 + next(n as u64) as usize;
            // The column as one part, or cut in up to four at random places (blocks
            // straddling them), some parts stored negated as a column read in place is.
            let mut cuts: Vec<usize> = (0..next(4)).map(|_| next(active as u64) as usize).collect();
            cuts.extend([0, active]);
            cuts.sort_unstable();
            cuts.dedup();
            let stored: Vec<(usize, Vec<f32>, bool)> = cuts
                .windows(2)
                .map(|w| {
                    let negated = next(2) == 0;
                    let values = row_i[w[0]..w[1]]
                        .iter()
                        .map(|v| if negated { -v } else { *v });
                    (w[0], values.collect(), negated)
                })
                .collect();
            let parts: Vec<(usize, &[f32], bool)> = stored
                .iter()
                .map(|(start, values, negated)| (*start, &values[..], *negated))
                .collect();
            let masks = ScanMasks::new(&y, &status);
            let (y, status, g) = (&y[..active], &status[..active], &g[..active]);
            let first = max_violator_from(y, status, g, 0, (f64::NEG_INFINITY, None));
            // Without a violator the solver passes an empty column, never read.
            let no_violator = round % 7 == 0;
            let partner = Partner {
                gmax: if no_violator {
                    f64::NEG_INFINITY
                } else {
                    first.0
                },
                qd_i: qd[0],
                y_i: f64::from(y[0]),
                sign_i: f32::from(y[0]),
                row_i: RowI(if no_violator {
                    &[]
                } else {
                    &[(0, &row_i, false)]
                }),
                qd: &qd,
            };
            let start = (f64::NEG_INFINITY, (f64::INFINITY, None));
            let slow = best_partner_from(y, status, g, partner, 0, start);
            let in_parts = Partner {
                row_i: RowI(if no_violator { &[] } else { &parts }),
                ..partner
            };
            let mut scans = vector_paths(y, status, g, partner, masks.bytes());
            for (path, scan) in vector_paths(y, status, g, in_parts, masks.bytes()) {
                scans.push((path, scan));
            }
            let scalar = best_partner_from(y, status, g, in_parts, 0, start);
            scans.push(("scalar in parts", (first, scalar)));
            for (path, (violator, best)) in scans {
                assert_eq!(violator, first, "{path}, round {round}");
                assert_eq!(
                    violator.0.to_bits(),
                    first.0.to_bits(),
                    "{path}, round {round}"
                );
                assert_eq!(best.0, slow.0, "{path}, round {round}");
                assert_eq!(best.1 .1, slow.1 .1, "{path}, round {round}");
                assert_eq!(
                    best.1 .0.to_bits(),
                    slow.1 .0.to_bits(),
                    "{path}, round {round}"
                );
            }
        }
    }

    /// Two candidates of equal value in different blocks (scanned by different sets of
    /// lanes on eight lanes), over many denominators: the later one is chosen on every
    /// path, as the reference's `<=` chooses it.
    #[test]
    fn a_tie_in_a_later_block_is_chosen() {
        for k in 0..2000 {
            let d = 0.01 + 7.0 * f64::from(k) / 1999.0;
            let n = 16;
            let candidates = [3, 13];
            let y = vec![1i8; n];
            let status: Vec<Bound> = (0..n)
                .map(|t| {
                    if candidates.contains(&t) {
                        Bound::Upper
                    } else {
                        Bound::Lower
                    }
                })
                .collect();
            let g: Vec<f64> = (0..n)
                .map(|t| if candidates.contains(&t) { 1.5 } else { 0.0 })
                .collect();
            let qd: Vec<f64> = (0..n)
                .map(|t| if candidates.contains(&t) { d } else { 1.0 })
                .collect();
            let row_i = vec![0.0f32; n];
            let partner = Partner {
                gmax: 0.0,
                qd_i: 0.0,
                y_i: 1.0,
                sign_i: 1.0,
                row_i: RowI(&[(0, &row_i, false)]),
                qd: &qd,
            };
            let start = (f64::NEG_INFINITY, (f64::INFINITY, None));
            let slow = best_partner_from(&y, &status, &g, partner, 0, start);
            assert_eq!(slow.1 .1, Some(13));
            let masks = ScanMasks::new(&y, &status);
            for (path, (_, best)) in vector_paths(&y, &status, &g, partner, masks.bytes()) {
                assert_eq!(best.1, slow.1, "{path}, denominator {d}");
            }
        }
    }

    /// Both scans on every vector path this CPU has; `masks` are the [`ScanMasks`] of
    /// these variables and maybe more.
    #[allow(clippy::type_complexity)]
    // Elsewhere than on x86-64 the dispatched path is the only one.
    #[cfg_attr(not(target_arch = "x86_64"), allow(clippy::vec_init_then_push))]
    fn vector_paths(
        y: &[i8],
        status: &[Bound],
        g: &[f64],
        p: Partner,
        masks: &[u8],
    ) -> Vec<(&'static str, (Best, (f64, Best)))> {
        let mut paths = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected.
                let scans = unsafe {
                    (
                        avx2::max_violator(y, status, g),
                        avx2::best_partner(y, status, g, p),
                    )
                };
                paths.push(("avx2", scans));
            }
            if avx512() {
                // SAFETY: AVX-512F, BW, VL and DQ were detected.
                let scans = unsafe {
                    (
                        avx512::max_violator(y, status, g, masks),
                        avx512::best_partner(y, status, g, p, masks),
                    )
                };
                paths.push(("avx512", scans));
            }
        }
        paths.push((
            "dispatched",
            (
                max_violator(y, status, g, masks),
                best_partner(y, status, g, p, masks),
            ),
        ));
        paths
    }
}
