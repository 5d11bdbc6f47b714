//! Parsing rows: each line a JSON object with every key once, the first line deciding
//! the feature columns; then the whole set checked and its checksum computed.

use std::collections::HashSet;

use ndarray::{Array1, Array2};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Dataset, IS_TRAIN, MAX_TARGET, POINT_ID, RESERVED, Y_TRUE};

/// A JSON object's entries as written, a repeated key included (a map would keep
/// only the last).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// The rows parsed so far.
#[derive(Default)]
pub(super) struct Rows {
    feature_names: Vec<String>,
    point_ids: Vec<i64>,
    is_train: Vec<bool>,
    targets: Vec<f64>,
    values: Vec<f64>,
    seen_ids: HashSet<i64>,
}

/// What is wrong with a row: the key at fault, if one is, and why.
pub(super) type RowError = (Option<String>, String);

impl Rows {
    /// Adds one line; the first one decides the feature columns.
    pub(super) fn push(&mut self, line: &str) -> Result<(), RowError> {
        let Entries(entries) =
            serde_json::from_str(line).map_err(|e| (None, format!("not a JSON object: {e}")))?;
        let at = |key: &str, reason: String| (Some(key.to_string()), reason);
        let mut row = Map::new();
        for (key, value) in entries {
            if row.contains_key(&key) {
                return Err(at(&key, "appears twice in the row".into()));
            }
            row.insert(key, value);
        }
        if self.point_ids.is_empty() {
            self.feature_names = row
                .keys()
                .filter(|k| !RESERVED.contains(&k.as_str()))
                .cloned()
                .collect();
            if self.feature_names.is_empty() {
                return Err((None, "no feature columns".into()));
            }
        }
        let field = |key: &str| row.get(key).ok_or_else(|| at(key, "missing".into()));
        let id = field(POINT_ID)?;
        let id = id
            .as_i64()
            .ok_or_else(|| at(POINT_ID, format!("expected an integer, got {id}")))?;
        if !self.seen_ids.insert(id) {
            return Err(at(POINT_ID, format!("duplicate point_id {id}")));
        }
        let train = field(IS_TRAIN)?;
        let train = train
            .as_bool()
            .ok_or_else(|| at(IS_TRAIN, format!("expected true or false, got {train}")))?;
        let number = |key: &str, limit: f64| -> Result<f64, RowError> {
            let v = field(key)?;
            v.as_f64().filter(|x| x.abs() <= limit).ok_or_else(|| {
                let within = match limit {
                    f64::MAX => String::new(),
                    _ => format!(" within ±{limit:e}"),
                };
                at(key, format!("expected a finite number{within}, got {v}"))
            })
        };
        self.targets.push(number(Y_TRUE, MAX_TARGET)?);
        for name in &self.feature_names {
            self.values.push(number(name, f64::MAX)?);
        }
        if let Some(extra) = row
            .keys()
            .find(|k| !RESERVED.contains(&k.as_str()) && !self.feature_names.contains(k))
        {
            return Err(at(extra, "column not in the first row".into()));
        }
        self.point_ids.push(id);
        self.is_train.push(train);
        Ok(())
    }

    /// Checks the whole set and computes its checksum.
    pub(super) fn finish(self) -> Result<Dataset, (&'static str, String)> {
        let n = self.point_ids.len();
        let n_train = self.is_train.iter().filter(|t| **t).count();
        if n_train < 2 || n - n_train < 2 {
            return Err((
                IS_TRAIN,
                format!(
                    "need at least 2 training and 2 test rows, got {n_train} and {}",
                    n - n_train
                ),
            ));
        }
        let features = Array2::from_shape_vec((n, self.feature_names.len()), self.values)
            .expect("one value per feature per row");
        let mut dataset = Dataset {
            feature_names: self.feature_names,
            point_ids: self.point_ids,
            is_train: self.is_train,
            features,
            targets: Array1::from(self.targets),
            checksum: String::new(),
        };
        let test_y: Vec<f64> = dataset.test_indices().map(|i| dataset.targets[i]).collect();
        if test_y.iter().all(|y| *y == test_y[0]) {
            return Err((
                Y_TRUE,
                "y_true is constant over the test rows, so R^2 is undefined".into(),
            ));
        }
        let mut hasher = Sha256::new();
        dataset
            .write_ndjson(&mut hasher)
            .expect("hashing cannot fail");
        dataset.checksum = format!("{:x}", hasher.finalize());
        Ok(dataset)
    }
}
