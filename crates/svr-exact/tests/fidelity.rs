//! The engine against scikit-learn, to the last bit: `tests/fixtures/exact_svr.json`,
//! made by `tests/fixtures/make_exact_svr.py` with scikit-learn 1.9.1. Support
//! vectors, coefficients, intercept, iteration count and every prediction must be the
//! same numbers, also when a memory budget evicts kernel rows, and when the kernel rows
//! and the predictions' kernel values come from kernels shared with a larger training
//! set.

use std::path::Path;

use ndarray::{Array2, Axis};
use serde::Deserialize;
use svr_exact::{Distances, Shared, SharedKernel, SvrParams, MAX_KEPT_DISTANCES};

#[derive(Deserialize)]
struct ExactFixture {
    sets: Vec<ExactSet>,
}

#[derive(Deserialize)]
struct ExactSet {
    name: String,
    /// The data set, relative to the crate's root.
    path: String,
    configs: Vec<ExactConfig>,
}

#[derive(Deserialize)]
struct ExactConfig {
    gamma: f64,
    #[serde(rename = "C")]
    c: f64,
    epsilon: f64,
    support: Vec<usize>,
    dual_coef: Vec<f64>,
    intercept: f64,
    n_iter: usize,
    predictions: Vec<f64>,
    test_r2: f64,
}

/// A data set as the fixtures store it: one JSON object a line with `point_id`,
/// `is_train`, the features in file order and `y_true`.
struct Rows {
    features: Array2<f64>,
    targets: Vec<f64>,
    is_train: Vec<bool>,
}

fn read_rows(path: &Path) -> Rows {
    let text = std::fs::read_to_string(path).unwrap();
    let (mut values, mut targets, mut is_train, mut dim) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        let features: Vec<f64> = row
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "point_id" | "is_train" | "y_true"))
            .map(|(_, v)| v.as_f64().unwrap())
            .collect();
        dim = features.len();
        values.extend(features);
        targets.push(row["y_true"].as_f64().unwrap());
        is_train.push(row["is_train"].as_bool().unwrap());
    }
    Rows {
        features: Array2::from_shape_vec((targets.len(), dim), values).unwrap(),
        targets,
        is_train,
    }
}

/// R^2 as scikit-learn's `r2_score` computes it.
fn r_squared(truth: &[f64], predicted: &[f64]) -> f64 {
    let mean = truth.iter().sum::<f64>() / truth.len() as f64;
    let residual: f64 = truth
        .iter()
        .zip(predicted)
        .map(|(t, p)| (t - p) * (t - p))
        .sum();
    let total: f64 = truth.iter().map(|t| (t - mean) * (t - mean)).sum();
    1.0 - residual / total
}

#[test]
fn the_engine_is_scikit_learn_to_the_last_bit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tests/fixtures/exact_svr.json")).unwrap();
    let fx: ExactFixture = serde_json::from_str(&text).unwrap();
    let (mut configs, mut identical, mut worst_r2) = (0, 0, 0.0f64);
    // Predictions read from a shared prediction kernel (kept up to 16 MiB).
    let mut shared_predictions = 0;
    for set in &fx.sets {
        let data = read_rows(&root.join(&set.path));
        let train: Vec<usize> = (0..data.targets.len())
            .filter(|i| data.is_train[*i])
            .collect();
        let test: Vec<usize> = (0..data.targets.len())
            .filter(|i| !data.is_train[*i])
            .collect();
        let train_x = data.features.select(Axis(0), &train);
        let train_y: Vec<f64> = train.iter().map(|i| data.targets[*i]).collect();
        // Every other data set under a budget that leaves a third of the kernel rows:
        // rows evicted and computed again; the results must not change.
        let dense = Distances::bytes_for(train.len());
        let budget = if set.name.contains("default") || set.name == "larger" {
            dense
        } else {
            dense / 3
        };
        let dist = Distances::new(&train_x, &data.features, budget);
        let everything = Distances::new(&data.features, &data.features, u128::MAX);
        assert_eq!(dist.is_dense(), budget == dense, "{}", set.name);
        // The training rows' distances are kept whole while small and within the
        // budget (on the smaller dense sets), else computed for each kernel row.
        let small = dense <= MAX_KEPT_DISTANCES;
        assert_eq!(
            dist.keeps_train_distances(),
            small && budget == dense,
            "{}",
            set.name
        );
        for cfg in &set.configs {
            let params = SvrParams {
                gamma: cfg.gamma,
                c: cfg.c,
                epsilon: cfg.epsilon,
                tolerance: 1e-3,
            };
            // Every other configuration takes its kernel rows from a kernel shared
            // with a larger training set (all rows, training and test), as a fold
            // takes them from the trial's: the entries for two training rows are the
            // same numbers.
            let kernel = SharedKernel::new(&everything, cfg.gamma);
            let shared = (configs % 2 == 1).then_some(Shared {
                kernel: &kernel,
                full: &everything,
                rows: &train,
            });
            // Stopped past twice the reference's iterations, so that a broken solver
            // or kernel fails here rather than runs on.
            let mut checks = 0;
            let mut stop = || {
                checks += 1;
                checks * 1000 > 2 * cfg.n_iter + 1000
            };
            let model = params
                .check()
                .unwrap()
                .fit_sharing(&dist, &train_y, shared, &mut stop)
                .unwrap_or_else(|stopped| {
                    panic!(
                        "{} gamma={} C={} epsilon={}: no solution after {} iterations (the reference took {})",
                        set.name, cfg.gamma, cfg.c, cfg.epsilon, stopped.iterations, cfg.n_iter
                    )
                });
            // A fit sharing the trial's kernel reads its predictions from the trial's
            // prediction kernel, whose training rows are all of the rows here.
            let every_row: Vec<usize> = (0..data.targets.len()).collect();
            let through_shared = shared.and_then(|s| s.predict(&model, &[], &every_row));
            shared_predictions += usize::from(through_shared.is_some());
            let pred = through_shared.unwrap_or_else(|| model.predict(&dist));
            let truth: Vec<f64> = test.iter().map(|i| data.targets[*i]).collect();
            let test_pred: Vec<f64> = test.iter().map(|i| pred[*i]).collect();
            worst_r2 = worst_r2.max((r_squared(&truth, &test_pred) - cfg.test_r2).abs());
            let same = model.support == cfg.support
                && model.dual_coef == cfg.dual_coef
                && model.intercept == cfg.intercept
                && model.iterations == cfg.n_iter
                && pred == cfg.predictions;
            if !same && identical == configs {
                eprintln!(
                    "first difference: {} gamma={} C={} epsilon={}: iterations {} vs {}, intercept {} vs {}, {} vs {} support vectors",
                    set.name, cfg.gamma, cfg.c, cfg.epsilon, model.iterations, cfg.n_iter,
                    model.intercept, cfg.intercept, model.support.len(), cfg.support.len()
                );
            }
            identical += usize::from(same);
            configs += 1;
        }
    }
    eprintln!(
        "exact engine: {identical} of {configs} bit-identical ({shared_predictions} predicted through a shared prediction kernel), worst |delta test R^2| {worst_r2:e}"
    );
    assert!(configs >= 200);
    assert!(
        shared_predictions >= configs / 4,
        "{shared_predictions} of {configs}"
    );
    assert!(worst_r2 <= 1e-9, "{worst_r2}");
    assert_eq!(identical, configs);
}
