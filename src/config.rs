//! Configuration: the TOML file, layered and checked once into [`Settings`].
//!
//! Layers, later ones winning: the embedded `config/svr-etl.toml`, the user's file,
//! `SVR_ETL__SECTION__KEY` environment variables. Raw values deserialize into `Raw*`
//! structs that reject unknown keys; [`Settings::load`] validates them into types that
//! cannot hold an impossible value, so nothing downstream checks them again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use crate::sampler::{LogRange, SearchSpace};
use crate::schedule::CronSchedule;
use crate::sink::SinkSettings;
use crate::trainer::SolverSettings;

/// The documented default file, embedded as the lowest layer.
pub const DEFAULT_TOML: &str = include_str!("../config/svr-etl.toml");

const ENV_PREFIX: &str = "SVR_ETL";

/// A configuration that failed to load or validate; the message names the file and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {origin}: {source}")]
    Load {
        origin: String,
        #[source]
        source: Box<config::ConfigError>,
    },
    #[error("config {origin}: key `{key}`: {reason}")]
    Invalid {
        origin: String,
        key: &'static str,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    schedule: RawSchedule,
    search: RawSearch,
    solver: RawSolver,
    dataset: RawDataset,
    sink: RawSink,
    s3: RawS3,
    log: RawLog,
    athena: RawAthena,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    cron: String,
    timezone: String,
    trials_per_run: i64,
    shutdown_grace_secs: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSearch {
    gamma: Vec<f64>,
    c: Vec<f64>,
    epsilon: Vec<f64>,
    seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSolver {
    tolerance: f64,
    max_train_rows: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    url: String,
    compression: String,
    upload_timeout_secs: f64,
    part_size_mib: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawS3 {
    region: String,
    endpoint_url: String,
    force_path_style: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAthena {
    database: String,
}

/// Where the data set comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetSource {
    /// The scikit-learn diabetes set compiled into the binary.
    Embedded,
    File(PathBuf),
}

/// When and how runs happen.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSettings {
    pub cron: CronSchedule,
    pub trials_per_run: usize,
    pub shutdown_grace: Duration,
}

/// Validated settings: every field holds a usable value.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The file the settings were read from, if any (for messages).
    pub origin: String,
    pub schedule: ScheduleSettings,
    pub search: SearchSpace,
    pub seed: Option<u64>,
    pub solver: SolverSettings,
    pub dataset: DatasetSource,
    pub sink: SinkSettings,
    pub log_level: String,
    pub athena_database: String,
}

impl Settings {
    /// Loads the embedded defaults, then `path` if given, then the environment.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let origin = match path {
            Some(p) => p.display().to_string(),
            None => "(embedded default)".to_string(),
        };
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(p) = path {
            builder = builder.add_source(File::from(p).format(FileFormat::Toml).required(true));
        }
        let env = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("search.gamma")
            .with_list_parse_key("search.c")
            .with_list_parse_key("search.epsilon");
        let raw: RawConfig = builder
            .add_source(env)
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|source| ConfigError::Load {
                origin: origin.clone(),
                source: Box::new(source),
            })?;
        Settings::validate(raw, origin)
    }

    fn validate(raw: RawConfig, origin: String) -> Result<Settings, ConfigError> {
        let invalid = |key: &'static str, reason: String| ConfigError::Invalid {
            origin: origin.clone(),
            key,
            reason,
        };
        let range = |key: &'static str, v: &[f64]| match v {
            [min, max] => LogRange::new(*min, *max).map_err(|r| invalid(key, r)),
            _ => Err(invalid(
                key,
                format!("expected [min, max] (two log10 exponents), got {v:?}"),
            )),
        };
        let search = SearchSpace {
            gamma: range("search.gamma", &raw.search.gamma)?,
            c: range("search.c", &raw.search.c)?,
            epsilon: range("search.epsilon", &raw.search.epsilon)?,
        };

        let cron = CronSchedule::new(&raw.schedule.cron, &raw.schedule.timezone)
            .map_err(|(key, r)| invalid(key, r))?;
        let trials_per_run = usize::try_from(raw.schedule.trials_per_run)
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| {
                invalid(
                    "schedule.trials_per_run",
                    format!("must be 1 to 1024, got {}", raw.schedule.trials_per_run),
                )
            })?;
        let shutdown_grace = seconds(raw.schedule.shutdown_grace_secs, true)
            .map_err(|r| invalid("schedule.shutdown_grace_secs", r))?;

        let solver = SolverSettings::new(raw.solver.tolerance, raw.solver.max_train_rows)
            .map_err(|(key, r)| invalid(key, r))?;

        let dataset = match raw.dataset.path.trim() {
            "" => DatasetSource::Embedded,
            p => DatasetSource::File(PathBuf::from(p)),
        };

        let upload_timeout = seconds(raw.sink.upload_timeout_secs, false)
            .map_err(|r| invalid("sink.upload_timeout_secs", r))?;
        let sink = SinkSettings::new(
            &raw.sink.url,
            &raw.sink.compression,
            upload_timeout,
            raw.sink.part_size_mib,
            raw.s3.region,
            raw.s3.endpoint_url,
            raw.s3.force_path_style,
        )
        .map_err(|(key, r)| invalid(key, r))?;

        let log_level = raw.log.level.trim().to_string();
        tracing_subscriber::EnvFilter::try_new(&log_level)
            .map_err(|e| invalid("log.level", format!("{e}: {log_level:?}")))?;

        let athena_database = raw.athena.database.trim().to_string();
        if athena_database.is_empty()
            || !athena_database
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(invalid(
                "athena.database",
                format!("must be lower-case letters, digits or `_`, got {athena_database:?}"),
            ));
        }

        Ok(Settings {
            origin,
            schedule: ScheduleSettings {
                cron,
                trials_per_run,
                shutdown_grace,
            },
            search,
            seed: raw.search.seed,
            solver,
            dataset,
            sink,
            log_level,
            athena_database,
        })
    }
}

impl Settings {
    /// The same settings, described as coming from `origin`.
    pub fn with_origin(mut self, origin: &str) -> Settings {
        self.origin = origin.to_string();
        self
    }

    /// The config keys whose effective values differ between `self` and `other`.
    pub fn changed_keys(&self, other: &Settings) -> Vec<&'static str> {
        let (a, b) = (self, other);
        let s3 = (&a.sink.s3, &b.sink.s3);
        [
            ("schedule.cron", a.schedule.cron != b.schedule.cron),
            (
                "schedule.trials_per_run",
                a.schedule.trials_per_run != b.schedule.trials_per_run,
            ),
            (
                "schedule.shutdown_grace_secs",
                a.schedule.shutdown_grace != b.schedule.shutdown_grace,
            ),
            ("search.gamma", a.search.gamma != b.search.gamma),
            ("search.c", a.search.c != b.search.c),
            ("search.epsilon", a.search.epsilon != b.search.epsilon),
            ("search.seed", a.seed != b.seed),
            (
                "solver.tolerance",
                a.solver.tolerance() != b.solver.tolerance(),
            ),
            (
                "solver.max_train_rows",
                a.solver.max_train_rows() != b.solver.max_train_rows(),
            ),
            ("dataset.path", a.dataset != b.dataset),
            ("sink.url", a.sink.url != b.sink.url),
            ("sink.compression", a.sink.compression != b.sink.compression),
            (
                "sink.upload_timeout_secs",
                a.sink.upload_timeout != b.sink.upload_timeout,
            ),
            ("sink.part_size_mib", a.sink.part_size != b.sink.part_size),
            ("s3.region", s3.0.region != s3.1.region),
            ("s3.endpoint_url", s3.0.endpoint_url != s3.1.endpoint_url),
            (
                "s3.force_path_style",
                s3.0.force_path_style != s3.1.force_path_style,
            ),
            ("log.level", a.log_level != b.log_level),
            ("athena.database", a.athena_database != b.athena_database),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
    }
}

impl std::fmt::Display for Settings {
    /// The effective settings in the config file's own form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let range = |r: &LogRange| format!("[{:?}, {:?}]", r.min(), r.max());
        let s3 = &self.sink.s3;
        writeln!(f, "# effective configuration from {}", self.origin)?;
        writeln!(f, "[schedule]")?;
        writeln!(f, "cron = {:?}", self.schedule.cron.expr())?;
        writeln!(f, "timezone = {:?}", self.schedule.cron.timezone().name())?;
        writeln!(f, "trials_per_run = {}", self.schedule.trials_per_run)?;
        writeln!(
            f,
            "shutdown_grace_secs = {:?}",
            self.schedule.shutdown_grace.as_secs_f64()
        )?;
        writeln!(f, "\n[search]")?;
        writeln!(f, "gamma = {}", range(&self.search.gamma))?;
        writeln!(f, "c = {}", range(&self.search.c))?;
        writeln!(f, "epsilon = {}", range(&self.search.epsilon))?;
        if let Some(seed) = self.seed {
            writeln!(f, "seed = {seed}")?;
        }
        writeln!(f, "\n[solver]")?;
        writeln!(f, "tolerance = {:?}", self.solver.tolerance())?;
        writeln!(f, "max_train_rows = {}", self.solver.max_train_rows())?;
        writeln!(f, "\n[dataset]")?;
        let path = match &self.dataset {
            DatasetSource::Embedded => String::new(),
            DatasetSource::File(p) => p.display().to_string(),
        };
        writeln!(f, "path = {path:?}")?;
        writeln!(f, "\n[sink]")?;
        writeln!(f, "url = {:?}", self.sink.url.to_string())?;
        let compression = match self.sink.compression {
            crate::sink::Compression::None => "none",
            crate::sink::Compression::Gzip => "gzip",
        };
        writeln!(f, "compression = {compression:?}")?;
        writeln!(
            f,
            "upload_timeout_secs = {:?}",
            self.sink.upload_timeout.as_secs_f64()
        )?;
        writeln!(
            f,
            "part_size_mib = {:?}",
            self.sink.part_size as f64 / 1048576.0
        )?;
        writeln!(f, "\n[s3]")?;
        writeln!(f, "region = {:?}", s3.region.clone().unwrap_or_default())?;
        writeln!(
            f,
            "endpoint_url = {:?}",
            s3.endpoint_url.clone().unwrap_or_default()
        )?;
        writeln!(f, "force_path_style = {}", s3.force_path_style)?;
        writeln!(f, "\n[log]")?;
        writeln!(f, "level = {:?}", self.log_level)?;
        writeln!(f, "\n[athena]")?;
        writeln!(f, "database = {:?}", self.athena_database)
    }
}

/// A duration in seconds from the config: finite, positive (or zero when allowed), at
/// most a day.
fn seconds(value: f64, zero_ok: bool) -> Result<Duration, String> {
    let ok = value.is_finite() && value <= 86_400.0 && (value > 0.0 || (zero_ok && value == 0.0));
    if ok {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "must be a number of seconds in (0, 86400], got {value}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_str(toml: &str) -> Result<Settings, ConfigError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(toml.as_bytes()).unwrap();
        Settings::load(Some(f.path()))
    }

    #[test]
    fn embedded_default_validates() {
        let s = Settings::load(None).unwrap();
        assert_eq!(s.search.gamma, LogRange::new(-2.0, 2.0).unwrap());
        assert_eq!(s.search.epsilon, LogRange::new(-2.0, 0.0).unwrap());
        assert_eq!(s.schedule.trials_per_run, 1);
        assert_eq!(s.dataset, DatasetSource::Embedded);
        assert_eq!(s.seed, None);
    }

    #[test]
    fn a_partial_file_overrides_only_its_keys() {
        let s = load_str("[search]\ngamma = [-1.0, 1.0]\nseed = 7\n").unwrap();
        assert_eq!(s.search.gamma, LogRange::new(-1.0, 1.0).unwrap());
        assert_eq!(s.search.c, LogRange::new(-2.0, 2.0).unwrap());
        assert_eq!(s.seed, Some(7));
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let err = load_str("[search]\ngama = [-1.0, 1.0]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("gama"), "{err}");
    }

    #[test]
    fn impossible_values_name_their_key() {
        for (toml, key) in [
            ("[search]\nc = [2.0, 1.0]\n", "search.c"),
            ("[search]\nepsilon = [1.0, 1.0]\n", "search.epsilon"),
            ("[search]\ngamma = [nan, 1.0]\n", "search.gamma"),
            ("[search]\ngamma = [1.0]\n", "search.gamma"),
            ("[solver]\ntolerance = 0.0\n", "solver.tolerance"),
            ("[solver]\ntolerance = -1e-3\n", "solver.tolerance"),
            ("[schedule]\ncron = \"not a cron\"\n", "schedule.cron"),
            (
                "[schedule]\ntimezone = \"Mars/Olympus\"\n",
                "schedule.timezone",
            ),
            (
                "[schedule]\ntrials_per_run = 0\n",
                "schedule.trials_per_run",
            ),
            ("[sink]\nurl = \"ftp://x/y\"\n", "sink.url"),
            ("[sink]\ncompression = \"zip\"\n", "sink.compression"),
            ("[sink]\npart_size_mib = 1\n", "sink.part_size_mib"),
            ("[log]\nlevel = \"loud=[\"\n", "log.level"),
        ] {
            let err = load_str(toml).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{toml}: {err}");
        }
    }

    #[test]
    fn changed_keys_name_what_a_reload_changes() {
        let a = Settings::load(None).unwrap();
        let b = load_str("[search]\ngamma = [-1.0, 1.0]\n[schedule]\ncron = \"* * * * * *\"\n")
            .unwrap();
        assert_eq!(a.changed_keys(&b), ["schedule.cron", "search.gamma"]);
        assert!(a.changed_keys(&a.clone()).is_empty());
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = Settings::load(Some(Path::new("/nonexistent/svr.toml")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/svr.toml"), "{err}");
    }
}
