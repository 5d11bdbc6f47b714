//! Fitting: an RBF epsilon-SVR on the training rows, predictions for all.
//!
//! Two engines: [`svr_exact`] (`exact.rs`), libsvm's solver as scikit-learn runs it,
//! cancellable at a deadline; and linfa-svm (`linfa.rs`, the only place that touches
//! linfa types).
//! [`Trainer`] keeps what a data set costs once, bounds a fit before it starts, and
//! turns every way a fit can go wrong, panics included, into a [`FitError`], so one
//! bad fit never takes the process down.

mod error;
mod exact;
mod folds;
mod linfa;
mod settings;
mod shared;

use std::sync::Arc;
use std::time::Instant;

use ndarray::{Array1, Array2, Axis};
use tokio_util::sync::CancellationToken;

pub use error::FitError;
pub use folds::{kfold_test_ranges, CvScore};
pub use settings::{Engine, SolverSettings};
pub use shared::TrialKernel;

use super::metrics::r_squared;
use crate::dataset::Dataset;
use crate::model::catch_panic;
use crate::model::params::TrialParams;

/// A fitted trial: predictions for every data point, in data set order.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOutcome {
    pub predictions: Vec<f64>,
    pub train_r2: f64,
    pub test_r2: f64,
    pub n_support: usize,
    pub fit_ms: f64,
}

/// The data set arranged for fitting, kept between trials.
#[derive(Debug)]
pub struct Trainer {
    dataset: Arc<Dataset>,
    train_x: Array2<f64>,
    // linfa-svm takes the targets' slice and panics on a strided view, so they are
    // gathered once into their own contiguous array.
    train_y: Array1<f64>,
    solver: SolverSettings,
    /// The exact engine's per-data-set work; `None` for linfa-svm.
    distances: Option<svr_exact::Distances>,
    /// 0..n: the whole training set's rows, as the shared kernel numbers them.
    all_rows: Vec<usize>,
    /// The data set's rows that are not training rows, and each data set row as the
    /// trial's prediction kernel numbers it: a training row by its position among the
    /// training rows (below n), another as n plus its position in `others`.
    others: Vec<usize>,
    trial_rows: Vec<usize>,
    /// Cross-validation folds of the training rows; empty when it is off.
    folds: Vec<folds::Fold>,
}

/// What one fit works on: the rows it learns from and those it predicts.
struct FitData<'a> {
    train_x: &'a Array2<f64>,
    train_y: &'a Array1<f64>,
    predict_x: &'a Array2<f64>,
    distances: Option<&'a svr_exact::Distances>,
    shared: Option<svr_exact::Shared<'a>>,
    /// The predicted rows, as the trial's prediction kernel numbers them.
    predicted: &'a [usize],
}

impl Trainer {
    /// Fails when the training set is larger than `solver.max_train_rows`, or its kernel
    /// than `solver.max_fit_mib`: a fit cannot be interrupted, so its cost is bounded
    /// here, before any fit starts.
    pub fn new(dataset: Arc<Dataset>, solver: SolverSettings) -> Result<Trainer, String> {
        let train: Vec<usize> = dataset.train_indices().collect();
        if train.len() > solver.max_train_rows.get() {
            return Err(format!(
                "{} training rows exceed solver.max_train_rows = {}",
                train.len(),
                solver.max_train_rows.get()
            ));
        }
        let fit_mib = solver.fit_bytes(train.len()).div_ceil(1 << 20);
        if solver.fit_bytes(train.len()) > solver.budget_bytes() {
            return Err(format!(
                "a fit on {} training rows needs about {fit_mib} MiB, over solver.max_fit_mib = {}",
                train.len(),
                solver.max_fit_mib.get()
            ));
        }
        let train_x = dataset.features().select(Axis(0), &train);
        let train_y = dataset.targets().select(Axis(0), &train);
        let distances = (solver.engine == Engine::Exact).then(|| {
            svr_exact::Distances::new(&train_x, dataset.features(), solver.budget_bytes())
        });
        let others: Vec<usize> = dataset.test_indices().collect();
        let mut trial_rows = vec![0; dataset.features().nrows()];
        for (t, row) in train.iter().enumerate() {
            trial_rows[*row] = t;
        }
        for (u, row) in others.iter().enumerate() {
            trial_rows[*row] = train.len() + u;
        }
        Ok(Trainer {
            dataset,
            all_rows: (0..train_x.nrows()).collect(),
            others,
            trial_rows,
            train_x,
            train_y,
            solver,
            distances,
            folds: Vec::new(),
        })
    }

    /// Adds `k`-fold cross-validation (`search.cv_folds`); 0 leaves it off. The folds
    /// share one more `solver.max_fit_mib` for the kernel rows their fits keep.
    pub fn with_folds(mut self, k: usize) -> Result<Trainer, String> {
        let n = self.train_x.nrows();
        if k == 0 {
            return Ok(self);
        }
        if k < 2 {
            return Err("search.cv_folds must be 0 (off) or at least 2".into());
        }
        // Every fold needs a test row, and a fit needs two rows.
        let needed = k.max(3);
        if n < needed {
            return Err(format!(
                "search.cv_folds = {k} needs at least {needed} training rows and there are {n} (0 turns cross-validation off)"
            ));
        }
        let budget =
            (self.solver.engine == Engine::Exact).then(|| self.solver.budget_bytes() / k as u128);
        self.folds = folds::Fold::split(&self.train_x, &self.train_y, k, budget);
        Ok(self)
    }

    /// How many cross-validation folds each trial fits; 0 when off.
    pub fn n_folds(&self) -> usize {
        self.folds.len()
    }

    pub fn dataset(&self) -> &Arc<Dataset> {
        &self.dataset
    }

    pub fn solver(&self) -> SolverSettings {
        self.solver
    }

    /// What, beyond the data and the search ranges, decides a fit's score: part of the
    /// study fingerprint, so that changing it starts a new study.
    pub fn describe(&self) -> String {
        let tol = self.solver.tolerance.get();
        let fit = match self.solver.engine {
            // As trials of the linfa-svm engine have always been fingerprinted.
            Engine::LinfaSvm => format!("kernel=rbf;solver_tol={tol:?};shrinking=false"),
            Engine::Exact => format!("engine=exact;kernel=rbf;solver_tol={tol:?};shrinking=true"),
        };
        match self.folds.len() {
            0 => fit,
            k => format!("{fit};cv=kfold{k}"),
        }
    }

    /// Fits one configuration. Blocking and CPU-bound: call it off the async workers.
    /// The exact engine stops at `cancel` or after `solver.max_fit_secs`; linfa-svm
    /// cannot be stopped.
    pub fn fit(
        &self,
        params: &TrialParams,
        kernel: &TrialKernel,
        cancel: &CancellationToken,
    ) -> Result<FitOutcome, FitError> {
        let started = Instant::now();
        let deadline = started + self.solver.max_fit_secs.get();
        let data = FitData {
            train_x: &self.train_x,
            train_y: &self.train_y,
            predict_x: self.dataset.features(),
            distances: self.distances.as_ref(),
            shared: self.sharing(kernel, &self.all_rows),
            predicted: &self.trial_rows,
        };
        let (predictions, n_support) = self.fit_predict(data, params, cancel, deadline)?;
        let fit_ms = started.elapsed().as_secs_f64() * 1e3;
        if let Some(i) = predictions.iter().position(|p| !p.is_finite()) {
            return Err(FitError::NonFinite(format!(
                "prediction for point_id {} is {}",
                self.dataset.point_ids()[i],
                predictions[i]
            )));
        }
        let (train_r2, test_r2) = self.r_squared_split(&predictions);
        if !(train_r2.is_finite() && test_r2.is_finite()) {
            return Err(FitError::NonFinite(format!(
                "R^2 is train {train_r2}, test {test_r2}"
            )));
        }
        Ok(FitOutcome {
            predictions,
            train_r2,
            test_r2,
            n_support,
            fit_ms,
        })
    }

    /// Fits fold `k` of the cross-validation and scores it: its R^2 and the time
    /// taken in ms. Blocking, stopped as [`Trainer::fit`] is.
    pub fn fit_fold(
        &self,
        k: usize,
        params: &TrialParams,
        kernel: &TrialKernel,
        cancel: &CancellationToken,
    ) -> Result<(f64, f64), FitError> {
        let started = Instant::now();
        let deadline = started + self.solver.max_fit_secs.get();
        let fold = &self.folds[k];
        let data = FitData {
            train_x: &fold.train_x,
            train_y: &fold.train_y,
            predict_x: &fold.test_x,
            distances: fold.distances.as_ref(),
            shared: self.sharing(kernel, &fold.train_rows),
            predicted: &fold.test_rows,
        };
        let (predictions, _) = self
            .fit_predict(data, params, cancel, deadline)
            .map_err(|e| e.in_fold(k, self.folds.len()))?;
        let r2 = r_squared(&fold.test_y, &predictions);
        if !r2.is_finite() {
            return Err(FitError::NonFinite(format!(
                "R^2 of cross-validation fold {} of {} is {r2}",
                k + 1,
                self.folds.len()
            )));
        }
        Ok((r2, started.elapsed().as_secs_f64() * 1e3))
    }

    /// Predictions for `data.predict_x` and the number of support vectors; a panic
    /// inside the engine comes back as [`FitError::Panicked`].
    fn fit_predict(
        &self,
        data: FitData<'_>,
        params: &TrialParams,
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<(Vec<f64>, usize), FitError> {
        // linfa-svm 0.8.1 panics (index out of bounds in solver_smo) on some inputs;
        // the panic is contained here and reported as a failed trial.
        catch_panic(|| self.fit_predict_unguarded(data, params, cancel, deadline))
            .map_err(FitError::Panicked)?
    }

    fn fit_predict_unguarded(
        &self,
        data: FitData<'_>,
        params: &TrialParams,
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<(Vec<f64>, usize), FitError> {
        let Some(distances) = data.distances else {
            return linfa::fit_predict(
                data.train_x,
                data.train_y,
                data.predict_x,
                params,
                self.solver.tolerance.get(),
            );
        };
        exact::fit_predict(
            distances,
            data,
            params,
            self.solver,
            &self.others,
            cancel,
            deadline,
        )
    }

    fn r_squared_split(&self, predictions: &[f64]) -> (f64, f64) {
        let y = self.dataset.targets();
        let pick = |idx: &mut dyn Iterator<Item = usize>| -> (Vec<f64>, Vec<f64>) {
            idx.map(|i| (y[i], predictions[i])).unzip()
        };
        let (ty, tp) = pick(&mut self.dataset.train_indices());
        let (vy, vp) = pick(&mut self.dataset.test_indices());
        (r_squared(&ty, &tp), r_squared(&vy, &vp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solver(engine: Engine, max_train_rows: u64, max_fit_mib: u64) -> SolverSettings {
        SolverSettings {
            engine,
            tolerance: 1e-3.try_into().unwrap(),
            max_fit_secs: 10.0.try_into().unwrap(),
            max_train_rows: max_train_rows.try_into().unwrap(),
            max_fit_mib: max_fit_mib.try_into().unwrap(),
        }
    }

    fn trainer(engine: Engine) -> Trainer {
        Trainer::new(Arc::new(Dataset::embedded()), solver(engine, 20_000, 1024)).unwrap()
    }

    #[test]
    fn a_good_fit_predicts_every_point_on_both_engines() {
        let params = TrialParams::new(16.391207, 40.452183, 0.17571951).unwrap();
        for engine in [Engine::Exact, Engine::LinfaSvm] {
            let out = trainer(engine)
                .fit(&params, &TrialKernel::default(), &CancellationToken::new())
                .unwrap();
            assert_eq!(out.predictions.len(), 442);
            // The seed pipeline's best published trial scored 0.5548645916432509.
            assert!(
                (out.test_r2 - 0.5548645916432509).abs() < 1e-4,
                "{}",
                out.test_r2
            );
            assert!(out.n_support > 0 && out.n_support <= 353);
        }
    }

    #[test]
    fn the_exact_engine_stops_at_cancellation_and_at_its_deadline() {
        // C = 1e8 runs for minutes.
        let params = TrialParams::new(10.0, 1e8, 0.01).unwrap();
        let cancelled = CancellationToken::new();
        cancelled.cancel();
        let err = trainer(Engine::Exact)
            .fit(&params, &TrialKernel::default(), &cancelled)
            .unwrap_err();
        assert_eq!(err, FitError::Cancelled);
        let quick = SolverSettings {
            max_fit_secs: 0.2.try_into().unwrap(),
            ..solver(Engine::Exact, 20_000, 1024)
        };
        let trainer = Trainer::new(Arc::new(Dataset::embedded()), quick).unwrap();
        let started = Instant::now();
        let err = trainer
            .fit(&params, &TrialKernel::default(), &CancellationToken::new())
            .unwrap_err();
        assert!(
            started.elapsed().as_secs_f64() < 2.0,
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(err, FitError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("solver.max_fit_secs"), "{err}");
    }

    #[test]
    fn the_fit_is_bounded_before_it_starts() {
        let few_rows = solver(Engine::Exact, 100, 1024);
        let err = Trainer::new(Arc::new(Dataset::embedded()), few_rows).unwrap_err();
        assert!(err.contains("353 training rows"), "{err}");
        // 353^2 doubles are just under 1 MiB: linfa-svm fits in 1 MiB, and the exact
        // engine keeps its whole kernel (353 rows of 706 f32); with less it keeps fewer.
        let embedded = || Arc::new(Dataset::embedded());
        assert!(Trainer::new(embedded(), solver(Engine::LinfaSvm, 20_000, 1)).is_ok());
        let whole = Trainer::new(embedded(), solver(Engine::Exact, 20_000, 1)).unwrap();
        assert!(whole.distances.unwrap().is_dense());
        let x = Dataset::embedded().features().clone();
        assert!(!svr_exact::Distances::new(&x, &x, 1 << 19).is_dense());
        assert_eq!(
            solver(Engine::LinfaSvm, 2, 1).fit_bytes(12_000),
            1_152_000_000
        );
    }
}
