//! Model quality: the coefficient of determination, as scikit-learn's `r2_score`.

/// R^2 = 1 - SSE/SST, SST about the mean of `y_true`. NaN when `y_true` is constant.
pub fn r_squared(y_true: &[f64], y_pred: &[f64]) -> f64 {
    assert_eq!(y_true.len(), y_pred.len(), "one prediction per target");
    let n = y_true.len() as f64;
    let mean = y_true.iter().sum::<f64>() / n;
    let sse: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(y, p)| (y - p) * (y - p))
        .sum();
    let sst: f64 = y_true.iter().map(|y| (y - mean) * (y - mean)).sum();
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
}
