//! The kernel the fits of one trial share (see [`svr_exact::SharedKernel`]).

use std::sync::Arc;

use svr_exact as exact;

use super::Trainer;
use crate::model::params::TrialParams;

/// What the fits of one trial share: the exact engine's kernel of the training rows at
/// the trial's gamma, computed by whichever fit needs it first (the final fit and every
/// fold read the same entries), and the kernel values of their predictions, computed
/// by whichever fit predicts first. Empty for linfa-svm, without folds, or when the
/// whole kernel would not fit in `solver.max_fit_mib`; each fit then computes its own.
#[derive(Debug, Clone, Default)]
pub struct TrialKernel(Option<Arc<exact::SharedKernel>>);

impl Trainer {
    /// The kernel the fits of a trial at `params` share, to pass to [`Trainer::fit`] and
    /// each [`Trainer::fit_fold`].
    pub fn kernel_for(&self, params: &TrialParams) -> TrialKernel {
        match &self.distances {
            Some(full)
                if !self.folds.is_empty()
                    && exact::SharedKernel::bytes_for(full.n_train())
                        <= self.solver.budget_bytes() =>
            {
                TrialKernel(Some(Arc::new(exact::SharedKernel::new(
                    full,
                    params.gamma(),
                ))))
            }
            _ => TrialKernel::default(),
        }
    }

    /// What a fit on `rows` of the training set shares of `kernel`.
    pub(super) fn sharing<'a>(
        &'a self,
        kernel: &'a TrialKernel,
        rows: &'a [usize],
    ) -> Option<exact::Shared<'a>> {
        Some(exact::Shared {
            kernel: kernel.0.as_deref()?,
            full: self.distances.as_ref()?,
            rows,
        })
    }
}
