//! `svr-etl export --optuna FILE`: the study as an Optuna journal file.

use std::io::Write;

use super::{print, with_sink};
use crate::cli::ExportArgs;
use crate::config::Settings;
use crate::error::AppError;
use crate::sink::{Connector, OpenSink};
use crate::study::{self, optuna};

pub async fn run(settings: Settings, args: ExportArgs) -> Result<(), AppError> {
    let settings = with_sink(settings, args.sink.as_deref())?;
    let sink = Connector.open(settings.sink(), settings.s3()).await;
    let today = chrono::Utc::now().date_naive();
    let Some((name, trials)) = study::trials(sink.as_ref(), args.study.as_deref(), today).await?
    else {
        return Err(AppError::Startup(format!(
            "no ok trial in {} to export",
            sink.location("hyper/")
        )));
    };
    let journal = optuna::journal(&name, &trials, &settings.search().space());
    let path = &args.optuna;
    let failed = |e: std::io::Error| AppError::Startup(format!("writing {}: {e}", path.display()));
    // A journal is Optuna's append-only record: another study's must not be replaced.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(failed)?;
    file.write_all(journal.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed)?;
    print(&format!(
        "{}: study {name}, {} trials, value {}\n",
        path.display(),
        trials.len(),
        optuna::objective(&trials)
    ))
}
