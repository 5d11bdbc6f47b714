//! Model quality: the coefficient of determination, as scikit-learn's `r2_score`
//! computes it, sums included, so that scores match it to the last bit.

/// A sum in numpy's order (`np.sum` of a contiguous float64 array): pairwise over
/// halves cut at multiples of 8, blocks of up to 128 summed in 8 interleaved lanes.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        return a.iter().fold(0.0, |acc, v| acc + v);
    }
    if n <= 128 {
        let mut r: [f64; 8] = a[..8].try_into().expect("8 values");
        let whole = n - n % 8;
        for block in a[8..whole].chunks_exact(8) {
            for (acc, v) in r.iter_mut().zip(block) {
                *acc += v;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &a[whole..] {
            res += v;
        }
        return res;
    }
    let half = n / 2;
    let half = half - half % 8;
    pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
}

/// R^2 = 1 - SSE/SST, SST about the mean of `y_true`. NaN when `y_true` is constant.
pub fn r_squared(y_true: &[f64], y_pred: &[f64]) -> f64 {
    assert_eq!(y_true.len(), y_pred.len(), "one prediction per target");
    let n = y_true.len() as f64;
    let mean = (0.0 + pairwise_sum(y_true)) / n;
    let residuals: Vec<f64> = y_true
        .iter()
        .zip(y_pred)
        .map(|(y, p)| (y - p) * (y - p))
        .collect();
    let deviations: Vec<f64> = y_true.iter().map(|y| (y - mean) * (y - mean)).collect();
    let (sse, sst) = (pairwise_sum(&residuals), pairwise_sum(&deviations));
    if sst == 0.0 {
        return f64::NAN;
    }
    1.0 - sse / sst
}

#[cfg(test)]
mod tests {
    use super::r_squared;

    #[test]
    fn matches_the_definition() {
        assert_eq!(r_squared(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
        assert_eq!(r_squared(&[1.0, 2.0, 3.0], &[2.0, 2.0, 2.0]), 0.0);
        // scikit-learn: r2_score([3, -0.5, 2, 7], [2.5, 0.0, 2, 8]) == 0.9486081370449679
        let r2 = r_squared(&[3.0, -0.5, 2.0, 7.0], &[2.5, 0.0, 2.0, 8.0]);
        assert!((r2 - 0.9486081370449679).abs() < 1e-15);
        assert!(r_squared(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn sums_in_numpys_order() {
        use super::pairwise_sum;
        // np.sum(np.arange(1, 300) / 7) == 6407.142857142858; summed in order the
        // result is 6407.142857142857.
        let a: Vec<f64> = (1..300).map(|i| i as f64 / 7.0).collect();
        assert_eq!(pairwise_sum(&a), 6407.142857142858);
        assert_eq!(pairwise_sum(&[1.0, 2.0]), 3.0);
    }
}
