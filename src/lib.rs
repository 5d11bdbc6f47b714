//! svr-etl: runs SVR hyperparameter trials on a cron schedule and streams each trial's
//! records to S3 (or a local directory) as newline-delimited JSON for Athena.
//!
//! # Layout
//!
//! The data flows through one module per stage:
//!
//! - [`config`]: the TOML file, layered and validated once into [`config::Settings`].
//! - [`dataset`]: the data set, parsed once and held in memory.
//! - [`sampler`]: log-uniform draws of gamma, C and epsilon from per-trial seeds.
//! - [`trainer`]: the linfa-svm fit; the only module that touches linfa.
//! - [`records`]: the hyper and fact records, the contract with `queries/`.
//! - [`sink`]: create-once object writes to a directory or S3; only `sink::s3`
//!   touches aws types.
//!
//! Around them: [`pipeline`] runs one trial end to end; [`daemon`] drives it on the
//! cron [`schedule`], with [`signals`] for shutdown and reload and [`notify`] for
//! systemd; [`app`] builds the pipeline from settings and runs the one-shot commands;
//! [`leaderboard`] and [`athena`] read the results back; [`hyper_id`] makes trial ids, [`metrics`] computes R^2, [`telemetry`] sets up
//! logging and [`cli`] holds the command line as the user typed it. `main.rs` only
//! wires these together.

pub mod app;
pub mod athena;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dataset;
pub mod hyper_id;
pub mod leaderboard;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod records;
pub mod sampler;
pub mod schedule;
pub mod signals;
pub mod sink;
pub mod telemetry;
pub mod trainer;
