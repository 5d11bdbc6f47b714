//! The search: the TPE sampler against Optuna's own functions
//! (`tests/fixtures/tpe.json`, made by `tests/fixtures/make_tpe.py`), the study history
//! read from a sink, and TPE runs that learn across trials and processes.

use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use svr_etl::config::Settings;
use svr_etl::model::id::{HyperId, HyperIdGenerator};
use svr_etl::search::bounds;
use svr_etl::search::history::{point, StudyHistory};
use svr_etl::search::parzen::Point;
use svr_etl::sink::keys::running_key;
use svr_etl::sink::{BodyWriter, Compression, Deadline, Layout, LocalSink, Sink};

use crate::helper::{field, file_path, files_under, ndjson, stderr, stdout, svr_etl};
use svr_etl::search::tpe::{estimators, split, Scored};

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    trials: Vec<Trial>,
    below: Vec<i64>,
    points: Vec<Params>,
    good_log_pdf: Vec<f64>,
    other_log_pdf: Vec<f64>,
}

#[derive(Deserialize)]
struct Trial {
    number: i64,
    params: Params,
    value: Option<f64>,
}

#[derive(Deserialize)]
struct Params {
    gamma: f64,
    #[serde(rename = "C")]
    c: f64,
    epsilon: f64,
}

impl Params {
    fn point(&self) -> Point {
        point(self.gamma, self.c, self.epsilon)
    }
}

#[test]
fn tpe_matches_optunas_split_and_estimators() {
    let text = include_str!("fixtures/tpe.json");
    let fx: Fixture = serde_json::from_str(text).unwrap();
    // The fixture's space is the shipped default's.
    let bounds = bounds(&Settings::load(None).unwrap().search().space());
    let mut compared = 0;
    for case in &fx.cases {
        let completed: Vec<Scored> = case
            .trials
            .iter()
            .filter_map(|t| {
                Some(Scored {
                    order: t.number,
                    x: t.params.point(),
                    value: t.value?,
                })
            })
            .collect();
        let running: Vec<(i64, Point)> = case
            .trials
            .iter()
            .filter(|t| t.value.is_none())
            .map(|t| (t.number, t.params.point()))
            .collect();
        let (below, _) = split(&completed, &running);
        let expected: Vec<Point> = case
            .below
            .iter()
            .map(|n| case.trials[*n as usize].params.point())
            .collect();
        assert_eq!(below, expected, "{} trials", case.trials.len());
        let (good, other) = estimators(&completed, &running, bounds);
        for (i, p) in case.points.iter().enumerate() {
            let x = p.point();
            for (mine, theirs) in [
                (good.log_pdf(&x), case.good_log_pdf[i]),
                (other.log_pdf(&x), case.other_log_pdf[i]),
            ] {
                assert!(
                    (mine - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
                    "{} trials, point {i}: {mine} vs {theirs}",
                    case.trials.len()
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 500, "{compared}");
}

/// A hyper record as the daemon writes it, with the fields the history reads.
fn hyper_line(id: HyperId, study: &str, status: &str, cv_r2: Option<f64>) -> String {
    serde_json::json!({
        "hyper_id": id, "study": study, "status": status, "gamma": 0.5, "C": 2.0,
        "epsilon": 0.1, "cv_r2": cv_r2, "test_r2": 0.3,
    })
    .to_string()
        + "\n"
}

async fn put(sink: &LocalSink, key: &str, text: String) {
    let body: BodyWriter = std::sync::Arc::new(move |w| w.write_all(text.as_bytes()));
    sink.create(key, body, &Deadline::after(Duration::from_secs(5)))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_history_is_the_study_in_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    let sink = LocalSink::new(dir.path().to_path_buf());
    let layout = Layout::new(Compression::None);
    let now = Utc::now();
    let ids = HyperIdGenerator::with_node(7);
    let days_ago = |d: i64| now - chrono::Duration::days(d);
    // Three scored trials of the study over three days, one failed, one without a
    // score, one of another study, and one unreadable.
    for (days, status, cv, study) in [
        (40, "ok", Some(0.41), "s1"),
        (1, "ok", Some(0.42), "s1"),
        (0, "ok", Some(0.43), "s1"),
        (0, "failed", None, "s1"),
        (0, "ok", None, "s1"),
        (0, "ok", Some(0.9), "s2"),
    ] {
        let t = days_ago(days);
        let id = ids.next(t);
        put(
            &sink,
            &layout.hyper_key(t, id),
            hyper_line(id, study, status, cv),
        )
        .await;
    }
    let broken = ids.next(now);
    put(&sink, &layout.hyper_key(now, broken), "{not json\n".into()).await;
    // A trial in flight on another host, and one whose host died two hours ago.
    let live = ids.next(now);
    put(
        &sink,
        &running_key("s1", live, [0.1, 1.0, 0.01]),
        String::new(),
    )
    .await;
    // (Ids never go back in time within a generator.)
    let dead = HyperIdGenerator::with_node(8).next(now - chrono::Duration::hours(2));
    let dead_key = running_key("s1", dead, [0.2, 2.0, 0.02]);
    put(&sink, &dead_key, String::new()).await;

    let mut history = StudyHistory::default();
    history.refresh(&sink, "s1", now).await.unwrap();
    let mut values: Vec<f64> = history.completed().iter().map(|t| t.value).collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [0.41, 0.42, 0.43]);
    assert_eq!(history.unreadable, 1);
    let running = history.running(HyperId::from_raw(0));
    assert_eq!(running, vec![(live.get(), point(0.1, 1.0, 0.01))]);
    assert!(
        sink.get(&dead_key).await.unwrap().is_none(),
        "stale marker removed"
    );

    // Later refreshes read only what is new, and take this process's own trials.
    let later = now + chrono::Duration::seconds(30);
    let newer = ids.next(later);
    put(
        &sink,
        &layout.hyper_key(later, newer),
        hyper_line(newer, "s1", "ok", Some(0.44)),
    )
    .await;
    let own = ids.next(later);
    history.start(own, point(1.0, 1.0, 0.1));
    assert_eq!(history.running(newer).len(), 2);
    history.finish(own, point(1.0, 1.0, 0.1), Some(0.45));
    history.refresh(&sink, "s1", later).await.unwrap();
    assert_eq!(history.completed().len(), 5);
    assert_eq!(history.unreadable, 1, "read once");
    // The other host's marker is gone once its trial is: it no longer counts.
    sink.delete(&running_key("s1", live, [0.1, 1.0, 0.01]))
        .await
        .unwrap();
    history
        .refresh(&sink, "s1", later + chrono::Duration::seconds(5))
        .await
        .unwrap();
    assert!(history.running(HyperId::from_raw(0)).is_empty());
    // Another study starts afresh.
    history
        .refresh(&sink, "s2", later + chrono::Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(history.completed().len(), 1);
}

#[test]
fn once_with_tpe_learns_across_its_trials_and_each_trial_replays() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = svr_etl(dir.path())
            .args(args)
            .env("SVR_ETL__SEARCH__SAMPLER", "tpe")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    run(&["once", "--trials", "14"]);
    let sink = dir.path().join("svr-etl-output");
    let mut records: Vec<Value> = files_under(&sink)
        .iter()
        .filter(|f| f.starts_with("hyper/"))
        .flat_map(|f| ndjson(&std::fs::read_to_string(sink.join(f)).unwrap()))
        .collect();
    records.sort_by_key(|r| r["hyper_id"].as_i64());
    let seen: Vec<u64> = records
        .iter()
        .map(|r| r["n_history"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, (0..14).collect::<Vec<u64>>());
    assert!(records
        .iter()
        .all(|r| r["sampler"] == "tpe" && r["cv_folds"] == 5));
    assert!(
        files_under(&sink)
            .iter()
            .all(|f| !f.starts_with("running/")),
        "every marker withdrawn"
    );
    // A second process sees the first one's trials.
    run(&["once"]);
    let all = files_under(&sink);
    let newest = all
        .iter()
        .filter(|f| f.starts_with("hyper/"))
        .max()
        .unwrap();
    let record = &ndjson(&std::fs::read_to_string(sink.join(newest)).unwrap())[0];
    assert_eq!(record["n_history"], 14);
    // Its parameters replay it exactly.
    let g = record["gamma"].to_string();
    let c = record["C"].to_string();
    let e = record["epsilon"].to_string();
    let line = run(&["once", "--gamma", &g, "--c", &c, "--epsilon", &e]);
    let replay = &ndjson(&std::fs::read_to_string(file_path(field(&line, "hyper"))).unwrap())[0];
    assert_eq!(replay["test_r2"], record["test_r2"]);
    assert_eq!(replay["cv_r2"], record["cv_r2"]);
    assert!(replay["sampler"].is_null());
}
