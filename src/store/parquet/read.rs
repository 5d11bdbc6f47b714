//! Compacted parts read back: by column name, so a part written before a column
//! existed reads it as null; predictions a batch at a time.

use std::collections::HashMap;

use bytes::Bytes;
use parquet::column::reader::ColumnReader;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::{Map, Value};

use super::hyper_columns;
use crate::model::id::HyperId;
use crate::model::records::{FactRecord, HyperRecord};

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
#[cfg(test)]
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
