//! Time per fit and prediction of the engine alone, over the configurations of
//! `tests/fixtures/exact_svr.json` for each of its data sets: median of 9 repeats per
//! configuration, one thread. It has no peer of its own: the application's
//! `cargo bench --bench engines` measures the same against scikit-learn.
//!
//!     cargo bench -p svr-exact --bench fit
//!
//! Under `cargo test` it fits the first configuration of each set once, as a smoke test.

use std::path::Path;
use std::time::Instant;

use ndarray::{Array2, Axis};
use svr_exact::{Distances, SvrParams};

/// One set of the fixture: its name, rows, which are for training, targets, and
/// (gamma, C, epsilon) of each configuration.
type Set = (String, Array2<f64>, Vec<bool>, Vec<f64>, Vec<[f64; 3]>);

fn sets(root: &Path) -> Vec<Set> {
    let text = std::fs::read_to_string(root.join("tests/fixtures/exact_svr.json")).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for set in fixture["sets"].as_array().unwrap() {
        let path = root.join(set["path"].as_str().unwrap());
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let features: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "point_id" | "is_train" | "y_true"))
                    .map(|(_, v)| v.as_f64().unwrap())
                    .collect()
            })
            .collect();
        let dim = features[0].len();
        let x = Array2::from_shape_vec((rows.len(), dim), features.concat()).unwrap();
        let train = rows
            .iter()
            .map(|r| r["is_train"].as_bool().unwrap())
            .collect();
        let y = rows.iter().map(|r| r["y_true"].as_f64().unwrap()).collect();
        let configs = set["configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| ["gamma", "C", "epsilon"].map(|k| c[k].as_f64().unwrap()))
            .collect();
        out.push((
            set["name"].as_str().unwrap().to_string(),
            x,
            train,
            y,
            configs,
        ));
    }
    out
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    println!("exp path: {:?}", svr_exact::exp_path());
    let repeats = if full { 9 } else { 1 };
    for (name, x, is_train, y, configs) in sets(root) {
        let train: Vec<usize> = (0..y.len()).filter(|i| is_train[*i]).collect();
        let train_x = x.select(Axis(0), &train);
        let train_y: Vec<f64> = train.iter().map(|i| y[*i]).collect();
        let dist = Distances::new(&train_x, &x, Distances::bytes_for(train.len()));
        let configs = if full { &configs[..] } else { &configs[..1] };
        let mut medians: Vec<f64> = configs
            .iter()
            .map(|&[gamma, c, epsilon]| {
                let params = SvrParams {
                    gamma,
                    c,
                    epsilon,
                    tolerance: 1e-3,
                }
                .check()
                .unwrap();
                let mut times: Vec<f64> = (0..repeats)
                    .map(|_| {
                        let started = Instant::now();
                        let model = params.fit(&dist, &train_y, &mut || false).unwrap();
                        std::hint::black_box(model.predict(&dist));
                        started.elapsed().as_secs_f64()
                    })
                    .collect();
                times.sort_by(f64::total_cmp);
                times[times.len() / 2]
            })
            .collect();
        let mean = medians.iter().sum::<f64>() / medians.len() as f64;
        medians.sort_by(f64::total_cmp);
        println!(
            "{name}: {} training rows, {} configurations: {:.3} ms a fit and prediction on average, slowest {:.3} ms",
            train.len(),
            configs.len(),
            mean * 1e3,
            medians[medians.len() - 1] * 1e3
        );
    }
}
