//! `svr-etl compact`: finished days of the sink rewritten as Parquet, by hand.

use chrono::Utc;

use super::{print, with_sink};
use crate::cli::CompactArgs;
use crate::compaction::{days_to_compact, CompactError, Compactor};
use crate::config::Settings;
use crate::error::AppError;
use crate::model::records::timestamp;
use crate::sink::{Connector, OpenSink};

pub async fn run(settings: Settings, args: CompactArgs) -> Result<(), AppError> {
    let settings = with_sink(settings, args.sink.as_deref())?;
    let compaction = settings.compaction();
    let now = Utc::now();
    let days = match args.day {
        Some(day) if compaction.finished_at(day) > now => {
            return Err(CompactError::NotFinished {
                day,
                at: timestamp(compaction.finished_at(day)),
            }
            .into())
        }
        Some(day) => vec![day],
        None => Vec::new(),
    };
    let sink = Connector.open(settings.sink(), settings.s3()).await;
    let days = match args.day {
        Some(_) => days,
        None => days_to_compact(sink.as_ref(), compaction, now)
            .await
            .map_err(CompactError::from)?,
    };
    let compactor = Compactor::new(compaction, settings.sink().upload_timeout());
    // Every day is tried; the first failure is the command's error.
    let mut failed = None;
    for day in days {
        match compactor.compact_day(sink.as_ref(), day).await {
            Ok(outcome) => print(&format!("{outcome}\n"))?,
            Err(e) if failed.is_none() => failed = Some(e),
            Err(e) => tracing::error!(day = %day, error = %e, "compacting {day}: {e}"),
        }
    }
    failed.map_or(Ok(()), |e| Err(e.into()))
}
