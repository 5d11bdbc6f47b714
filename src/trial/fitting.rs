//! A trial's fits on the cores: the fit on all training rows and the cross-validation
//! folds go to the fit queue as one group, which wakes the trial once.

use tokio_util::sync::CancellationToken;

use super::cores;
use super::trainer::{CvScore, FitError, FitOutcome, Trainer};
use super::Pipeline;
use crate::model::catch_panic;
use crate::model::params::TrialParams;

/// A fit to run on a core, given the trainer and the token that stops it.
type Work<T> = Box<dyn FnOnce(&Trainer, &CancellationToken) -> Result<T, FitError> + Send>;

/// What a trial's fits give: the fit on all training rows, or a fold's score and time.
enum Fitted {
    Whole(FitOutcome),
    Fold(f64, f64),
}

impl Pipeline {
    /// The trial's fit and its cross-validation folds, all at once on the cores. The
    /// first failure ends the others.
    pub(super) async fn fit_with_cv(
        &self,
        params: TrialParams,
        cancel: &CancellationToken,
    ) -> Result<(FitOutcome, Option<CvScore>), FitError> {
        let stop = cancel.child_token();
        let kernel = self.trainer.kernel_for(&params);
        let shared = kernel.clone();
        let mut works: Vec<Work<Fitted>> = vec![Box::new(move |t, token| {
            t.fit(&params, &shared, token).map(Fitted::Whole)
        })];
        works.extend((0..self.trainer.n_folds()).map(|k| -> Work<Fitted> {
            let shared = kernel.clone();
            Box::new(move |t, token| {
                t.fit_fold(k, &params, &shared, token)
                    .map(|(score, secs)| Fitted::Fold(score, secs))
            })
        }));
        let fitted = self.on_cores(&stop, works).await;
        // Folds still running after a failure stop at their next check.
        stop.cancel();
        let mut fitted = fitted?.into_iter();
        let Some(Fitted::Whole(outcome)) = fitted.next() else {
            unreachable!("the whole fit comes first");
        };
        let scores: Vec<(f64, f64)> = fitted
            .map(|f| match f {
                Fitted::Fold(score, secs) => (score, secs),
                Fitted::Whole(_) => unreachable!("one whole fit"),
            })
            .collect();
        let cv = (!scores.is_empty()).then(|| CvScore::of(&scores));
        Ok((outcome, cv))
    }

    /// Runs each of `works` on a blocking thread once a core is free; their results in
    /// order once all have finished, or the first failure as soon as one fails (the
    /// others go on until `cancel` stops them). At cancellation the exact engine stops
    /// within about a thousand solver iterations; linfa-svm cannot be interrupted, so
    /// the trial stops waiting for it and its thread finishes unobserved.
    async fn on_cores<T: Send + 'static>(
        &self,
        cancel: &CancellationToken,
        works: Vec<Work<T>>,
    ) -> Result<Vec<T>, FitError> {
        let jobs = works
            .into_iter()
            .map(|work| -> cores::GroupJob<T, FitError> {
                let (trainer, token) = (self.trainer.clone(), cancel.clone());
                Box::new(move || {
                    if token.is_cancelled() {
                        return Err(FitError::Cancelled);
                    }
                    // The engines catch their own panics; this keeps the queue's thread
                    // alive should anything else in the work panic.
                    catch_panic(|| work(&trainer, &token))
                        .unwrap_or_else(|message| Err(FitError::Panicked(message)))
                })
            })
            .collect();
        // One fit per core: fits beyond that wait in the queue, while others write.
        let all = self.cores.submit_all(jobs);
        tokio::select! {
            fitted = all => fitted.unwrap_or(Err(FitError::Cancelled)),
            _ = cancel.cancelled() => Err(FitError::Cancelled),
        }
    }
}
