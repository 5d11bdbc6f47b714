//! What can stop a command, and the exit status each maps to.
//!
//! Errors are typed by what the user must fix, which decides the exit code (see
//! [`AppError::exit_code`]): systemd is told not to restart on a bad config (78) or a
//! bad data set (65). [`error_chain`] prints any error with its causes on one line.

use std::error::Error;

use crate::config::ConfigError;
use crate::dataset::DatasetError;
use crate::study::leaderboard::LeaderboardError;
use crate::trial::{BuildError, PublishError};

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
    Leaderboard(#[from] LeaderboardError),
    #[error("writing to standard output: {0}")]
    Output(#[source] std::io::Error),
    #[error("compacting: {0}")]
    Compact(#[from] crate::compaction::CompactError),
    #[error(transparent)]
    Report(#[from] crate::study::report::ReportError),
}

impl From<BuildError> for AppError {
    fn from(e: BuildError) -> AppError {
        match e {
            BuildError::Dataset(e) => AppError::Dataset(e),
            BuildError::Clock(e) => AppError::Startup(e),
            BuildError::Publish(e) => AppError::Publish(e),
        }
    }
}

impl AppError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) => EX_CONFIG,
            AppError::Dataset(_) => EX_DATAERR,
            AppError::Usage(_)
            | AppError::Compact(crate::compaction::CompactError::NotFinished { .. }) => EX_USAGE,
            AppError::Publish(_)
            | AppError::TrialFailed { .. }
            | AppError::Startup(_)
            | AppError::Leaderboard(_)
            | AppError::Output(_)
            | AppError::Compact(_)
            | AppError::Report(_) => 1,
        }
    }

    /// A closed pipe on standard output (`svr-etl sql | head`) is the reader's choice,
    /// not a failure; it is the only error that exits 0.
    pub fn is_broken_pipe(&self) -> bool {
        let mut cause: Option<&(dyn Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return true;
                }
            }
            cause = e.source();
        }
        false
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
