//! `svr-etl report`: one self-contained HTML page about the current study, its charts
//! drawn as inline SVG (plotters), nothing fetched from the network. What the page is
//! made of is gathered here; `page.rs` lays it out and `charts.rs` draws.
//!
//! The page shows how the search went (best score so far over trials), where the good
//! configurations lie (test R^2 over log gamma x log C), each parameter against the
//! scores, the top 10 as the leaderboard ranks them, and counts of trials, hosts and
//! the time span; then what Optuna's plots show: each parameter's importance
//! (`importance.rs` says how it is computed), a filled contour of the score over each
//! pair of log parameters, and a timeline of the trials per host. Where trials have a
//! cross-validated score it is shown beside the test score.

mod charts;
mod contour;
mod importance;
mod page;
mod timeline;

pub use page::render;

use super::leaderboard::{self, Entry, LeaderboardError};
use crate::model::records::HyperRecord;
use crate::sink::keys::REPORT_KEY;
use crate::sink::{Deadline, Sink, SinkError, Written};

/// Why the report could not be made or published.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("reading the study: {0}")]
    Read(#[from] LeaderboardError),
    #[error("drawing the report: {0}")]
    Draw(String),
    #[error("publishing the report: {0}")]
    Write(#[from] SinkError),
}

/// What the report is made of.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub study: String,
    /// The study's trials, oldest first.
    pub trials: Vec<HyperRecord>,
    /// The ranking, best first.
    pub top: Vec<Entry>,
}

/// Reads the current study (the newest ok trial's, unless `study` names one).
pub async fn gather(
    sink: &dyn Sink,
    study: Option<&str>,
    today: chrono::NaiveDate,
) -> Result<Option<ReportData>, LeaderboardError> {
    let Some((study, records)) = super::trials(sink, study, today).await? else {
        return Ok(None);
    };
    let top = leaderboard::rank(sink, Some(&study), None, today).await?;
    Ok(Some(ReportData {
        study,
        trials: records,
        top,
    }))
}

/// Rewrites the current study's report under [`REPORT_KEY`] in `sink`, whole, within
/// `deadline`; `None` when no trial is ok yet.
pub async fn publish(
    sink: &dyn Sink,
    today: chrono::NaiveDate,
    deadline: &Deadline,
) -> Result<Option<(Written, usize)>, ReportError> {
    let Some(data) = gather(sink, None, today).await? else {
        return Ok(None);
    };
    let html = render(&data).map_err(ReportError::Draw)?;
    let written = sink
        .replace(
            REPORT_KEY,
            html.into_bytes(),
            "text/html; charset=utf-8",
            deadline,
        )
        .await?;
    Ok(Some((written, data.trials.len())))
}
