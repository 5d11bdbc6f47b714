//! Cross-validation: scikit-learn's `KFold(n_splits)` without shuffling over the
//! training rows in data-set order, as `cross_val_score(SVR(...), X_train, y_train)`
//! scores a regressor. Each fold's arrays (and the exact engine's distances) depend
//! only on the data set, so they are made once and reused by every trial.

use ndarray::{Array1, Array2, Axis};

use svr_exact::Distances;

/// One fold: the model fits on `train` and is scored on `test`.
#[derive(Debug)]
pub(super) struct Fold {
    /// The fold's training and test rows, as positions in the whole training set.
    pub train_rows: Vec<usize>,
    pub test_rows: Vec<usize>,
    pub train_x: Array2<f64>,
    pub train_y: Array1<f64>,
    pub test_x: Array2<f64>,
    pub test_y: Vec<f64>,
    /// The exact engine's per-data-set work; `None` for linfa-svm.
    pub distances: Option<Distances>,
}

/// The test rows of each of `k` folds over `n` rows, as `KFold(k)` cuts them: in
/// order, the first `n % k` folds one row longer.
pub fn kfold_test_ranges(n: usize, k: usize) -> Vec<std::ops::Range<usize>> {
    let mut start = 0;
    (0..k)
        .map(|fold| {
            let len = n / k + usize::from(fold < n % k);
            let range = start..start + len;
            start += len;
            range
        })
        .collect()
}

impl Fold {
    /// The folds of `x`/`y` (the training rows), each with distances when `budget`
    /// is given.
    pub fn split(x: &Array2<f64>, y: &Array1<f64>, k: usize, budget: Option<u128>) -> Vec<Fold> {
        kfold_test_ranges(x.nrows(), k)
            .into_iter()
            .map(|test| {
                let train: Vec<usize> = (0..x.nrows()).filter(|i| !test.contains(i)).collect();
                let test: Vec<usize> = test.collect();
                let train_x = x.select(Axis(0), &train);
                let test_x = x.select(Axis(0), &test);
                let distances = budget.map(|b| Distances::new(&train_x, &test_x, b));
                Fold {
                    train_y: y.select(Axis(0), &train),
                    train_rows: train,
                    test_y: test.iter().map(|&i| y[i]).collect(),
                    test_rows: test,
                    train_x,
                    test_x,
                    distances,
                }
            })
            .collect()
    }
}

/// A trial's cross-validated score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CvScore {
    /// Mean of the folds' R^2.
    pub mean: f64,
    /// Their population standard deviation, as scikit-learn's search reports it.
    pub std: f64,
    pub folds: usize,
    /// The folds' fit and prediction time, summed.
    pub ms: f64,
}

impl CvScore {
    pub fn of(scores: &[(f64, f64)]) -> CvScore {
        let n = scores.len() as f64;
        let mean = scores.iter().map(|s| s.0).sum::<f64>() / n;
        let var = scores.iter().map(|s| (s.0 - mean).powi(2)).sum::<f64>() / n;
        CvScore {
            mean,
            std: var.sqrt(),
            folds: scores.len(),
            ms: scores.iter().map(|s| s.1).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_cut_as_kfold_cuts_them() {
        // KFold(5) over 353 rows: 71, 71, 71, 70, 70.
        let lens: Vec<usize> = kfold_test_ranges(353, 5).iter().map(|r| r.len()).collect();
        assert_eq!(lens, [71, 71, 71, 70, 70]);
        let ranges = kfold_test_ranges(10, 3);
        assert_eq!(ranges, [0..4, 4..7, 7..10]);
    }

    #[test]
    fn the_score_is_mean_and_population_std() {
        let s = CvScore::of(&[(0.5, 1.0), (0.7, 2.0)]);
        assert!((s.mean - 0.6).abs() < 1e-15);
        assert!((s.std - 0.1).abs() < 1e-15);
        assert_eq!((s.folds, s.ms), (2, 3.0));
    }
}
