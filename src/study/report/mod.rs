//! `svr-etl report`: one self-contained HTML page about the current study, its charts
//! drawn as inline SVG (plotters), nothing fetched from the network. What the page is
//! made of is gathered here; `page.rs` lays it out and `charts.rs` draws.
//!
//! The page shows how the search went (best score so far over trials), where the good
//! configurations lie (test R^2 over log gamma x log C), each parameter against the
//! scores, the top 10 as the leaderboard ranks them, and counts of trials, hosts and
//! the time span. Where trials have a cross-validated score it is shown beside the
//! test score.

mod charts;
mod page;

pub use page::render;

use super::leaderboard::{self, Entry, LeaderboardError};
use crate::model::records::HyperRecord;
use crate::sink::Sink;

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
