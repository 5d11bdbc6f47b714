//! The linfa-svm engine, kept selectable (`solver.engine = "linfa-svm"`) and as a
//! cross-check of the exact one. The only place that touches linfa types.

use linfa::prelude::*;
use linfa_svm::Svm;
use ndarray::{Array1, Array2};

use super::FitError;
use crate::model::params::TrialParams;

/// Fits on `train_x`/`train_y` and predicts `all`: predictions and support vectors.
pub(super) fn fit_predict(
    train_x: &Array2<f64>,
    train_y: &Array1<f64>,
    all: &Array2<f64>,
    params: &TrialParams,
    tolerance: f64,
) -> Result<(Vec<f64>, usize), FitError> {
    // - c_svr's epsilon must always be given: without it linfa trains with a loss
    //   tube of 0.1 rather than what was drawn.
    // - gaussian_kernel(w) is exp(-|x-y|^2 / w), so the width is 1/gamma.
    // - The default solver tolerance is 1e-7; scikit-learn's is 1e-3.
    // - shrinking(true) is one of the paths that panics in 0.8.1, and without it the
    //   results match scikit-learn's SVR to about 1e-5 in R^2.
    let rbf_width = 1.0 / params.gamma();
    let valid = Svm::<f64, f64>::params()
        .c_svr(params.c(), Some(params.epsilon()))
        .gaussian_kernel(rbf_width)
        .eps(tolerance)
        .shrinking(false)
        .check()
        .map_err(|e| FitError::Rejected(e.to_string()))?;
    // linfa-svm takes the targets' slice and panics on a strided view: `train_y` is
    // its own contiguous array.
    let train = DatasetBase::new(train_x.view(), train_y.view());
    let model = valid
        .fit(&train)
        .map_err(|e| FitError::Rejected(e.to_string()))?;
    let predictions = model.predict(all);
    Ok((predictions.to_vec(), model.nsupport()))
}
