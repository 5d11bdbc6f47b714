//! The study: what the sink holds, read back and described.
//!
//! Records are read back through [`crate::store`];
//! [`leaderboard`] ranks trials as the Athena query does; [`athena`] prints the SQL
//! for the configured location; [`report`] draws the study as a page; [`optuna`]
//! writes it as an Optuna journal.

pub mod athena;
pub mod leaderboard;
pub mod optuna;
pub mod report;

use crate::model::records::{HyperRecord, TrialStatus};
use crate::sink::Sink;
use crate::store;
use leaderboard::LeaderboardError;

/// Whether the study is scored by `cv_r2`: a study's fingerprint includes its folds, so
/// every trial of it cross-validates or none does, and then test R^2 is the score.
pub fn cross_validated(trials: &[HyperRecord]) -> bool {
    trials.iter().any(|r| r.cv_r2.is_some())
}

/// The hyper records of `study` (the newest ok trial's study, unless named), oldest
/// first, with the study's name; `None` when no trial is ok and none is named.
pub async fn trials(
    sink: &dyn Sink,
    study: Option<&str>,
    today: chrono::NaiveDate,
) -> Result<Option<(String, Vec<HyperRecord>)>, LeaderboardError> {
    let mut records: Vec<HyperRecord> = store::hyper_records(sink, today)
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    records.sort_by_key(|r| r.hyper_id);
    let study = match study {
        Some(s) => s.to_string(),
        None => match records.iter().rev().find(|r| r.status == TrialStatus::Ok) {
            Some(r) => r.study.clone(),
            None => return Ok(None),
        },
    };
    records.retain(|r| r.study == study);
    Ok(Some((study, records)))
}
