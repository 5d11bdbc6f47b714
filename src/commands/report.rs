//! `svr-etl report`: the study as one self-contained HTML file, written locally or
//! published to the sink (`--publish`).

use std::path::Path;

use super::{print, with_sink};
use crate::cli::ReportArgs;
use crate::config::Settings;
use crate::error::AppError;
use crate::sink::{Connector, Deadline, OpenSink, Sink};
use crate::study::report::{self, ReportError};

pub async fn run(settings: Settings, args: ReportArgs) -> Result<(), AppError> {
    let settings = with_sink(settings, args.sink.as_deref())?;
    let sink = Connector.open(settings.sink(), settings.s3()).await;
    let today = chrono::Utc::now().date_naive();
    let no_trial = |sink: &dyn Sink| {
        AppError::Startup(format!(
            "no ok trial in {} to report on",
            sink.location("hyper/")
        ))
    };
    if args.publish {
        let deadline = Deadline::after(settings.sink().upload_timeout());
        let (written, trials) = report::publish(sink.as_ref(), today, &deadline)
            .await?
            .ok_or_else(|| no_trial(sink.as_ref()))?;
        return print(&format!("{}: {trials} trials\n", written.location));
    }
    let Some(data) = report::gather(sink.as_ref(), args.study.as_deref(), today).await? else {
        return Err(no_trial(sink.as_ref()));
    };
    let html = report::render(&data).map_err(ReportError::Draw)?;
    let out = args.out.as_deref().unwrap_or(Path::new("report.html"));
    std::fs::write(out, html)
        .map_err(|e| AppError::Startup(format!("writing {}: {e}", out.display())))?;
    print(&format!(
        "{}: {} trials of study {}\n",
        out.display(),
        data.trials.len(),
        data.study
    ))
}
