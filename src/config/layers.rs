//! The layers a configuration is merged from, with the `config` crate: the embedded
//! default file, the user's file, then `SVR_ETL__SECTION__KEY` variables.
//!
//! The `config` crate converts loosely when it deserializes (`true` into 1, `3.5` into
//! 4), so it is used only to merge: the merged tree is taken out with its value kinds
//! intact and handed to serde as TOML, which refuses a wrong type. Environment values
//! are read by [`EnvLayer`], which types each one by its key's kind in the default file.

use std::path::Path;

use config::{Config, File, FileFormat, Map, Source, Value, ValueKind};

/// The documented default file, embedded as the lowest layer.
pub const DEFAULT_TOML: &str = include_str!("../../config/svr-etl.toml");

const ENV_PREFIX: &str = "SVR_ETL__";

/// The user's file, read and parsed here first: TOML's own errors name the line and
/// column where the `config` crate's do not.
pub fn read_user_file(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..bad].iter().filter(|b| **b == b'\n').count() + 1;
        format!("line {line}: not UTF-8 text")
    })?;
    toml::from_str::<toml::Table>(&text).map_err(|e| e.to_string())?;
    Ok(text)
}

/// Merges the layers, the user's file given as its text, into one TOML table.
pub fn merge(user_file: Option<&str>) -> Result<toml::Value, config::ConfigError> {
    let mut builder = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
    if let Some(text) = user_file {
        builder = builder.add_source(File::from_str(text, FileFormat::Toml));
    }
    let merged: Value = builder
        .add_source(EnvLayer::from_process())
        .build()?
        .try_deserialize()?;
    Ok(to_toml(merged).unwrap_or_else(|| toml::Value::Table(Default::default())))
}

/// The environment variable that sets `key` (`section.key`), if it is set.
pub fn env_var_for(key: &str) -> Option<String> {
    let name = format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    );
    std::env::var_os(&name).map(|_| name)
}

/// A config value as TOML, keeping its kind; `None` for a nil, which TOML cannot hold
/// (the key is then left out and serde reports it missing).
fn to_toml(value: Value) -> Option<toml::Value> {
    Some(match value.kind {
        ValueKind::Nil => return None,
        ValueKind::Boolean(b) => toml::Value::Boolean(b),
        ValueKind::I64(i) => toml::Value::Integer(i),
        ValueKind::I128(i) => int(i64::try_from(i).ok(), i)?,
        ValueKind::U64(u) => int(i64::try_from(u).ok(), u)?,
        ValueKind::U128(u) => int(i64::try_from(u).ok(), u)?,
        ValueKind::Float(f) => toml::Value::Float(f),
        ValueKind::String(s) => toml::Value::String(s),
        ValueKind::Array(items) => {
            toml::Value::Array(items.into_iter().filter_map(to_toml).collect())
        }
        ValueKind::Table(table) => toml::Value::Table(
            table
                .into_iter()
                .filter_map(|(k, v)| Some((k, to_toml(v)?)))
                .collect(),
        ),
    })
}

/// An integer beyond i64 becomes its decimal text, which an integer key then refuses.
fn int(fits: Option<i64>, value: impl ToString) -> Option<toml::Value> {
    Some(match fits {
        Some(i) => toml::Value::Integer(i),
        None => toml::Value::String(value.to_string()),
    })
}

/// `SVR_ETL__SECTION__KEY=value` variables, typed by the key's kind in the default
/// file: a range key takes `min,max`; a value that does not parse as its kind stays a
/// string, so that serde names the key and the type it expected.
#[derive(Debug, Clone)]
struct EnvLayer {
    vars: Vec<(String, String)>,
}

impl EnvLayer {
    fn from_process() -> EnvLayer {
        let vars = std::env::vars()
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix(ENV_PREFIX)?;
                Some((rest.to_ascii_lowercase().replace("__", "."), value))
            })
            .collect();
        EnvLayer { vars }
    }
}

impl Source for EnvLayer {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        let defaults: toml::Table = toml::from_str(DEFAULT_TOML).expect("the default file is TOML");
        let origin = "the environment".to_string();
        Ok(self
            .vars
            .iter()
            .map(|(key, raw)| {
                let like = key
                    .split_once('.')
                    .and_then(|(section, name)| defaults.get(section)?.get(name));
                (key.clone(), Value::new(Some(&origin), typed(raw, like)))
            })
            .collect())
    }
}

/// `raw` read as the kind of `like` (the key's default value).
fn typed(raw: &str, like: Option<&toml::Value>) -> ValueKind {
    let text = || ValueKind::String(raw.to_string());
    let raw_t = raw.trim();
    match like {
        Some(toml::Value::Boolean(_)) => raw_t.parse().map_or_else(|_| text(), ValueKind::Boolean),
        Some(toml::Value::Float(_)) => raw_t.parse().map_or_else(|_| text(), ValueKind::Float),
        Some(toml::Value::Array(_)) => ValueKind::Array(
            raw_t
                .split(',')
                .map(|item| {
                    let kind = typed(item, Some(&toml::Value::Float(0.0)));
                    Value::new(None, kind)
                })
                .collect(),
        ),
        Some(toml::Value::String(_)) => text(),
        // Integers, and keys with no default (search.seed) or unknown ones.
        _ => raw_t.parse().map_or_else(|_| text(), ValueKind::I64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_values_take_their_keys_kind() {
        let float = toml::Value::Float(1.0);
        let string = toml::Value::String(String::new());
        let range = toml::Value::Array(vec![]);
        assert!(matches!(typed("30", Some(&float)), ValueKind::Float(f) if f == 30.0));
        assert!(matches!(typed("123", Some(&string)), ValueKind::String(s) if s == "123"));
        assert!(matches!(typed("7", None), ValueKind::I64(7)));
        assert!(matches!(typed("yes", None), ValueKind::String(_)));
        let ValueKind::Array(items) = typed("-1, 1", Some(&range)) else {
            panic!("a range is an array");
        };
        assert_eq!(items.len(), 2);
    }
}
