//! `svr-etl once`: trials now, one after another, each printing its line.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{print, with_sink};
use crate::cli::OnceArgs;
use crate::config::Settings;
use crate::error::AppError;
use crate::model::id::HyperIdGenerator;
use crate::model::params::SamplerKind;
use crate::model::params::{SeedSource, TrialParams};
use crate::sink::{Connector, OpenSink};
use crate::trial::{system_clock, Clock, Draw, FittedTrial, Pipeline, TrialReport};

/// What `svr-etl once` was asked for, checked.
#[derive(Debug, Clone)]
pub struct OnceRequest {
    pub params: Option<TrialParams>,
    pub seed: Option<u64>,
    pub trials: u32,
}

impl OnceRequest {
    pub fn from_cli(args: &OnceArgs) -> Result<OnceRequest, AppError> {
        let params = match (args.gamma, args.c, args.epsilon) {
            (Some(g), Some(c), Some(e)) => {
                Some(TrialParams::new(g, c, e).map_err(AppError::Usage)?)
            }
            _ => None,
        };
        Ok(OnceRequest {
            params,
            seed: args.seed,
            trials: args.trials,
        })
    }
}

pub async fn run(settings: Settings, args: OnceArgs) -> Result<(), AppError> {
    let settings = with_sink(settings, args.sink.as_deref())?;
    let request = OnceRequest::from_cli(&args)?;
    let reports = once(settings, request, system_clock(), &Connector).await?;
    for report in &reports {
        print(&format!("{}\n", report.summary_line()))?;
    }
    first_failure(&reports)
}

/// Publishes the data set if needed and runs the trials, one after another, each
/// fitted while the one before is written (its writes done before the next trial's
/// start). A failed trial does not stop the others: its report says why.
pub async fn once(
    settings: Settings,
    request: OnceRequest,
    clock: Clock,
    sinks: &dyn OpenSink,
) -> Result<Vec<TrialReport>, AppError> {
    let ids = Arc::new(HyperIdGenerator::new());
    let cancel = CancellationToken::new();
    let (pipeline, _) = Pipeline::open(&settings.pipeline(), sinks, ids, clock, &cancel).await?;
    let mut seeds = SeedSource::new(settings.search().seed);
    let mut reports = Vec::new();
    let mut writing: Option<FittedTrial> = None;
    for _ in 0..request.trials.max(1) {
        let draw = match request.params {
            Some(p) => Draw::Given(p),
            // A seed given by hand replays a random draw.
            None => Draw::Seeded {
                space: settings.search().space(),
                seed: request.seed.unwrap_or_else(|| seeds.next_seed()),
                sampler: match request.seed {
                    Some(_) => SamplerKind::Random,
                    None => settings.search().sampler,
                },
            },
        };
        let previous = async {
            match writing.take() {
                Some(trial) => Some(trial.write(&cancel).await),
                None => None,
            }
        };
        let (fitted, written) = tokio::join!(pipeline.fit_trial(draw, &cancel), previous);
        reports.extend(written);
        writing = Some(fitted);
    }
    if let Some(trial) = writing {
        reports.push(trial.write(&cancel).await);
    }
    Ok(reports)
}

/// The first trial that failed, as an error.
fn first_failure(reports: &[TrialReport]) -> Result<(), AppError> {
    match reports.iter().find_map(|r| Some((r, r.failure()?))) {
        None => Ok(()),
        Some((report, reason)) => Err(AppError::TrialFailed {
            hyper_id: report.record.hyper_id.get(),
            reason,
        }),
    }
}
