//! The exact engine ([`svr_exact`]): libsvm's solver as scikit-learn runs it, stopped at
//! cancellation or a deadline, its predictions read from the trial's prediction kernel
//! where the fit shares one.

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{FitData, FitError, SolverSettings};
use crate::model::params::TrialParams;

/// Fits on `data`'s training rows and predicts its predicted rows: predictions and
/// support vectors. `others` are the data set's rows that are not training rows.
pub(super) fn fit_predict(
    distances: &svr_exact::Distances,
    data: FitData<'_>,
    params: &TrialParams,
    solver: SolverSettings,
    others: &[usize],
    cancel: &CancellationToken,
    deadline: Instant,
) -> Result<(Vec<f64>, usize), FitError> {
    let valid = svr_exact::SvrParams {
        gamma: params.gamma(),
        c: params.c(),
        epsilon: params.epsilon(),
        tolerance: solver.tolerance.get(),
    }
    .check()
    .map_err(FitError::Rejected)?;
    let y = data.train_y.as_slice().expect("gathered contiguous");
    let mut stop = || cancel.is_cancelled() || Instant::now() >= deadline;
    let model = valid
        .fit_sharing(distances, y, data.shared, &mut stop)
        .map_err(|stopped| {
            if cancel.is_cancelled() {
                FitError::Cancelled
            } else {
                FitError::TimedOut {
                    secs: solver.max_fit_secs.get().as_secs_f64(),
                    iterations: stopped.iterations,
                }
            }
        })?;
    let predictions = data
        .shared
        .and_then(|shared| shared.predict(&model, others, data.predicted))
        .unwrap_or_else(|| model.predict(distances));
    Ok((predictions, model.support.len()))
}
