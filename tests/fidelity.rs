//! The fit and the data set against scikit-learn: `tests/fixtures/sklearn_svr.json`,
//! made by `tests/fixtures/make_sklearn_svr.py`.

use std::sync::Arc;

use serde::Deserialize;
use svr_etl::dataset::Dataset;
use svr_etl::model::params::TrialParams;
use svr_etl::trial::trainer::{CvScore, SolverSettings, Trainer};

#[derive(Deserialize)]
struct Fixture {
    test_point_ids: Vec<i64>,
    configs: Vec<Config>,
}

#[derive(Deserialize)]
struct Config {
    gamma: f64,
    #[serde(rename = "C")]
    c: f64,
    epsilon: f64,
    test_r2: f64,
    test_pred: Vec<f64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/sklearn_svr.json")).unwrap()
}

#[test]
fn embedded_split_is_scikit_learns() {
    let d = Dataset::embedded();
    let test_ids: Vec<i64> = d.test_indices().map(|i| d.point_ids()[i]).collect();
    assert_eq!(d.n_rows(), 442);
    assert_eq!(d.n_train(), 353);
    assert_eq!(test_ids, fixture().test_point_ids);
    assert!(d
        .features()
        .iter()
        .chain(d.targets())
        .all(|v| v.is_finite()));
}

#[test]
fn fits_match_scikit_learn_svr_within_1e_5_r2() {
    let fx = fixture();
    assert!(fx.configs.len() >= 50);
    let trainer = Trainer::new(
        Arc::new(Dataset::embedded()),
        SolverSettings {
            engine: svr_etl::trial::trainer::Engine::LinfaSvm,
            tolerance: 1e-3.try_into().unwrap(),
            max_fit_secs: 600.0.try_into().unwrap(),
            max_train_rows: 20_000.try_into().unwrap(),
            max_fit_mib: 1024.try_into().unwrap(),
        },
    )
    .unwrap();
    let test_idx: Vec<usize> = trainer.dataset().test_indices().collect();
    let mut worst = 0.0f64;
    for cfg in &fx.configs {
        let params = TrialParams::new(cfg.gamma, cfg.c, cfg.epsilon).unwrap();
        let out = trainer
            .fit(
                &params,
                &Default::default(),
                &tokio_util::sync::CancellationToken::new(),
            )
            .unwrap();
        let delta = (out.test_r2 - cfg.test_r2).abs();
        worst = worst.max(delta);
        assert!(
            delta <= 1e-5,
            "gamma={} C={} epsilon={}: R^2 {} vs scikit-learn {}",
            cfg.gamma,
            cfg.c,
            cfg.epsilon,
            out.test_r2,
            cfg.test_r2
        );
        for (i, expected) in test_idx.iter().zip(&cfg.test_pred) {
            let got = out.predictions[*i];
            // Predictions are on the target's scale (25..346); R^2 is the contract,
            // this only catches a prediction that is wildly off.
            assert!(
                (got - expected).abs() < 0.05 * expected.abs().max(1.0),
                "{got} vs {expected}"
            );
        }
    }
    eprintln!(
        "worst |delta R^2| over {} configurations: {worst:e}",
        fx.configs.len()
    );
}

#[derive(Deserialize)]
struct CvFixture {
    folds: usize,
    sets: Vec<CvSet>,
}

#[derive(Deserialize)]
struct CvSet {
    name: String,
    path: String,
    configs: Vec<CvConfig>,
}

#[derive(Deserialize)]
struct CvConfig {
    gamma: f64,
    #[serde(rename = "C")]
    c: f64,
    epsilon: f64,
    folds: Vec<f64>,
    cv_r2: f64,
    cv_r2_std: f64,
}

/// Every fold's R^2 and their summary for one configuration. The fits share the
/// trial's kernel as the daemon's do, the final fit first as in a trial.
fn cross_validate(trainer: &Trainer, cfg: &CvConfig) -> (Vec<f64>, CvScore) {
    let params = TrialParams::new(cfg.gamma, cfg.c, cfg.epsilon).unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let kernel = trainer.kernel_for(&params);
    trainer.fit(&params, &kernel, &token).unwrap();
    let scores: Vec<(f64, f64)> = (0..trainer.n_folds())
        .map(|k| trainer.fit_fold(k, &params, &kernel, &token).unwrap())
        .collect();
    (scores.iter().map(|s| s.0).collect(), CvScore::of(&scores))
}

#[test]
fn cv_r2_is_scikit_learns_cross_val_score() {
    use svr_etl::trial::trainer::Engine;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tests/fixtures/cv_svr.json")).unwrap();
    let fx: CvFixture = serde_json::from_str(&text).unwrap();
    let solver = |engine| SolverSettings {
        engine,
        tolerance: 1e-3.try_into().unwrap(),
        max_fit_secs: 600.0.try_into().unwrap(),
        max_train_rows: 20_000.try_into().unwrap(),
        max_fit_mib: 1024.try_into().unwrap(),
    };
    let (mut configs, mut identical, mut worst_exact, mut worst_linfa) = (0, 0, 0.0f64, 0.0f64);
    for set in &fx.sets {
        let data = Arc::new(Dataset::from_file(&root.join(&set.path)).unwrap());
        let exact = Trainer::new(data.clone(), solver(Engine::Exact))
            .and_then(|t| t.with_folds(fx.folds))
            .unwrap();
        let linfa = Trainer::new(data, solver(Engine::LinfaSvm))
            .and_then(|t| t.with_folds(fx.folds))
            .unwrap();
        for cfg in &set.configs {
            let (folds, score) = cross_validate(&exact, cfg);
            worst_exact = worst_exact
                .max((score.mean - cfg.cv_r2).abs())
                .max((score.std - cfg.cv_r2_std).abs());
            identical += usize::from(folds == cfg.folds && score.mean == cfg.cv_r2);
            configs += 1;
            if set.name == "diabetes_default" {
                let (_, score) = cross_validate(&linfa, cfg);
                worst_linfa = worst_linfa.max((score.mean - cfg.cv_r2).abs());
            }
        }
    }
    eprintln!(
        "cv_r2: exact engine {identical} of {configs} bit-identical, worst |delta| {worst_exact:e}; linfa-svm worst {worst_linfa:e} on the default band"
    );
    assert!(configs >= 100);
    assert!(worst_exact <= 1e-9, "{worst_exact}");
    assert!(worst_linfa <= 1e-5, "{worst_linfa}");
}
