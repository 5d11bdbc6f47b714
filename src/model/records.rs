//! The records a trial produces, as newline-delimited JSON: the contract with Athena.
//!
//! [`HyperRecord`] is one line per trial under `hyper/`; [`FactRecord`] is one line per
//! data point under `fact/`. Field names here are the column names in `queries/`, a
//! test keeps the two equal. Numbers are written in their shortest round-trip form;
//! NaN and infinity never reach this module (the trainer fails such trials).

use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::id::HyperId;
use super::params::{SamplerKind, SearchSpace};

/// Outcome of a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialStatus {
    Ok,
    Failed,
}

/// One line under `hyper/`: the configuration of a trial and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HyperRecord {
    pub hyper_id: HyperId,
    /// Fingerprint of what makes trials comparable; see [`study_fingerprint`].
    pub study: String,
    pub status: TrialStatus,
    /// Why a `failed` trial failed; null when `ok`.
    pub error: Option<String>,
    pub gamma: f64,
    #[serde(rename = "C")]
    pub c: f64,
    pub epsilon: f64,
    /// The seed the parameters were drawn from; null when given by hand.
    pub seed: Option<u64>,
    pub train_r2: Option<f64>,
    pub test_r2: Option<f64>,
    pub n_support: Option<u64>,
    pub n_train: u64,
    pub n_test: u64,
    pub fit_ms: Option<f64>,
    /// Mean R^2 of the cross-validation folds on the training rows; null when off or
    /// failed.
    pub cv_r2: Option<f64>,
    /// The folds' population standard deviation of R^2.
    pub cv_r2_std: Option<f64>,
    /// Folds fitted; 0 when cross-validation is off.
    #[serde(default)]
    pub cv_folds: u32,
    /// The folds' fit and prediction time, summed.
    pub cv_ms: Option<f64>,
    /// How the parameters were chosen: `random`, `tpe`, or null when given by hand.
    pub sampler: Option<SamplerKind>,
    /// Completed trials of the study the TPE sampler saw; null for other samplers.
    pub n_history: Option<u64>,
    pub solver_tol: f64,
    /// RFC 3339, UTC, millisecond precision.
    pub created_at: String,
    pub host: String,
    pub version: String,
}

/// One line under `fact/`: a prediction for one data point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FactRecord {
    pub hyper_id: HyperId,
    pub point_id: i64,
    pub y_pred: f64,
}

/// The column names of the `hyperparams` table, in the order the daemon writes them.
pub const HYPER_FIELDS: &[&str] = &[
    "hyper_id",
    "study",
    "status",
    "error",
    "gamma",
    "C",
    "epsilon",
    "seed",
    "train_r2",
    "test_r2",
    "n_support",
    "n_train",
    "n_test",
    "fit_ms",
    "cv_r2",
    "cv_r2_std",
    "cv_folds",
    "cv_ms",
    "sampler",
    "n_history",
    "solver_tol",
    "created_at",
    "host",
    "version",
];

/// The column names of the `predict` table.
pub const FACT_FIELDS: &[&str] = &["hyper_id", "point_id", "y_pred"];

/// A short fingerprint of everything that makes two trials' scores comparable: the
/// search ranges (`None` for configurations given by hand), the fit as the trainer
/// describes it and the data set. Changing any of them starts a new study.
pub fn study_fingerprint(
    search: Option<&SearchSpace>,
    fit: &str,
    dataset_checksum: &str,
) -> String {
    let ranges = match search {
        Some(s) => format!(
            "gamma=[{:?},{:?}];c=[{:?},{:?}];epsilon=[{:?},{:?}]",
            s.gamma.min(),
            s.gamma.max(),
            s.c.min(),
            s.c.max(),
            s.epsilon.min(),
            s.epsilon.max()
        ),
        None => "manual".to_string(),
    };
    let canonical = format!("v1;{ranges};{fit};data={dataset_checksum}");
    let digest = Sha256::digest(canonical.as_bytes());
    format!("{digest:x}")[..12].to_string()
}

/// `created_at` as records write it.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl HyperRecord {
    /// Marks the trial failed, for `reason`.
    pub fn fail(&mut self, reason: String) {
        self.status = TrialStatus::Failed;
        self.error = Some(reason);
    }

    /// Writes the record as one JSON line.
    pub fn write_ndjson(&self, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer(&mut *out, self)?;
        out.write_all(b"\n")
    }
}

/// Writes one fact line per data point, straight into `out`.
pub fn write_facts(
    hyper_id: HyperId,
    point_ids: &[i64],
    predictions: &[f64],
    out: &mut dyn Write,
) -> io::Result<()> {
    for (&point_id, &y_pred) in point_ids.iter().zip(predictions) {
        let record = FactRecord {
            hyper_id,
            point_id,
            y_pred,
        };
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::id::HyperIdGenerator;
    use crate::model::params::LogRange;

    fn record() -> HyperRecord {
        HyperRecord {
            hyper_id: HyperIdGenerator::with_node(1).next(Utc::now()),
            study: "abc".into(),
            status: TrialStatus::Ok,
            error: None,
            gamma: 0.1,
            c: 1.0 / 3.0,
            epsilon: 1e-300,
            seed: Some(7),
            train_r2: Some(0.5),
            test_r2: Some(-1.25),
            n_support: Some(3),
            n_train: 353,
            n_test: 89,
            fit_ms: Some(1.5),
            cv_r2: Some(0.25),
            cv_r2_std: Some(0.125),
            cv_folds: 5,
            cv_ms: Some(7.0),
            sampler: Some(SamplerKind::Tpe),
            n_history: Some(12),
            solver_tol: 1e-3,
            created_at: timestamp(Utc::now()),
            host: "h".into(),
            version: "0".into(),
        }
    }

    #[test]
    fn hyper_fields_are_the_serialized_keys_in_order() {
        let value = serde_json::to_value(record()).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, HYPER_FIELDS);
    }

    #[test]
    fn numbers_round_trip_exactly() {
        let r = record();
        let mut line = Vec::new();
        r.write_ndjson(&mut line).unwrap();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let back: HyperRecord = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn facts_are_one_line_per_point() {
        let id = HyperIdGenerator::with_node(1).next(Utc::now());
        let mut out = Vec::new();
        write_facts(id, &[3, 4], &[0.1, 2.0 / 3.0], &mut out).unwrap();
        let lines: Vec<FactRecord> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].y_pred, 2.0 / 3.0);
        let keys: Vec<String> = serde_json::to_value(lines[0])
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, FACT_FIELDS);
    }

    #[test]
    fn study_changes_with_what_makes_trials_comparable() {
        let space = |hi: f64| SearchSpace {
            gamma: LogRange::new(-2.0, hi).unwrap(),
            c: LogRange::new(-2.0, 2.0).unwrap(),
            epsilon: LogRange::new(-2.0, 0.0).unwrap(),
        };
        let tol = |t: f64| format!("kernel=rbf;solver_tol={t:?};shrinking=false");
        let base = study_fingerprint(Some(&space(2.0)), &tol(1e-3), "d1");
        assert_eq!(base.len(), 12);
        assert_eq!(base, study_fingerprint(Some(&space(2.0)), &tol(1e-3), "d1"));
        assert_ne!(base, study_fingerprint(Some(&space(1.0)), &tol(1e-3), "d1"));
        assert_ne!(base, study_fingerprint(Some(&space(2.0)), &tol(1e-4), "d1"));
        assert_ne!(base, study_fingerprint(Some(&space(2.0)), &tol(1e-3), "d2"));
        assert_ne!(base, study_fingerprint(None, &tol(1e-3), "d1"));
    }
}
