//! The study as an Optuna journal: the file that `optuna.storages.JournalStorage` with
//! `JournalFileBackend` reads, one JSON operation per line, so that `optuna.load_study`,
//! its importances and plots, and `optuna-dashboard` work on svr-etl's trials.
//!
//! The journal holds one study (maximizing) created by one operation, then one
//! operation per trial that creates it finished, as `Study.add_trial` writes it: state,
//! value, times, log-uniform distributions, params and user attributes.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::model::params::{LogRange, SearchSpace};
use crate::model::records::{HyperRecord, TrialStatus};

/// Optuna's operation codes (`JournalOperation`).
const CREATE_STUDY: u8 = 0;
const SET_STUDY_USER_ATTR: u8 = 2;
const SET_STUDY_SYSTEM_ATTR: u8 = 3;
const CREATE_TRIAL: u8 = 4;
/// `StudyDirection.MAXIMIZE`.
const MAXIMIZE: u8 = 2;
/// `TrialState.COMPLETE` and `TrialState.FAIL`.
const COMPLETE: u8 = 1;
const FAIL: u8 = 3;
/// The writer Optuna records for each operation; a reader only compares it with its own.
const WORKER: &str = "svr-etl-export";

/// What the trials are scored by: `cv_r2` where the study cross-validates, else test
/// R^2.
pub fn objective(trials: &[HyperRecord]) -> &'static str {
    if super::cross_validated(trials) {
        "cv_r2"
    } else {
        "test_r2"
    }
}

/// The journal of `study`'s `trials` (oldest first), their parameters declared over
/// `space` widened to hold every value.
pub fn journal(study: &str, trials: &[HyperRecord], space: &SearchSpace) -> String {
    let objective = objective(trials);
    let distributions = json!({
        "gamma": distribution(&space.gamma, trials.iter().map(|t| t.gamma)),
        "C": distribution(&space.c, trials.iter().map(|t| t.c)),
        "epsilon": distribution(&space.epsilon, trials.iter().map(|t| t.epsilon)),
    });
    let mut lines = vec![
        json!({"op_code": CREATE_STUDY, "worker_id": WORKER, "study_name": study, "directions": [MAXIMIZE]}),
        json!({"op_code": SET_STUDY_USER_ATTR, "worker_id": WORKER, "study_id": 0, "user_attr": {"objective": objective}}),
        // What `Study.set_metric_names` records: the dashboard labels its axes with it.
        json!({"op_code": SET_STUDY_SYSTEM_ATTR, "worker_id": WORKER, "study_id": 0, "system_attr": {"study:metric_names": [objective]}}),
    ];
    lines.extend(trials.iter().map(|t| trial(t, objective, &distributions)));
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

/// Optuna's `FloatDistribution(low, high, log=True)` in its JSON form (a string of
/// JSON), from the configured range widened to `values`.
fn distribution(range: &LogRange, values: impl Iterator<Item = f64>) -> Value {
    let (mut low, mut high) = (10f64.powf(range.min()), 10f64.powf(range.max()));
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        low = low.min(v);
        high = high.max(v);
    }
    let attributes = json!({"step": null, "low": low, "high": high, "log": true});
    Value::String(json!({"name": "FloatDistribution", "attributes": attributes}).to_string())
}

fn trial(t: &HyperRecord, objective: &str, distributions: &Value) -> Value {
    let value = match objective {
        "cv_r2" => t.cv_r2,
        _ => t.test_r2,
    }
    .filter(|v| v.is_finite());
    let complete = t.status == TrialStatus::Ok && value.is_some();
    let (start, end) = times(t);
    let mut user_attrs = json!({
        // As text: 18-digit ids lose digits in the dashboard's JavaScript numbers.
        "hyper_id": t.hyper_id.to_string(),
        "test_r2": t.test_r2,
        "host": t.host,
    });
    if let Some(error) = &t.error {
        user_attrs["error"] = json!(error);
    }
    let mut op = json!({
        "op_code": CREATE_TRIAL,
        "worker_id": WORKER,
        "study_id": 0,
        "datetime_start": start,
        "state": if complete { COMPLETE } else { FAIL },
        "value": if complete { value } else { None },
        "values": null,
        "distributions": distributions,
        "params": {"gamma": t.gamma, "C": t.c, "epsilon": t.epsilon},
        "user_attrs": user_attrs,
        "system_attrs": {},
        "intermediate_values": {},
    });
    // Optuna reads a complete time whenever the key is there.
    if let Some(end) = end {
        op["datetime_complete"] = json!(end);
    }
    op
}

/// When the trial started and ended, as Optuna writes times: the record is made as the
/// trial's computing ends, after its fit and folds.
fn times(t: &HyperRecord) -> (Option<String>, Option<String>) {
    let Ok(end) = DateTime::parse_from_rfc3339(&t.created_at) else {
        return (None, None);
    };
    let end = end.with_timezone(&Utc);
    let busy_ms = t.fit_ms.unwrap_or(0.0) + t.cv_ms.unwrap_or(0.0);
    let start = end - Duration::microseconds((busy_ms * 1e3) as i64);
    let iso = |d: DateTime<Utc>| d.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    (Some(iso(start)), Some(iso(end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64, ok: bool, cv_r2: Option<f64>, gamma: f64) -> HyperRecord {
        serde_json::from_value(json!({
            "hyper_id": id, "study": "s", "status": if ok { "ok" } else { "failed" },
            "error": if ok { None } else { Some("fit diverged") },
            "gamma": gamma, "C": 1.0, "epsilon": 0.1, "seed": 1,
            "train_r2": 0.5, "test_r2": 0.4, "n_support": 3, "n_train": 353, "n_test": 89,
            "fit_ms": 2.0, "cv_r2": cv_r2, "cv_r2_std": 0.1, "cv_folds": 5, "cv_ms": 3.0,
            "sampler": "random", "n_history": null, "solver_tol": 0.001,
            "created_at": "2026-12-05T10:00:00.010Z", "host": "h", "version": "0",
        }))
        .unwrap()
    }

    #[test]
    fn failed_and_unscored_trials_are_failed_and_ranges_hold_every_value() {
        let space = SearchSpace {
            gamma: LogRange::new(-2.0, 2.0).unwrap(),
            c: LogRange::new(-2.0, 2.0).unwrap(),
            epsilon: LogRange::new(-2.0, 0.0).unwrap(),
        };
        let trials = [
            record(1, true, Some(0.25), 1.0),
            record(2, false, None, 500.0),
            record(3, true, Some(f64::NAN), 1.0),
        ];
        let text = journal("s", &trials, &space);
        let ops: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(ops.len(), 6);
        assert_eq!(ops[0]["directions"], json!([MAXIMIZE]));
        let states: Vec<&Value> = ops[3..].iter().map(|o| &o["state"]).collect();
        assert_eq!(states, [&json!(COMPLETE), &json!(FAIL), &json!(FAIL)]);
        assert_eq!(ops[3]["value"], json!(0.25));
        assert_eq!(ops[4]["user_attrs"]["error"], json!("fit diverged"));
        // 5 ms of fit and folds before the record was made.
        assert_eq!(ops[3]["datetime_start"], "2026-12-05T10:00:00.005000+00:00");
        assert_eq!(
            ops[3]["datetime_complete"],
            "2026-12-05T10:00:00.010000+00:00"
        );
        let gamma: Value =
            serde_json::from_str(ops[3]["distributions"]["gamma"].as_str().unwrap()).unwrap();
        assert_eq!(gamma["attributes"]["low"], json!(0.01));
        assert_eq!(gamma["attributes"]["high"], json!(500.0));
    }
}
