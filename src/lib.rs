//! svr-etl: runs SVR hyperparameter trials on a cron schedule and streams each trial's
//! records to S3 (or a local directory) as newline-delimited JSON for Athena.
//!
//! # Layout
//!
//! Grouped by the stages of the data flow, one concern per file:
//!
//! - [`config`]: the TOML layers, deserialized strictly into sealed [`config::Settings`].
//! - [`dataset`]: the data set, parsed once and held in memory, and where it comes from.
//! - [`trial`]: one trial end to end ([`trial::Pipeline`]): id, sampler, trainer (the
//!   only module that touches linfa), records (the contract with `queries/`).
//! - [`search`]: where the next trial's parameters come from: random draws, or TPE over
//!   the study's history as the sink holds it, shared by every host.
//! - [`sink`]: create-once object writes to a directory or S3 (only `sink::s3` touches
//!   aws types), and the key layout every reader asks.
//! - [`study`]: what the sink holds, read back: data set publishing, history,
//!   leaderboard, report, Athena SQL; compacted days read from Parquet.
//! - [`compaction`]: finished days rewritten as Parquet, by the daemon daily or by hand.
//! - [`daemon`]: the loop that drives trials on a schedule, with reload, signals and
//!   systemd notification, every input injected.
//! - [`commands`], [`cli`], [`error`]: the command line, one file per command, and the
//!   exit codes; [`telemetry`] sets up logging. `main.rs` only wires these together.

pub mod cli;
pub mod commands;
pub mod compaction;
pub mod config;
pub mod daemon;
pub mod dataset;
pub mod error;
pub mod search;
pub mod sink;
pub mod study;
pub mod telemetry;
pub mod trial;
