//! The commands, one file each: what `main` calls once the command line is parsed,
//! and what tests call too.
//!
//! [`execute`] loads the settings, starts logging and the async runtime where a
//! command needs them, and runs the command; every failure comes back as an
//! [`AppError`] for `main` to map to an exit code.

mod compact;
mod export;
mod leaderboard;
mod once;
mod report;
mod run;
mod sql;
mod threads;

use std::future::Future;
use std::io::Write;
use std::time::Duration;

pub use once::{once, OnceRequest};
pub use threads::ThreadBudget;

use crate::cli::{Cli, Command};
use crate::config::Settings;
use crate::error::AppError;
use crate::sink::SinkUrl;
use crate::telemetry;
use crate::trial;

/// Runs the command the user asked for.
pub fn execute(cli: Cli) -> Result<(), AppError> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::CheckConfig => check_config(&settings),
        Command::Sql(args) => sql::run(settings, &args),
        Command::Once(args) => with_runtime(&settings, once::run(settings.clone(), args)),
        Command::Leaderboard(args) => {
            with_runtime(&settings, leaderboard::run(settings.clone(), args))
        }
        Command::Report(args) => with_runtime(&settings, report::run(settings.clone(), args)),
        Command::Compact(args) => with_runtime(&settings, compact::run(settings.clone(), args)),
        Command::Export(args) => with_runtime(&settings, export::run(settings.clone(), args)),
        Command::Run => {
            let log = telemetry::init(settings.log_level());
            telemetry::log_panics();
            block_on(run::run(settings, cli.config, log, threads()))
        }
    }
}

/// Runs every check `run` would before it opens the sink, then prints the settings.
fn check_config(settings: &Settings) -> Result<(), AppError> {
    trial::prepare(&settings.pipeline(), chrono::Utc::now())?;
    print(&settings.to_string())
}

/// Starts logging, then runs `command` on a fresh runtime.
fn with_runtime(
    settings: &Settings,
    command: impl Future<Output = Result<(), AppError>>,
) -> Result<(), AppError> {
    telemetry::init(settings.log_level());
    telemetry::log_panics();
    block_on(command)
}

/// The threads this process may have, from the cores it may use.
fn threads() -> ThreadBudget {
    ThreadBudget::for_cores(trial::cores())
}

fn block_on(command: impl Future<Output = Result<(), AppError>>) -> Result<(), AppError> {
    let runtime = threads()
        .runtime()
        .map_err(|e| AppError::Startup(format!("starting the async runtime: {e}")))?;
    let result = runtime.block_on(command);
    // A fit cannot be interrupted: one still running on a blocking thread after the
    // grace period must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Writes to standard output. Every failure is an error, a closed pipe included;
/// `main` lets that one alone exit 0.
fn print(text: &str) -> Result<(), AppError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(AppError::Output)
}

/// Applies a `--sink` flag to the settings.
fn with_sink(settings: Settings, url: Option<&str>) -> Result<Settings, AppError> {
    match url {
        None => Ok(settings),
        Some(url) => {
            let url = SinkUrl::parse(url).map_err(|e| AppError::Usage(format!("--sink: {e}")))?;
            Ok(settings.with_sink_url(url))
        }
    }
}
