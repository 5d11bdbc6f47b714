//! svr-etl: runs SVR hyperparameter trials on a cron schedule and streams each trial's
//! records to S3 (or a local directory) as newline-delimited JSON for Athena.
//!
//! # Layers
//!
//! Grouped by the stages of the data flow, one concern per file. Each numbered layer
//! imports only from the layers above it (`tests/layers.rs` holds the code to this list):
//!
//! 1. [`model`]: the shared vocabulary: trial ids, parameters and search space, the
//!    records (the contract with `queries/`), checked config values, cron expressions.
//! 2. [`dataset`]: the data set, parsed once and held in memory, and where it comes
//!    from. [`sink`]: create-once object writes to a directory or S3 (only `sink::s3`
//!    touches aws types), and the key layout every reader asks.
//! 3. [`store`]: records in the sink read back, JSON and Parquet.
//! 4. [`search`]: where the next trial's parameters come from: random draws, or TPE
//!    over the study's history as the sink holds it. [`compaction`]: finished days
//!    rewritten as Parquet.
//! 5. [`trial`]: one trial end to end ([`trial::Pipeline`]): choosing, fitting (the
//!    trainer is the only module that touches linfa), writing; built from
//!    [`trial::PipelineSettings`].
//! 6. [`study`]: the leaderboard, the report and the Athena SQL.
//! 7. [`config`]: the TOML layers, deserialized strictly into sealed
//!    [`config::Settings`], which hand each stage its own settings.
//! 8. [`error`]: every module's errors gathered, with exit codes. [`telemetry`]:
//!    logging.
//! 9. [`daemon`]: the loop that drives trials on a schedule, with reload, signals and
//!    systemd notification, every input injected.
//! 10. [`cli`]: the command line as typed.
//! 11. [`commands`]: one file per command. `main.rs` only wires these together.

pub mod cli;
pub mod commands;
pub mod compaction;
pub mod config;
pub mod daemon;
pub mod dataset;
pub mod error;
pub mod model;
pub mod search;
pub mod sink;
pub mod store;
pub mod study;
pub mod telemetry;
pub mod trial;
