//! Configuration: the TOML file, layered and checked once into [`Settings`].
//!
//! Layers, later ones winning: the embedded `config/svr-etl.toml`, the user's file,
//! `SVR_ETL__SECTION__KEY` environment variables (`layers.rs`). The merged tree is
//! deserialized strictly into [`Settings`], whose leaves are checked types
//! ([`crate::model::values`] and each stage's own settings), so the structs below are the one list
//! of keys: printing, diffing and validation all derive from them.

mod layers;

use std::fmt;
use std::path::Path;

use chrono::Utc;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::compaction::CompactionSettings;
use crate::dataset::DatasetSource;
use crate::model::cron::{CronExpr, CronSchedule};
use crate::model::params::SamplerKind;
use crate::model::params::{SearchSpace, Within};
use crate::model::values::{Bounded, DatabaseName, ListenAddr, LogLevel, Seconds};
use crate::sink::{Encryption, S3Settings, SinkSettings, SinkUrl};
use crate::trial::trainer::{Engine, SolverSettings};
use crate::trial::PipelineSettings;

pub use layers::DEFAULT_TOML;

/// A configuration that failed to load or validate; the message names the file and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {origin}: {reason}")]
    Unreadable { origin: String, reason: String },
    #[error("config {origin}: {source}")]
    Load {
        origin: String,
        #[source]
        source: Box<config::ConfigError>,
    },
    #[error("config {origin}: key `{key}`: {reason}")]
    Invalid {
        origin: String,
        key: String,
        reason: String,
    },
}

/// `[schedule]`: when runs happen and how they end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    pub cron: CronExpr,
    pub timezone: Tz,
    pub trials_per_run: Bounded<1, 1024>,
    pub shutdown_grace_secs: Seconds<true>,
}

impl ScheduleSettings {
    pub fn schedule(&self) -> CronSchedule {
        CronSchedule::new(self.cron.clone(), self.timezone)
    }
}

/// `[search]`: the log10 ranges parameters are drawn from, and the master seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    pub gamma: Within<-6, 4>,
    pub c: Within<-6, 10>,
    pub epsilon: Within<-6, 2>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub sampler: SamplerKind,
    /// Whether TPE counts trials in flight, here and on other hosts, as bad.
    pub constant_liar: bool,
    /// Cross-validation folds of each trial; 0 turns it off.
    pub cv_folds: Bounded<0, 1000>,
}

impl SearchSettings {
    pub fn space(&self) -> SearchSpace {
        SearchSpace {
            gamma: self.gamma.get(),
            c: self.c.get(),
            epsilon: self.epsilon.get(),
        }
    }
}

/// `[dataset]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSettings {
    pub path: DatasetSource,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: LogLevel,
}

/// `[athena]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AthenaSettings {
    pub database: DatabaseName,
}

/// `[metrics]`: the Prometheus endpoint of `svr-etl run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub listen: ListenAddr,
}

/// Validated settings. Only [`Settings::load`] makes them, and they cannot be changed
/// afterwards except through [`Settings::with_sink_url`], which takes a checked URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    schedule: ScheduleSettings,
    search: SearchSettings,
    solver: SolverSettings,
    dataset: DatasetSettings,
    sink: SinkSettings,
    s3: S3Settings,
    log: LogSettings,
    athena: AthenaSettings,
    compaction: CompactionSettings,
    metrics: MetricsSettings,
    /// The file the settings were read from, for messages.
    #[serde(skip)]
    origin: String,
}

impl Settings {
    /// Loads the embedded defaults, then `path` if given, then the environment.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let origin = match path {
            Some(p) => p.display().to_string(),
            None => "(embedded default)".to_string(),
        };
        let text = path
            .map(layers::read_user_file)
            .transpose()
            .map_err(|reason| ConfigError::Unreadable {
                origin: origin.clone(),
                reason,
            })?;
        let merged = layers::merge(text.as_deref()).map_err(|source| ConfigError::Load {
            origin: origin.clone(),
            source: Box::new(source),
        })?;
        let invalid = |key: String, reason: String| ConfigError::Invalid {
            origin: layers::env_var_for(&key)
                .map(|var| format!("environment {var}"))
                .unwrap_or_else(|| origin.clone()),
            key,
            reason,
        };
        let mut settings: Settings = serde_path_to_error::deserialize(merged)
            .map_err(|e| invalid(e.path().to_string(), e.inner().message().to_string()))?;
        settings
            .check()
            .map_err(|(key, reason)| invalid(key.to_string(), reason))?;
        settings.origin = origin;
        Ok(settings)
    }

    /// Rules that span keys or need the clock.
    fn check(&self) -> Result<(), (&'static str, String)> {
        // linfa-svm cannot be stopped once started; past C = 10^5 its fits run for
        // minutes (see the config file). The exact engine stops at max_fit_secs.
        if self.solver.engine == Engine::LinfaSvm && self.search.c.get().max() > 5.0 {
            return Err((
                "search.c",
                format!(
                    "must stay within [-6, 5] with solver.engine = \"linfa-svm\", whose fits cannot be stopped; got max {}",
                    self.search.c.get().max()
                ),
            ));
        }
        if self.s3.kms_key_id.get().is_some() && self.s3.sse != Encryption::Kms {
            return Err((
                "s3.kms_key_id",
                "names a KMS key, which only s3.sse = \"aws:kms\" uses".into(),
            ));
        }
        if self.search.cv_folds.get() == 1 {
            return Err((
                "search.cv_folds",
                "must be 0 (off) or at least 2, got 1".into(),
            ));
        }
        if self.search.sampler == SamplerKind::Tpe && self.search.cv_folds.get() == 0 {
            return Err((
                "search.sampler",
                "\"tpe\" is guided by the cross-validated score: set search.cv_folds to 2 or more"
                    .into(),
            ));
        }
        if self.compaction.enabled && self.compaction.settle() <= self.sink.upload_timeout() {
            return Err((
                "compaction.settle_secs",
                format!(
                    "must be longer than sink.upload_timeout_secs ({} s), so that a day's last trials have landed before it is compacted; got {} s",
                    self.sink.upload_timeout().as_secs_f64(),
                    self.compaction.settle().as_secs_f64()
                ),
            ));
        }
        let now = Utc::now();
        if self.compaction.enabled
            && self
                .compaction
                .next_run(now)
                .is_none_or(|next| next - now > chrono::Duration::days(366))
        {
            return Err((
                "compaction.cron",
                format!(
                    "{} (UTC) does not fire within the next year",
                    self.compaction.cron.as_str()
                ),
            ));
        }
        let schedule = self.schedule.schedule();
        match schedule.next_after(now) {
            Some(next) if next - now <= chrono::Duration::days(366) => Ok(()),
            _ => Err((
                "schedule.cron",
                format!("{schedule} does not fire within the next year"),
            )),
        }
    }

    /// The same settings writing to `url` (a `--sink` flag).
    pub fn with_sink_url(mut self, url: SinkUrl) -> Settings {
        self.sink.url = url;
        self
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn schedule(&self) -> &ScheduleSettings {
        &self.schedule
    }

    pub fn search(&self) -> &SearchSettings {
        &self.search
    }

    pub fn solver(&self) -> &SolverSettings {
        &self.solver
    }

    pub fn dataset(&self) -> &DatasetSource {
        &self.dataset.path
    }

    pub fn sink(&self) -> &SinkSettings {
        &self.sink
    }

    pub fn s3(&self) -> &S3Settings {
        &self.s3
    }

    pub fn log_level(&self) -> &LogLevel {
        &self.log.level
    }

    pub fn athena_database(&self) -> &DatabaseName {
        &self.athena.database
    }

    pub fn compaction(&self) -> &CompactionSettings {
        &self.compaction
    }

    /// Where `svr-etl run` serves `/metrics`; `None` when off.
    pub fn metrics_listen(&self) -> Option<std::net::SocketAddr> {
        self.metrics.listen.get()
    }

    /// Whether a trial pipeline built from `other` would be the same as one built from
    /// these settings (same data set, solver and sink).
    pub fn same_pipeline(&self, other: &Settings) -> bool {
        self.pipeline() == other.pipeline()
    }

    /// What the trial pipeline is built from.
    pub fn pipeline(&self) -> PipelineSettings {
        PipelineSettings {
            dataset: self.dataset.path.clone(),
            solver: self.solver,
            cv_folds: self.search.cv_folds.get(),
            sink: self.sink.clone(),
            s3: self.s3.clone(),
            constant_liar: self.search.constant_liar,
        }
    }

    /// The settings in the config file's own form, as a TOML tree.
    fn to_toml(&self) -> toml::Table {
        toml::Table::try_from(self).expect("settings serialize to TOML")
    }

    /// The keys (`section.key`) whose effective values differ between `self` and
    /// `other`, in file order.
    pub fn changed_keys(&self, other: &Settings) -> Vec<String> {
        let (a, b) = (self.to_toml(), other.to_toml());
        let mut keys = Vec::new();
        for (section, values) in &a {
            let (Some(values), Some(theirs)) = (values.as_table(), b.get(section)) else {
                continue;
            };
            for (key, value) in values {
                if theirs.get(key) != Some(value) {
                    keys.push(format!("{section}.{key}"));
                }
            }
            let theirs = theirs.as_table().into_iter().flatten();
            for (key, _) in theirs.filter(|(k, _)| !values.contains_key(*k)) {
                keys.push(format!("{section}.{key}"));
            }
        }
        keys
    }

    /// Each key that differs between `self` and `other`, with its old and new value as
    /// the config file writes them: `schedule.trials_per_run 1 -> 2`.
    pub fn describe_changes(&self, other: &Settings) -> Vec<String> {
        let (a, b) = (self.to_toml(), other.to_toml());
        let value = |tree: &toml::Table, key: &str| {
            let (section, key) = key.split_once('.').unwrap_or((key, ""));
            tree.get(section)
                .and_then(|s| s.get(key))
                .map_or("(unset)".to_string(), |v| v.to_string())
        };
        self.changed_keys(other)
            .into_iter()
            .map(|key| format!("{key} {} -> {}", value(&a, &key), value(&b, &key)))
            .collect()
    }
}

impl fmt::Display for Settings {
    /// The effective settings as a config file that loads back to the same settings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# effective configuration from {}\n", self.origin)?;
        let text = toml::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests;
