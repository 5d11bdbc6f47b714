//! The `svr-etl` binary: parses the command line, starts logging, loads settings and
//! hands over to the library. Exit codes: 0 done, 1 a run failed, 64 bad command
//! line, 65 bad data set, 78 bad configuration (systemd does not restart on it).

use std::process::ExitCode;

use clap::Parser;
use svr_etl::app::{self, AppError, OnceRequest};
use svr_etl::athena;
use svr_etl::cli::{Cli, Command};
use svr_etl::config::Settings;
use svr_etl::daemon::{self, DaemonInputs};
use svr_etl::pipeline::system_clock;
use svr_etl::signals;
use svr_etl::telemetry;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&AppError::from(e)),
    };
    match &cli.command {
        Command::CheckConfig => {
            print_out(&settings.to_string());
            return ExitCode::SUCCESS;
        }
        Command::Sql(args) => {
            if let Err(e) = app::override_sink(&mut settings, args.sink.as_deref()) {
                return fail(&e);
            }
            let dataset = match app::load_dataset(&settings.dataset) {
                Ok(d) => d,
                Err(e) => return fail(&AppError::from(e)),
            };
            print_out(&athena::setup_script(
                &settings.athena_database,
                &settings.sink.url,
                dataset.feature_names(),
            ));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let log = telemetry::init(&settings.log_level);
    telemetry::log_panics();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Once(args) => {
                let request = OnceRequest::from_cli(args)?;
                let reports = app::once(settings, request, system_clock()).await?;
                for report in &reports {
                    print_out(&format!("{}\n", app::summary_line(report)));
                }
                app::first_failure(&reports)
            }
            Command::Run => {
                let shutdown = CancellationToken::new();
                let reloads = signals::listen(shutdown.clone())
                    .map_err(|e| AppError::Startup(format!("installing signal handlers: {e}")))?;
                let inputs = DaemonInputs {
                    config_path: cli.config.clone(),
                    log,
                    reloads,
                    shutdown,
                };
                daemon::run(settings, inputs).await
            }
            Command::Leaderboard(args) => {
                app::override_sink(&mut settings, args.sink.as_deref())?;
                print_out(&app::leaderboard(&settings, args).await?);
                Ok(())
            }
            Command::CheckConfig | Command::Sql(_) => {
                unreachable!("handled before the runtime starts")
            }
        }
    });
    // A fit cannot be interrupted: one still running on a blocking thread after the
    // grace period must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Prints the whole cause chain on one line and maps the error to its exit code.
fn fail(err: &AppError) -> ExitCode {
    eprintln!("error: {}", app::error_chain(err));
    ExitCode::from(err.exit_code())
}

/// Writes to stdout. A closed pipe (`svr-etl check-config | head`) is the reader's
/// choice, not an error, so it is ignored rather than panicking as `print!` would.
fn print_out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
