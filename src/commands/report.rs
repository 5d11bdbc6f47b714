//! `svr-etl report`: the study as one self-contained HTML file.

use super::{print, with_sink};
use crate::cli::ReportArgs;
use crate::config::Settings;
use crate::error::AppError;
use crate::sink::{Connector, OpenSink};
use crate::study::report;

pub async fn run(settings: Settings, args: ReportArgs) -> Result<(), AppError> {
    let settings = with_sink(settings, args.sink.as_deref())?;
    let sink = Connector.open(settings.sink(), settings.s3()).await;
    let Some(data) = report::gather(
        sink.as_ref(),
        args.study.as_deref(),
        chrono::Utc::now().date_naive(),
    )
    .await?
    else {
        return Err(AppError::Startup(format!(
            "no ok trial in {} to report on",
            sink.location("hyper/")
        )));
    };
    let html = report::render(&data).map_err(|e| AppError::Startup(format!("drawing: {e}")))?;
    std::fs::write(&args.out, html)
        .map_err(|e| AppError::Startup(format!("writing {}: {e}", args.out.display())))?;
    print(&format!(
        "{}: {} trials of study {}\n",
        args.out.display(),
        data.trials.len(),
        data.study
    ))
}
