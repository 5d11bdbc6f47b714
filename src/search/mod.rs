//! Choosing the next trial's parameters: at random, or by TPE guided by the study's
//! cross-validated scores.
//!
//! [`tpe`] and [`parzen`] are the algorithm, with no I/O; [`history`] keeps what the
//! sampler knows of the study, refreshed from the sink; [`Searcher`] joins them for
//! the pipeline.

pub mod history;
pub mod parzen;
pub mod tpe;
mod truncnorm;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tokio_util::sync::CancellationToken;

use crate::model::id::HyperId;
use crate::model::params::{SearchSpace, TrialParams};
use crate::sink::Sink;
use history::{point, StudyHistory};
use parzen::{Bounds, Point};

/// The search space in natural logs, as the estimators work on it.
pub fn bounds(space: &SearchSpace) -> Bounds {
    let ln10 = std::f64::consts::LN_10;
    let ranges = [space.gamma, space.c, space.epsilon];
    Bounds {
        low: ranges.map(|r| r.min() * ln10),
        high: ranges.map(|r| r.max() * ln10),
    }
}

/// How long a refresh after the first may take.
const LATER_REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

/// A TPE suggestion and how much history it drew on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suggestion {
    pub params: TrialParams,
    /// Completed trials of the study the sampler saw.
    pub n_history: u64,
}

/// The TPE sampler of one pipeline, shared by its trials.
#[derive(Debug)]
pub struct Searcher {
    sink: Arc<dyn Sink>,
    history: tokio::sync::Mutex<StudyHistory>,
    /// How long one refresh of the history may take before the sampler goes on with
    /// what it has.
    refresh_timeout: Duration,
    constant_liar: bool,
}

impl Searcher {
    pub fn new(sink: Arc<dyn Sink>, refresh_timeout: Duration, constant_liar: bool) -> Searcher {
        Searcher {
            sink,
            history: tokio::sync::Mutex::new(StudyHistory::default()),
            refresh_timeout,
            constant_liar,
        }
    }

    /// Whether trials in flight count as bad (`search.constant_liar`); their markers
    /// are written only then.
    pub fn constant_liar(&self) -> bool {
        self.constant_liar
    }

    /// Parameters for trial `id` of `study`: random (from `seed`) until the study has
    /// [`tpe::STARTUP_TRIALS`] scored trials, then TPE's choice, with its candidates
    /// drawn from `seed`. The trial counts as in flight until [`Searcher::finish`].
    pub async fn suggest(
        &self,
        study: &str,
        space: &SearchSpace,
        seed: u64,
        id: HyperId,
        now: DateTime<Utc>,
        cancel: &CancellationToken,
    ) -> Suggestion {
        let mut history = self.history.lock().await;
        // The first load may read the whole study; later ones read a day or two and
        // must not hold trials up for long when the sink stalls.
        let timeout = match history.loaded(study) {
            true => self.refresh_timeout.min(LATER_REFRESH_TIMEOUT),
            false => self.refresh_timeout,
        };
        let refresh = history.refresh(self.sink.as_ref(), study, now);
        tokio::select! {
            done = tokio::time::timeout(timeout, refresh) => match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the study history could not be refreshed ({e}); the sampler goes on with what it has"),
                Err(_) => tracing::warn!(after_secs = timeout.as_secs_f64(), "the study history took longer than {}s to refresh; the sampler goes on with what it has", timeout.as_secs_f64()),
            },
            _ = cancel.cancelled() => {}
        }
        let completed = history.completed();
        let running = match self.constant_liar {
            true => history.running(id),
            false => Vec::new(),
        };
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let params = match tpe::suggest(completed, &running, bounds(space), &mut rng) {
            Some(x) => from_point(x),
            None => space.draw(seed),
        };
        let n_history = completed.len() as u64;
        history.start(id, to_point(&params));
        Suggestion { params, n_history }
    }

    /// Trial `id` has ended; its cross-validated score, if any, joins the history.
    pub async fn finish(&self, id: HyperId, params: &TrialParams, cv_r2: Option<f64>) {
        self.history
            .lock()
            .await
            .finish(id, to_point(params), cv_r2);
    }
}

fn to_point(p: &TrialParams) -> Point {
    point(p.gamma(), p.c(), p.epsilon())
}

fn from_point(x: Point) -> TrialParams {
    let [g, c, e] = x.map(f64::exp);
    TrialParams::new(g, c, e).expect("exp of a finite bound is finite and positive")
}
