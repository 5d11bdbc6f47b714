//! The data set: parsed once from newline-delimited JSON, then held in memory.
//!
//! A row is `point_id`, `is_train`, numeric feature columns and `y_true`, the layout of
//! the Athena `data` table. The embedded default is scikit-learn's diabetes set with
//! the seed pipeline's split (`assets/diabetes.json`, made by `assets/make_diabetes.py`).
//! This module owns parsing, validation, the canonical serialization and its checksum.

mod rows;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use rows::Rows;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// The embedded default data set.
pub const DIABETES_NDJSON: &str = include_str!("../../assets/diabetes.json");

/// How messages name the embedded data set.
pub const EMBEDDED_ORIGIN: &str = "(embedded diabetes.json)";

const POINT_ID: &str = "point_id";
const IS_TRAIN: &str = "is_train";
const Y_TRUE: &str = "y_true";
/// Larger targets would overflow the sums of squares of R^2. (Features that overflow
/// the kernel make a failed trial, not a refused data set: the kernel width decides.)
const MAX_TARGET: f64 = 1e100;

/// The columns that are not features.
const RESERVED: [&str; 3] = [POINT_ID, IS_TRAIN, Y_TRUE];

/// Where the data set comes from: `dataset.path` in the config, empty for the
/// embedded set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum DatasetSource {
    /// The scikit-learn diabetes set compiled into the binary.
    Embedded,
    File(PathBuf),
}

impl From<String> for DatasetSource {
    fn from(path: String) -> DatasetSource {
        match path.trim() {
            "" => DatasetSource::Embedded,
            p => DatasetSource::File(PathBuf::from(p)),
        }
    }
}

impl From<DatasetSource> for String {
    fn from(source: DatasetSource) -> String {
        match source {
            DatasetSource::Embedded => String::new(),
            DatasetSource::File(p) => p.display().to_string(),
        }
    }
}

impl DatasetSource {
    /// How messages name the source.
    pub fn origin(&self) -> String {
        match self {
            DatasetSource::Embedded => EMBEDDED_ORIGIN.to_string(),
            DatasetSource::File(p) => p.display().to_string(),
        }
    }

    /// Reads and parses the data set.
    pub fn load(&self) -> Result<Dataset, DatasetError> {
        match self {
            DatasetSource::Embedded => Ok(Dataset::embedded()),
            DatasetSource::File(path) => Dataset::from_file(path),
        }
    }
}

/// A data set that cannot be used; names the file, line and key.
#[derive(Debug, thiserror::Error)]
#[error("data set {origin}{}{}: {reason}",
    .line.map(|l| format!(" line {l}")).unwrap_or_default(),
    .key.as_ref().map(|k| format!(": key `{k}`")).unwrap_or_default())]
pub struct DatasetError {
    pub origin: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub reason: String,
}

/// The rows, in file order, with features as one matrix.
#[derive(Debug, Clone)]
pub struct Dataset {
    feature_names: Vec<String>,
    point_ids: Vec<i64>,
    is_train: Vec<bool>,
    features: Array2<f64>,
    targets: Array1<f64>,
    checksum: String,
}

impl Dataset {
    /// The embedded diabetes set.
    pub fn embedded() -> Dataset {
        Dataset::parse(DIABETES_NDJSON, EMBEDDED_ORIGIN)
            .expect("the embedded data set is checked by the test suite")
    }

    pub fn from_file(path: &Path) -> Result<Dataset, DatasetError> {
        let bytes = std::fs::read(path).map_err(|e| DatasetError {
            origin: path.display().to_string(),
            line: None,
            key: None,
            reason: e.to_string(),
        })?;
        Dataset::parse_bytes(&bytes, &path.display().to_string())
    }

    /// Parses newline-delimited JSON; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Dataset, DatasetError> {
        Dataset::parse_bytes(text.as_bytes(), origin)
    }

    /// Parses newline-delimited JSON from bytes: UTF-8, with or without a byte-order
    /// mark; `origin` names the source in errors.
    pub fn parse_bytes(bytes: &[u8], origin: &str) -> Result<Dataset, DatasetError> {
        let err = |line: Option<usize>, key: Option<&str>, reason: String| DatasetError {
            origin: origin.to_string(),
            line,
            key: key.map(str::to_string),
            reason,
        };
        let mut rows = Rows::default();
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        for (idx, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let line = std::str::from_utf8(line)
                .map_err(|e| err(Some(idx + 1), None, format!("not UTF-8 text: {e}")))?;
            if !line.trim().is_empty() {
                rows.push(line)
                    .map_err(|(key, reason)| err(Some(idx + 1), key.as_deref(), reason))?;
            }
        }
        let dataset = rows
            .finish()
            .map_err(|(key, reason)| err(None, Some(key), reason))?;
        Ok(dataset)
    }

    pub fn n_rows(&self) -> usize {
        self.point_ids.len()
    }

    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    pub fn point_ids(&self) -> &[i64] {
        &self.point_ids
    }

    pub fn is_train(&self) -> &[bool] {
        &self.is_train
    }

    /// All rows' features, one row per data point.
    pub fn features(&self) -> &Array2<f64> {
        &self.features
    }

    pub fn targets(&self) -> &Array1<f64> {
        &self.targets
    }

    pub fn train_indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.n_rows()).filter(|i| self.is_train[*i])
    }

    pub fn test_indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.n_rows()).filter(|i| !self.is_train[*i])
    }

    pub fn n_train(&self) -> usize {
        self.train_indices().count()
    }

    /// SHA-256 (hex) of the canonical serialization [`Dataset::write_ndjson`] produces.
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// Writes the rows as newline-delimited JSON in the `data` table's layout.
    pub fn write_ndjson(&self, out: &mut dyn Write) -> io::Result<()> {
        for i in 0..self.n_rows() {
            let mut ser = serde_json::Serializer::new(&mut *out);
            let mut map = ser.serialize_map(Some(self.feature_names.len() + 3))?;
            map.serialize_entry(POINT_ID, &self.point_ids[i])?;
            map.serialize_entry(IS_TRAIN, &self.is_train[i])?;
            for (name, v) in self.feature_names.iter().zip(self.features.row(i)) {
                map.serialize_entry(name, v)?;
            }
            map.serialize_entry(Y_TRUE, &self.targets[i])?;
            map.end()?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROWS: &str = r#"{"point_id": 0, "is_train": true, "a": 1.0, "y_true": 1}
{"point_id": 1, "is_train": true, "a": 2.0, "y_true": 2}
{"point_id": 2, "is_train": false, "a": 3.0, "y_true": 3}
{"point_id": 3, "is_train": false, "a": 4.0, "y_true": 5}
"#;

    #[test]
    fn embedded_set_is_the_diabetes_split() {
        let d = Dataset::embedded();
        assert_eq!(d.n_rows(), 442);
        assert_eq!(d.n_train(), 353);
        assert_eq!(d.test_indices().count(), 89);
        assert_eq!(
            d.feature_names(),
            ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
        );
        assert!(d.features().iter().all(|v| v.is_finite()));
        assert_eq!(d.point_ids(), (0..442).collect::<Vec<i64>>());
    }

    #[test]
    fn canonical_form_round_trips() {
        let d = Dataset::embedded();
        let mut out = Vec::new();
        d.write_ndjson(&mut out).unwrap();
        let again = Dataset::parse(std::str::from_utf8(&out).unwrap(), "x").unwrap();
        assert_eq!(again.features(), d.features());
        assert_eq!(again.targets(), d.targets());
        assert_eq!(again.checksum(), d.checksum());
    }

    #[test]
    fn any_feature_columns_are_accepted() {
        let d = Dataset::parse(ROWS, "t").unwrap();
        assert_eq!(d.feature_names(), ["a"]);
        assert_eq!(d.n_train(), 2);
    }

    fn parse_err(text: &str) -> String {
        Dataset::parse(text, "rows.json").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_line_and_key() {
        let bad_value = ROWS.replace(r#""a": 3.0"#, r#""a": "x""#);
        assert_eq!(
            parse_err(&bad_value),
            "data set rows.json line 3: key `a`: expected a finite number, got \"x\""
        );
        let missing = ROWS.replace(r#""a": 2.0, "#, "");
        assert!(parse_err(&missing).starts_with("data set rows.json line 2: key `a`: missing"));
        let extra = ROWS.replace(r#""a": 4.0"#, r#""a": 4.0, "b": 1"#);
        assert!(
            parse_err(&extra).contains("line 4: key `b`"),
            "{}",
            parse_err(&extra)
        );
        let dup = ROWS.replace(r#""point_id": 3"#, r#""point_id": 0"#);
        assert!(parse_err(&dup).contains("line 4: key `point_id`: duplicate"));
        let twice = ROWS.replace(r#""a": 2.0"#, r#""a": 2.0, "a": 9.0"#);
        assert!(parse_err(&twice).contains("line 2: key `a`: appears twice"));
        let huge = ROWS.replace(r#""y_true": 5"#, r#""y_true": -1e300"#);
        assert!(parse_err(&huge).contains("line 4: key `y_true`: expected a finite number within"));
        let mut latin1 = ROWS.as_bytes().to_vec();
        let at = ROWS.find("\"a\": 3.0").unwrap() + 1;
        latin1[at] = 0xE9;
        let err = Dataset::parse_bytes(&latin1, "rows.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("data set rows.json line 3: not UTF-8"),
            "{err}"
        );
        let bom = [b"\xEF\xBB\xBF".as_slice(), ROWS.as_bytes()].concat();
        assert_eq!(Dataset::parse_bytes(&bom, "bom").unwrap().n_rows(), 4);
        let not_json = ROWS.replace(r#"{"point_id": 1"#, r#"{point_id: 1"#);
        assert!(parse_err(&not_json).starts_with("data set rows.json line 2: not a JSON object"));
        let no_test = ROWS.replace("false", "true");
        assert!(parse_err(&no_test).contains("key `is_train`"));
        let flat = ROWS.replace(r#""y_true": 5"#, r#""y_true": 3"#);
        assert!(parse_err(&flat).contains("key `y_true`"));
    }
}
