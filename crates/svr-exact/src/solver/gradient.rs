//! The gradient's updates after a step on a pair of variables: G over the active
//! variables, and G_bar's moves for a variable that reached or left its upper bound.
//! Each entry is updated by the reference's operations in its order.

use crate::wide::widest;

widest! {
    /// `G += Q_i delta_i + Q_j delta_j`, each column given as (row, sign, delta).
    pub(super) fn add_pair_step(g: &mut [f64], i: (&[f32], f32, f64), j: (&[f32], f32, f64)) {
        let ((row_i, sign_i, delta_i), (row_j, sign_j, delta_j)) = (i, j);
        // The reference's Q_ik delta_i is (sign_i row_i[k]) delta_i; with the sign +-1
        // that is row_i[k] (sign_i delta_i) to the bit, one multiplication fewer.
        let (delta_i, delta_j) = (f64::from(sign_i) * delta_i, f64::from(sign_j) * delta_j);
        for ((g, q_i), q_j) in g.iter_mut().zip(row_i).zip(row_j) {
            *g += f64::from(*q_i) * delta_i + f64::from(*q_j) * delta_j;
        }
    }
}

widest! {
    /// [`add_pair_step`], and G_bar's moves for both columns (`G_bar += c_i Q_i`, then
    /// `+= c_j Q_j`, each c the column's [`move_factor`]), in one pass. Each entry sees
    /// the operations of the two loops in their order.
    pub(super) fn add_pair_step_moving_both(
        g: &mut [f64],
        g_bar: &mut [f64],
        i: (&[f32], f32, f64, f64),
        j: (&[f32], f32, f64, f64),
    ) {
        let ((row_i, sign_i, delta_i, c_i), (row_j, sign_j, delta_j, c_j)) = (i, j);
        let (delta_i, delta_j) = (f64::from(sign_i) * delta_i, f64::from(sign_j) * delta_j);
        let columns = row_i.iter().zip(row_j);
        for ((g, g_bar), (q_i, q_j)) in g.iter_mut().zip(g_bar).zip(columns) {
            let (q_i, q_j) = (f64::from(*q_i), f64::from(*q_j));
            *g += q_i * delta_i + q_j * delta_j;
            *g_bar = *g_bar + c_i * q_i + c_j * q_j;
        }
    }
}

widest! {
    /// G_bar's moves for two columns, `G_bar += c_i Q_i`, then `+= c_j Q_j`, in one pass.
    pub(super) fn move_two_columns(g_bar: &mut [f64], i: (&[f32], f64), j: (&[f32], f64)) {
        let ((row_i, c_i), (row_j, c_j)) = (i, j);
        for (g_bar, (q_i, q_j)) in g_bar.iter_mut().zip(row_i.iter().zip(row_j)) {
            *g_bar = *g_bar + c_i * f64::from(*q_i) + c_j * f64::from(*q_j);
        }
    }
}

/// The factor of column k in G_bar's move, `G_bar += factor Q_k`: `C` times the column's
/// sign (`C (sign row[k])` is `(C sign) row[k]` to the bit, the sign being +-1), negated when
/// k left its upper bound (the reference's `G_bar -= C Q_k`, which adding the negated
/// product is to the bit).
pub(super) fn move_factor(c: f64, sign: f32, was_upper: bool) -> f64 {
    let c = c * f64::from(sign);
    if was_upper {
        -c
    } else {
        c
    }
}

widest! {
    /// `G_bar += factor Q_k`, `factor` being k's [`move_factor`].
    pub(super) fn move_column(g_bar: &mut [f64], row: &[f32], factor: f64) {
        for (g, q) in g_bar.iter_mut().zip(row) {
            *g += factor * f64::from(*q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns of every sign and size, zeros of both signs among them.
    fn columns(len: usize, seed: u32) -> (Vec<f32>, Vec<f32>, Vec<f64>) {
        let mut state = 0x9e37_79b9_u32 ^ seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let mut value = |scale: f32| match next() % 7 {
            0 => 0.0,
            1 => -0.0,
            k => (next() % 10_000) as f32 / 9_999.0 * scale * if k % 2 == 0 { 1.0 } else { -1.0 },
        };
        let row_i = (0..len).map(|_| value(1.0)).collect();
        let row_j = (0..len).map(|_| value(1.0)).collect();
        let g_bar = (0..len).map(|_| f64::from(value(3e3)) / 7.0).collect();
        (row_i, row_j, g_bar)
    }

    /// The pass that makes both moves (and the gradient's step over the active part)
    /// leaves every entry as the two moves and the step one after the other do.
    #[test]
    fn both_moves_in_one_pass_are_the_moves_one_after_the_other() {
        for (len, active) in [(706, 706), (706, 413), (37, 0), (37, 36), (5, 3)] {
            for (was_upper_i, was_upper_j) in [(true, false), (false, true), (true, true)] {
                let (row_i, row_j, g_bar) = columns(len, len as u32 * 31 + active as u32);
                let g: Vec<f64> = g_bar.iter().map(|v| v * 0.37 - 2.0).collect();
                let (c, sign_i, sign_j, delta_i, delta_j) = (1633.7, -1.0f32, 1.0f32, 0.3, -1.1e-3);

                let (mut g_seq, mut g_bar_seq) = (g.clone(), g_bar.clone());
                add_pair_step(
                    &mut g_seq[..active],
                    (&row_i[..active], sign_i, delta_i),
                    (&row_j[..active], sign_j, delta_j),
                );
                let c_i = move_factor(c, sign_i, was_upper_i);
                let c_j = move_factor(c, sign_j, was_upper_j);
                move_column(&mut g_bar_seq, &row_i, c_i);
                move_column(&mut g_bar_seq, &row_j, c_j);

                let (mut g_one, mut g_bar_one) = (g.clone(), g_bar.clone());
                let (g_bar_active, g_bar_rest) = g_bar_one.split_at_mut(active);
                add_pair_step_moving_both(
                    &mut g_one[..active],
                    g_bar_active,
                    (&row_i[..active], sign_i, delta_i, c_i),
                    (&row_j[..active], sign_j, delta_j, c_j),
                );
                move_two_columns(g_bar_rest, (&row_i[active..], c_i), (&row_j[active..], c_j));

                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&g_one), bits(&g_seq), "G, {len} {active}");
                assert_eq!(bits(&g_bar_one), bits(&g_bar_seq), "G_bar, {len} {active}");
            }
        }
    }
}
