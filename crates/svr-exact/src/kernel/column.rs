//! A column of Q as the solver reads it: a kept row in the solver's order, or, while no
//! swap has moved a variable, the trial's shared kernel row read where it lies, in
//! parts (the fit's runs of it, then the same runs negated).

use std::ops::Range;

/// Column i of Q: entry k is `sign` times [`Column::get`]`(k)`.
#[derive(Clone, Copy)]
pub struct Column<'a> {
    pub sign: f32,
    values: Values<'a>,
}

#[derive(Clone, Copy)]
enum Values<'a> {
    /// A kept row: every variable's entry, in the solver's order, signed by label.
    Kept(&'a [f32]),
    /// The shared kernel's row: variable k below `half` reads the k-th column of the
    /// runs, variable `half + k` the same column negated (its label is -1).
    Shared {
        row: &'a [f32],
        runs: &'a [Range<usize>],
        half: usize,
    },
}

/// A part of a column over consecutive variables: its values, and whether they are to
/// be negated (a product by -1, exact, so folded into the other factor).
pub type Part<'a> = (&'a [f32], bool);

impl<'a> Column<'a> {
    pub(super) fn kept(sign: f32, row: &'a [f32]) -> Column<'a> {
        Column {
            sign,
            values: Values::Kept(row),
        }
    }

    /// Column of the shared kernel's `row`, over a fit's `runs` of it (at most two: the
    /// rows before and after a fold's test rows).
    pub(super) fn shared(sign: f32, row: &'a [f32], runs: &'a [Range<usize>]) -> Column<'a> {
        assert!(runs.len() <= 2 && runs.iter().all(|run| !run.is_empty()));
        let half = runs.iter().map(ExactSizeIterator::len).sum();
        Column {
            sign,
            values: Values::Shared { row, runs, half },
        }
    }

    /// Entry `k` before the sign: the kept row's value, as stored.
    #[inline]
    pub fn get(&self, k: usize) -> f32 {
        match self.values {
            Values::Kept(row) => row[k],
            Values::Shared { .. } => {
                let (values, negated) = self.part(k..k + 1);
                if negated {
                    -values[0]
                } else {
                    values[0]
                }
            }
        }
    }

    /// The variables where a part ends and the next begins, in order.
    fn boundaries(&self) -> impl Iterator<Item = usize> + Clone {
        let (first, half) = match self.values {
            Values::Kept(_) => (None, None),
            Values::Shared { runs, half, .. } => (runs.get(1).map(|_| runs[0].len()), Some(half)),
        };
        first
            .into_iter()
            .chain(half)
            .chain(first.zip(half).map(|(first, half)| half + first))
    }

    /// The values of `vars`, which lie within one part.
    #[inline]
    fn part(&self, vars: Range<usize>) -> Part<'a> {
        match self.values {
            Values::Kept(row) => (&row[vars], false),
            Values::Shared { row, runs, half } => {
                let negated = vars.start >= half;
                let mut at = vars.start - if negated { half } else { 0 };
                for run in runs {
                    if at < run.len() {
                        let start = run.start + at;
                        return (&row[start..start + vars.len()], negated);
                    }
                    at -= run.len();
                }
                unreachable!("variables past the column")
            }
        }
    }

    /// Calls `each` on `vars` cut where either column's parts change: each piece's
    /// variables and the two columns' parts over them, in order. Two columns of one
    /// fit read from the shared kernel have the same parts, and a kept one has one,
    /// so the cuts are those of either column read from the shared kernel.
    #[inline]
    pub fn pieces(
        i: &Column<'a>,
        j: &Column<'a>,
        vars: Range<usize>,
        mut each: impl FnMut(Range<usize>, Part<'a>, Part<'a>),
    ) {
        let mut piece = |start: usize, end: usize| {
            each(start..end, i.part(start..end), j.part(start..end));
        };
        let parted = match (i.values, j.values) {
            // Kept columns (past a swap, or past a fit's first asks): one piece.
            (Values::Kept(_), Values::Kept(_)) => return piece(vars.start, vars.end),
            (Values::Shared { .. }, _) => i,
            _ => j,
        };
        let mut start = vars.start;
        for cut in parted.boundaries() {
            if vars.start < cut && cut < vars.end {
                piece(start, cut);
                start = cut;
            }
        }
        piece(start, vars.end);
    }

    /// Calls `each` on `vars` cut where the column's parts change, with its part over
    /// each piece.
    #[inline]
    pub fn parts(&self, vars: Range<usize>, mut each: impl FnMut(Range<usize>, Part<'a>)) {
        Column::pieces(self, self, vars, |vars, part, _| each(vars, part));
    }
}

/// `sign` negated where the part is.
pub fn signed(sign: f32, negated: bool) -> f32 {
    if negated {
        -sign
    } else {
        sign
    }
}
