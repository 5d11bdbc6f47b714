//! How a trial gets its parameters ([`Draw`]): at random, by TPE over the study's
//! history, or by hand; and the marker a TPE trial keeps in the sink while it runs.

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Pipeline;
use crate::model::id::HyperId;
use crate::model::params::SamplerKind;
use crate::model::params::{SearchSpace, TrialParams};

/// How a trial gets its parameters.
#[derive(Debug, Clone, Copy)]
pub enum Draw {
    /// Chosen by `sampler` in the search space, its randomness from `seed`.
    Seeded {
        space: SearchSpace,
        seed: u64,
        sampler: SamplerKind,
    },
    /// Given by hand (`--gamma --c --epsilon`).
    Given(TrialParams),
}

/// How a trial's parameters came about, for its record.
pub(super) struct Chosen {
    pub params: TrialParams,
    pub seed: Option<u64>,
    pub sampler: Option<SamplerKind>,
    pub n_history: Option<u64>,
}

impl Pipeline {
    /// The parameters `draw` gives trial `id` of `study`.
    pub(super) async fn choose(
        &self,
        draw: Draw,
        study: &str,
        id: HyperId,
        now: DateTime<Utc>,
        cancel: &CancellationToken,
    ) -> Chosen {
        match draw {
            Draw::Seeded {
                space,
                seed,
                sampler: SamplerKind::Tpe,
            } => {
                let s = self
                    .searcher
                    .suggest(study, &space, seed, id, now, cancel)
                    .await;
                Chosen {
                    params: s.params,
                    seed: Some(seed),
                    sampler: Some(SamplerKind::Tpe),
                    n_history: Some(s.n_history),
                }
            }
            Draw::Seeded {
                space,
                seed,
                sampler: SamplerKind::Random,
            } => Chosen {
                params: space.draw(seed),
                seed: Some(seed),
                sampler: Some(SamplerKind::Random),
                n_history: None,
            },
            Draw::Given(params) => Chosen {
                params,
                seed: None,
                sampler: None,
                n_history: None,
            },
        }
    }

    /// Writes the marker of a trial in flight; a failure only costs other hosts the
    /// knowledge of it.
    pub(super) async fn announce(&self, marker: Option<&str>, cancel: &CancellationToken) {
        let Some(key) = marker else { return };
        let empty: crate::sink::BodyWriter = std::sync::Arc::new(|_| Ok(()));
        if let Err(e) = self.sink.create(key, empty, &self.deadline(cancel)).await {
            tracing::debug!(error = %e, "the marker of a trial in flight was not written: {e}");
        }
    }

    /// Removes the marker of a finished trial; one left behind goes stale in an hour
    /// and is removed by the next full refresh of any host's history.
    pub(super) async fn withdraw(&self, key: &str, cancel: &CancellationToken) {
        let deadline = self.deadline(cancel);
        let removed = tokio::select! {
            r = tokio::time::timeout(deadline.timeout, self.sink.delete(key)) => r.ok(),
            _ = cancel.cancelled() => None,
        };
        if !matches!(removed, Some(Ok(()))) {
            tracing::debug!(key, "the marker of a finished trial was not removed: {key}");
        }
    }
}
