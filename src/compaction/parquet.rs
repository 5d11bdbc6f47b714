//! Records as Parquet: the compacted tables' files, written and read back.
//!
//! Column names and types are those of the Athena tables (`bigint` as INT64, `double`
//! as DOUBLE, `string` as UTF-8 BYTE_ARRAY), every column optional as Hive columns
//! are, compressed with Snappy (Athena's default for Parquet). Columns are read back
//! by name, so a part written before a column existed reads it as null.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::Compression;
use parquet::column::reader::ColumnReader;
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::{Map, Value};

use crate::trial::id::HyperId;
use crate::trial::records::{FactRecord, HyperRecord, FACT_FIELDS, HYPER_FIELDS};

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

/// A column read back: one entry per row.
enum Column {
    Int64(Vec<Option<i64>>),
    Double(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
}

impl Column {
    fn value(&self, row: usize) -> Value {
        match self {
            Column::Int64(v) => v[row].map_or(Value::Null, Value::from),
            Column::Double(v) => v[row].map_or(Value::Null, Value::from),
            Column::Text(v) => v[row].clone().map_or(Value::Null, Value::from),
        }
    }
}

/// Spreads the non-null `values` over the rows their definition levels mark.
fn spread<T>(levels: &[i16], values: Vec<T>) -> Vec<Option<T>> {
    let mut values = values.into_iter();
    levels
        .iter()
        .map(|l| if *l > 0 { values.next() } else { None })
        .collect()
}

const BATCH: usize = 64 * 1024;

/// Reads one column chunk whole.
fn read_column(reader: ColumnReader, optional: bool) -> Result<Column, ParquetError> {
    macro_rules! drain {
        ($r:expr, $variant:ident, $map:expr) => {{
            let mut r = $r;
            let (mut levels, mut values) = (Vec::new(), Vec::new());
            loop {
                let (records, _, _) =
                    r.read_records(BATCH, Some(&mut levels), None, &mut values)?;
                if records == 0 {
                    break;
                }
            }
            if !optional {
                levels = vec![1; values.len()];
            }
            let values: Vec<_> = values
                .into_iter()
                .map($map)
                .collect::<Result<_, ParquetError>>()?;
            Column::$variant(spread(&levels, values))
        }};
    }
    Ok(match reader {
        ColumnReader::Int64ColumnReader(r) => drain!(r, Int64, Ok),
        ColumnReader::DoubleColumnReader(r) => drain!(r, Double, Ok),
        ColumnReader::ByteArrayColumnReader(r) => drain!(r, Text, |b: ByteArray| {
            String::from_utf8(b.data().to_vec())
                .map_err(|e| ParquetError::General(format!("text column: {e}")))
        }),
        _ => {
            return Err(ParquetError::General(
                "a column of a type svr-etl does not write".into(),
            ))
        }
    })
}

/// Every column of every row group, by name, one entry per row.
fn read_columns(bytes: Bytes) -> Result<(HashMap<String, Column>, usize), ParquetError> {
    let file = SerializedFileReader::new(bytes)?;
    let mut columns: HashMap<String, Column> = HashMap::new();
    let mut rows = 0;
    for g in 0..file.num_row_groups() {
        let group = file.get_row_group(g)?;
        rows += group.metadata().num_rows() as usize;
        for (i, descr) in group.metadata().schema_descr().columns().iter().enumerate() {
            let optional = descr.max_def_level() > 0;
            let column = read_column(group.get_column_reader(i)?, optional)?;
            match (columns.get_mut(descr.name()), column) {
                (None, column) => {
                    columns.insert(descr.name().to_string(), column);
                }
                (Some(Column::Int64(a)), Column::Int64(b)) => a.extend(b),
                (Some(Column::Double(a)), Column::Double(b)) => a.extend(b),
                (Some(Column::Text(a)), Column::Text(b)) => a.extend(b),
                _ => return Err(ParquetError::General("row groups disagree".into())),
            }
        }
    }
    Ok((columns, rows))
}

/// The hyper records of a part.
pub fn read_hyper(bytes: Bytes) -> Result<Vec<HyperRecord>, String> {
    let (columns, rows) = read_columns(bytes).map_err(|e| e.to_string())?;
    let names = hyper_columns();
    (0..rows)
        .map(|row| {
            let mut object = Map::new();
            for (column, field, _) in &names {
                if let Some(values) = columns.get(column) {
                    object.insert(field.to_string(), values.value(row));
                }
            }
            serde_json::from_value(Value::Object(object)).map_err(|e| format!("row {row}: {e}"))
        })
        .collect()
}

/// Calls `f` with each prediction of a part, reading the three columns side by side a
/// batch at a time, so that memory stays near one batch whatever the part's size.
pub fn scan_facts(bytes: Bytes, mut f: impl FnMut(FactRecord)) -> Result<usize, String> {
    let file = SerializedFileReader::new(bytes).map_err(|e| e.to_string())?;
    let mut rows = 0;
    for g in 0..file.num_row_groups() {
        let group = file.get_row_group(g).map_err(|e| e.to_string())?;
        let descr = group.metadata().schema_descr();
        let reader = |name: &str| {
            let i = descr
                .columns()
                .iter()
                .position(|c| c.name() == name)
                .ok_or_else(|| format!("no column {name}"))?;
            group.get_column_reader(i).map_err(|e| e.to_string())
        };
        let (
            ColumnReader::Int64ColumnReader(mut ids),
            ColumnReader::Int64ColumnReader(mut points),
            ColumnReader::DoubleColumnReader(mut preds),
        ) = (reader("hyper_id")?, reader("point_id")?, reader("y_pred")?)
        else {
            return Err("hyper_id, point_id and y_pred are not BIGINT, BIGINT, DOUBLE".into());
        };
        let (mut levels, mut id, mut point, mut pred) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        loop {
            levels.clear();
            id.clear();
            point.clear();
            pred.clear();
            let read = |e: ParquetError| e.to_string();
            let (n, _, _) = ids
                .read_records(BATCH, Some(&mut levels), None, &mut id)
                .map_err(read)?;
            points
                .read_records(BATCH, Some(&mut levels), None, &mut point)
                .map_err(read)?;
            preds
                .read_records(BATCH, Some(&mut levels), None, &mut pred)
                .map_err(read)?;
            if n == 0 {
                break;
            }
            if id.len() != n || point.len() != n || pred.len() != n {
                return Err(format!("row {rows}: a null in a prediction"));
            }
            for k in 0..n {
                f(FactRecord {
                    hyper_id: HyperId::from_raw(id[k]),
                    point_id: point[k],
                    y_pred: pred[k],
                });
            }
            rows += n;
        }
    }
    Ok(rows)
}

/// The predictions of a part.
pub fn read_facts(bytes: Bytes) -> Result<Vec<FactRecord>, String> {
    let mut facts = Vec::new();
    scan_facts(bytes, |f| facts.push(f))?;
    Ok(facts)
}

/// The trial ids a part holds, of either table.
pub fn read_ids(bytes: Bytes) -> Result<Vec<HyperId>, String> {
    let file = SerializedFileReader::new(bytes).map_err(|e| e.to_string())?;
    let mut ids = Vec::new();
    for g in 0..file.num_row_groups() {
        let group = file.get_row_group(g).map_err(|e| e.to_string())?;
        let descr = group.metadata().schema_descr();
        let Some(i) = descr.columns().iter().position(|c| c.name() == "hyper_id") else {
            return Err("no hyper_id column".into());
        };
        let optional = descr.column(i).max_def_level() > 0;
        let reader = group.get_column_reader(i).map_err(|e| e.to_string())?;
        match read_column(reader, optional).map_err(|e| e.to_string())? {
            Column::Int64(v) => ids.extend(v.into_iter().flatten().map(HyperId::from_raw)),
            _ => return Err("hyper_id is not BIGINT".into()),
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

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
