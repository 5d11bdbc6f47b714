//! Records as Parquet: the compacted tables' files, written and read back.
//!
//! Column names and types are those of the Athena tables (`bigint` as INT64, `double`
//! as DOUBLE, `string` as UTF-8 BYTE_ARRAY), every column optional as Hive columns
//! are, compressed with Snappy (Athena's default for Parquet). Columns are read back
//! by name, so a part written before a column existed reads it as null.

mod read;

use std::sync::Arc;

use parquet::basic::Compression;
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::Value;

use crate::model::records::{FactRecord, HyperRecord, FACT_FIELDS, HYPER_FIELDS};
pub use read::{read_hyper, read_ids, scan_facts};

/// A column's type, as the Athena table declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `bigint`
    Int64,
    /// `double`
    Double,
    /// `string`
    Text,
}

impl Kind {
    /// The Athena type name.
    pub fn athena(self) -> &'static str {
        match self {
            Kind::Int64 => "BIGINT",
            Kind::Double => "DOUBLE",
            Kind::Text => "STRING",
        }
    }

    fn parquet(self) -> &'static str {
        match self {
            Kind::Int64 => "INT64",
            Kind::Double => "DOUBLE",
            Kind::Text => "BYTE_ARRAY",
        }
    }
}

/// The types of [`HYPER_FIELDS`], in their order.
const HYPER_KINDS: [Kind; 24] = {
    use Kind::*;
    [
        Int64, Text, Text, Text, Double, Double, Double, Int64, Double, Double, Int64, Int64,
        Int64, Double, Double, Double, Int64, Double, Text, Int64, Double, Text, Text, Text,
    ]
};

/// The types of [`FACT_FIELDS`], in their order.
const FACT_KINDS: [Kind; 3] = [Kind::Int64, Kind::Int64, Kind::Double];

/// The columns of the compacted hyper table: (column name, record field, type).
pub fn hyper_columns() -> Vec<(String, &'static str, Kind)> {
    columns(HYPER_FIELDS, &HYPER_KINDS)
}

/// The columns of the compacted predictions table.
pub fn fact_columns() -> Vec<(String, &'static str, Kind)> {
    columns(FACT_FIELDS, &FACT_KINDS)
}

fn columns(fields: &[&'static str], kinds: &[Kind]) -> Vec<(String, &'static str, Kind)> {
    assert_eq!(fields.len(), kinds.len(), "one type per field");
    fields
        .iter()
        .zip(kinds)
        .map(|(f, k)| (f.to_lowercase(), *f, *k))
        .collect()
}

fn schema(name: &str, columns: &[(String, &'static str, Kind)]) -> String {
    let fields: String = columns
        .iter()
        .map(|(column, _, kind)| {
            let utf8 = if *kind == Kind::Text { " (UTF8)" } else { "" };
            format!("  OPTIONAL {} {column}{utf8};\n", kind.parquet())
        })
        .collect();
    format!("message {name} {{\n{fields}}}")
}

/// One column's values: the non-null ones, and a definition level per row (1 present,
/// 0 null).
enum Values {
    Int64(Vec<i64>),
    Double(Vec<f64>),
    Text(Vec<ByteArray>),
}

struct ColumnData {
    values: Values,
    levels: Vec<i16>,
}

impl ColumnData {
    fn new(kind: Kind) -> ColumnData {
        let values = match kind {
            Kind::Int64 => Values::Int64(Vec::new()),
            Kind::Double => Values::Double(Vec::new()),
            Kind::Text => Values::Text(Vec::new()),
        };
        ColumnData {
            values,
            levels: Vec::new(),
        }
    }

    /// Adds one row's value; a JSON value of another type than the column's is a bug in
    /// the type table, which a test checks against the records.
    fn push(&mut self, value: &Value) {
        if value.is_null() {
            self.levels.push(0);
            return;
        }
        self.levels.push(1);
        match &mut self.values {
            Values::Int64(v) => v.push(value.as_i64().expect("an integer column")),
            Values::Double(v) => v.push(value.as_f64().expect("a number column")),
            Values::Text(v) => v.push(ByteArray::from(
                value.as_str().expect("a text column").as_bytes().to_vec(),
            )),
        }
    }
}

/// Who wrote a part, kept in its metadata: two writers compacting the same trials
/// produce different bytes, so that create-once tells them apart.
pub type Writer = String;

fn write(
    name: &str,
    columns: &[(String, &'static str, Kind)],
    data: Vec<ColumnData>,
    writer: &Writer,
) -> Result<Vec<u8>, ParquetError> {
    let schema = Arc::new(parse_message_type(&schema(name, columns))?);
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("svr-etl {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "svr-etl.compacted_by".to_string(),
            writer.clone(),
        )]))
        .build();
    let mut out = Vec::new();
    let mut file = SerializedFileWriter::new(&mut out, schema, Arc::new(props))?;
    let mut group = file.next_row_group()?;
    let mut data = data.into_iter();
    while let Some(mut column) = group.next_column()? {
        let ColumnData { values, levels } = data.next().expect("one data per column");
        match (column.untyped(), &values) {
            (ColumnWriter::Int64ColumnWriter(w), Values::Int64(v)) => {
                w.write_batch(v, Some(&levels), None)?;
            }
            (ColumnWriter::DoubleColumnWriter(w), Values::Double(v)) => {
                w.write_batch(v, Some(&levels), None)?;
            }
            (ColumnWriter::ByteArrayColumnWriter(w), Values::Text(v)) => {
                w.write_batch(v, Some(&levels), None)?;
            }
            _ => unreachable!("the schema is made from the same types"),
        }
        column.close()?;
    }
    group.close()?;
    file.close()?;
    Ok(out)
}

/// Hyper records as one Parquet file.
pub fn write_hyper(records: &[HyperRecord], writer: &Writer) -> Result<Vec<u8>, ParquetError> {
    let columns = hyper_columns();
    let mut data: Vec<ColumnData> = columns.iter().map(|c| ColumnData::new(c.2)).collect();
    for record in records {
        let Value::Object(row) = serde_json::to_value(record).expect("records serialize") else {
            unreachable!("a record is an object")
        };
        for ((_, field, _), column) in columns.iter().zip(&mut data) {
            column.push(row.get(*field).unwrap_or(&Value::Null));
        }
    }
    write("hyper", &columns, data, writer)
}

/// Predictions as one Parquet file.
pub fn write_facts(facts: &[FactRecord], writer: &Writer) -> Result<Vec<u8>, ParquetError> {
    let all = vec![1; facts.len()];
    let data = vec![
        ColumnData {
            values: Values::Int64(facts.iter().map(|f| f.hyper_id.get()).collect()),
            levels: all.clone(),
        },
        ColumnData {
            values: Values::Int64(facts.iter().map(|f| f.point_id).collect()),
            levels: all.clone(),
        },
        ColumnData {
            values: Values::Double(facts.iter().map(|f| f.y_pred).collect()),
            levels: all,
        },
    ];
    write("fact", &fact_columns(), data, writer)
}

#[cfg(test)]
mod tests {
    use super::read::read_facts;
    use super::*;
    use crate::model::id::HyperId;
    use bytes::Bytes;

    fn record(id: i64, cv: Option<f64>) -> HyperRecord {
        let text = format!(
            r#"{{"hyper_id":{id},"study":"s","status":"ok","error":null,"gamma":0.1,"C":3.5,"epsilon":0.01,"seed":7,"train_r2":0.5,"test_r2":0.4,"n_support":12,"n_train":353,"n_test":89,"fit_ms":1.5,"cv_r2":{},"cv_r2_std":null,"cv_folds":5,"cv_ms":null,"sampler":"tpe","n_history":3,"solver_tol":0.001,"created_at":"2026-11-26T10:00:00.000Z","host":"h","version":"0.1.0"}}"#,
            cv.map_or("null".to_string(), |v| format!("{v:?}"))
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn hyper_records_round_trip_with_their_nulls() {
        let records = vec![record(1, Some(0.47)), record(2, None)];
        let bytes = write_hyper(&records, &"w".to_string()).unwrap();
        assert_eq!(read_hyper(Bytes::from(bytes.clone())).unwrap(), records);
        assert_eq!(
            read_ids(Bytes::from(bytes)).unwrap(),
            [HyperId::from_raw(1), HyperId::from_raw(2)]
        );
    }

    #[test]
    fn facts_round_trip_bit_for_bit() {
        let facts: Vec<FactRecord> = (0..1000)
            .map(|i| FactRecord {
                hyper_id: HyperId::from_raw(i / 100),
                point_id: i,
                y_pred: (i as f64).sin() * 1e3 + 0.1,
            })
            .collect();
        let bytes = write_facts(&facts, &"w".to_string()).unwrap();
        assert_eq!(read_facts(Bytes::from(bytes.clone())).unwrap(), facts);
        assert_eq!(read_ids(Bytes::from(bytes)).unwrap().len(), 10);
    }

    #[test]
    fn the_writer_is_in_the_bytes() {
        let records = vec![record(1, None)];
        let a = write_hyper(&records, &"host-a".to_string()).unwrap();
        let b = write_hyper(&records, &"host-b".to_string()).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn every_field_has_a_type_that_fits_its_values() {
        // A record with every optional field set: each value goes in its column.
        let mut r = record(1, Some(0.4));
        r.cv_r2_std = Some(0.01);
        r.cv_ms = Some(3.0);
        r.error = Some("x".into());
        let bytes = write_hyper(std::slice::from_ref(&r), &"w".to_string()).unwrap();
        assert_eq!(read_hyper(Bytes::from(bytes)).unwrap(), [r]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read_hyper(Bytes::from_static(b"not parquet")).is_err());
        assert!(read_ids(Bytes::from_static(b"PAR1")).is_err());
    }
}
