//! The commands, as library functions: build the pipeline from settings and run it.
//!
//! `main.rs` parses the command line and calls these; tests call them too. Errors are
//! typed by what the user must fix, which decides the exit code (see
//! [`AppError::exit_code`]).

use std::error::Error;
use std::sync::Arc;

use crate::config::{ConfigError, DatasetSource, Settings};
use crate::dataset::{Dataset, DatasetError, EMBEDDED_ORIGIN};
use crate::hyper_id::HyperIdGenerator;
use crate::pipeline::{Clock, Draw, Pipeline, PublishError, TrialReport};
use crate::sampler::{SeedSource, TrialParams};
use crate::sink::{self, Layout, SinkUrl};
use crate::trainer::Trainer;

/// sysexits.h: the configuration is wrong. systemd is told not to restart on it.
pub const EX_CONFIG: u8 = 78;
/// sysexits.h: the input data is wrong.
pub const EX_DATAERR: u8 = 65;
/// sysexits.h: the command line is wrong.
pub const EX_USAGE: u8 = 64;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("{0}")]
    Usage(String),
    #[error("publishing the data set: {0}")]
    Publish(#[from] PublishError),
    #[error("trial {hyper_id} failed: {reason}")]
    TrialFailed { hyper_id: i64, reason: String },
    #[error("{0}")]
    Startup(String),
    #[error("reading the sink: {0}")]
    Leaderboard(#[from] crate::leaderboard::LeaderboardError),
}

impl AppError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) => EX_CONFIG,
            AppError::Dataset(_) => EX_DATAERR,
            AppError::Usage(_) => EX_USAGE,
            AppError::Publish(_)
            | AppError::TrialFailed { .. }
            | AppError::Startup(_)
            | AppError::Leaderboard(_) => 1,
        }
    }
}

/// The error and all its causes on one line, for logs and stderr.
pub fn error_chain(err: &dyn Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        // Some errors repeat their cause in their own message.
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    // Parser errors (TOML's among them) span lines; logs and stderr get one.
    line.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Loads the configured data set: the embedded one, or a file.
pub fn load_dataset(source: &DatasetSource) -> Result<Dataset, DatasetError> {
    match source {
        DatasetSource::Embedded => Ok(Dataset::embedded()),
        DatasetSource::File(path) => Dataset::from_file(path),
    }
}

/// Builds what every trial needs from `settings`: data set, trainer, sink.
pub async fn build_pipeline(
    settings: &Settings,
    ids: Arc<HyperIdGenerator>,
    clock: Clock,
) -> Result<Pipeline, AppError> {
    let dataset = Arc::new(load_dataset(&settings.dataset)?);
    let trainer = Trainer::new(dataset, settings.solver).map_err(|reason| {
        let origin = match &settings.dataset {
            DatasetSource::Embedded => EMBEDDED_ORIGIN.to_string(),
            DatasetSource::File(p) => p.display().to_string(),
        };
        DatasetError {
            origin,
            line: None,
            key: None,
            reason,
        }
    })?;
    let sink = sink::open(&settings.sink).await;
    Ok(Pipeline::new(
        Arc::new(trainer),
        sink,
        Layout::new(settings.sink.compression),
        settings.sink.upload_timeout,
        ids,
        clock,
    ))
}

/// What `svr-etl once` was asked for, checked.
#[derive(Debug, Clone, Default)]
pub struct OnceRequest {
    pub sink: Option<String>,
    pub params: Option<TrialParams>,
    pub seed: Option<u64>,
    pub trials: u32,
}

impl OnceRequest {
    pub fn from_cli(args: &crate::cli::OnceArgs) -> Result<OnceRequest, AppError> {
        let params = match (args.gamma, args.c, args.epsilon) {
            (Some(g), Some(c), Some(e)) => {
                Some(TrialParams::new(g, c, e).map_err(AppError::Usage)?)
            }
            _ => None,
        };
        if let Some(url) = &args.sink {
            SinkUrl::parse(url).map_err(|e| AppError::Usage(format!("--sink: {e}")))?;
        }
        Ok(OnceRequest {
            sink: args.sink.clone(),
            params,
            seed: args.seed,
            trials: args.trials,
        })
    }
}

/// `svr-etl once`: publishes the data set if needed and runs the trials, one after
/// another. A failed trial does not stop the others; see [`first_failure`].
pub async fn once(
    mut settings: Settings,
    request: OnceRequest,
    clock: Clock,
) -> Result<Vec<TrialReport>, AppError> {
    override_sink(&mut settings, request.sink.as_deref())?;
    let pipeline = build_pipeline(&settings, Arc::new(HyperIdGenerator::new()), clock).await?;
    pipeline.publish_dataset().await?;
    let mut seeds = SeedSource::new(settings.seed);
    let mut reports = Vec::new();
    for _ in 0..request.trials.max(1) {
        let draw = match request.params {
            Some(p) => Draw::Given(p),
            None => Draw::Seeded {
                space: settings.search,
                seed: request.seed.unwrap_or_else(|| seeds.next_seed()),
            },
        };
        reports.push(pipeline.run_trial(draw).await);
    }
    Ok(reports)
}

/// The first trial that failed, as an error.
pub fn first_failure(reports: &[TrialReport]) -> Result<(), AppError> {
    match reports.iter().find_map(|r| Some((r, r.failure()?))) {
        None => Ok(()),
        Some((report, reason)) => Err(AppError::TrialFailed {
            hyper_id: report.record.hyper_id.get(),
            reason,
        }),
    }
}

/// The line `svr-etl once` prints for a trial.
pub fn summary_line(report: &TrialReport) -> String {
    let r = &report.record;
    let r2 = r
        .test_r2
        .map(|v| format!("{v:.6}"))
        .unwrap_or_else(|| "-".into());
    let hyper = report.hyper.as_ref().map_or("-", |w| w.location.as_str());
    let fact = report.fact.as_ref().map_or("-", |w| w.location.as_str());
    format!(
        "hyper_id={} gamma={} C={} epsilon={} test_r2={r2} hyper={hyper} fact={fact}",
        r.hyper_id, r.gamma, r.c, r.epsilon
    )
}

/// Applies a `--sink` flag to the settings.
pub fn override_sink(settings: &mut Settings, url: Option<&str>) -> Result<(), AppError> {
    if let Some(url) = url {
        settings.sink.url =
            SinkUrl::parse(url).map_err(|e| AppError::Usage(format!("--sink: {e}")))?;
    }
    Ok(())
}

/// `svr-etl leaderboard`: the ranking of the trials in the configured sink.
pub async fn leaderboard(
    settings: &Settings,
    args: &crate::cli::LeaderboardArgs,
) -> Result<String, AppError> {
    let sink = sink::open(&settings.sink).await;
    let mut entries = crate::leaderboard::rank(sink.as_ref(), args.study.as_deref()).await?;
    if let Some(n) = args.top {
        entries.truncate(n);
    }
    Ok(crate::leaderboard::render(&entries, args.format))
}
