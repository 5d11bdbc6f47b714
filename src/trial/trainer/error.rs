//! Every way a fit can fail to give a usable model, panics and timeouts included, as
//! one error a trial records.

/// Why a fit produced no usable model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("the engine rejected the parameters: {0}")]
    Rejected(String),
    #[error("the fit panicked: {0}")]
    Panicked(String),
    #[error("the model is unusable: {0}")]
    NonFinite(String),
    #[error("cancelled at shutdown")]
    Cancelled,
    #[error("stopped after {secs} s (solver.max_fit_secs) at {iterations} iterations")]
    TimedOut { secs: f64, iterations: usize },
    #[error("cross-validation fold {fold} of {folds}: {source}")]
    InFold {
        fold: usize,
        folds: usize,
        source: Box<FitError>,
    },
}

impl FitError {
    /// The same error, said of fold `k` (from 0) of `folds`.
    pub(super) fn in_fold(self, k: usize, folds: usize) -> FitError {
        match self {
            FitError::Cancelled => FitError::Cancelled,
            other => FitError::InFold {
                fold: k + 1,
                folds,
                source: Box::new(other),
            },
        }
    }
}
