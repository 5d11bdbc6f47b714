//! The command line as the user typed it (clap). Turning it into settings and
//! checked parameters is the commands' job; nothing below them sees clap's types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "svr-etl", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Without it the embedded default applies; keys in
    /// it override the default, and SVR_ETL__SECTION__KEY variables override both.
    #[arg(
        long,
        short,
        global = true,
        env = "SVR_ETL_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as a daemon: trials on the configured cron schedule until SIGTERM or SIGINT;
    /// SIGHUP reloads the config file.
    Run,
    /// Run one trial (or --trials N) now and print where each was written.
    Once(OnceArgs),
    /// Print the effective configuration, or the error that makes it invalid.
    CheckConfig,
    /// Print the Athena DDL with the configured database and sink location filled in.
    Sql(SqlArgs),
    /// Rank the trials in the sink by cv_r2 or test R^2, as queries/final_query_cv.sql
    /// and queries/final_query.sql do.
    Leaderboard(LeaderboardArgs),
    /// Write one self-contained HTML page about the current study: charts of the
    /// search, the top 10, counts.
    Report(ReportArgs),
    /// Rewrite finished UTC days of hyper/ and fact/ as Parquet under hyper_parquet/ and
    /// fact_parquet/: --day D, or else the days the daemon's daily job takes.
    Compact(CompactArgs),
    /// Write the study for another tool: --optuna FILE, an Optuna journal file that
    /// optuna.load_study and optuna-dashboard read.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Sink URL to read, overriding sink.url.
    #[arg(long, value_name = "URL")]
    pub sink: Option<String>,

    /// The Optuna journal file to write (JournalStorage with JournalFileBackend); it
    /// must not exist yet.
    #[arg(long, value_name = "FILE")]
    pub optuna: PathBuf,

    /// Export this study (the `study` of a hyper record) instead of the newest trial's.
    #[arg(long)]
    pub study: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Sink URL to compact, overriding sink.url.
    #[arg(long, value_name = "URL")]
    pub sink: Option<String>,

    /// The UTC day (YYYY-MM-DD) to compact; it must be finished (compaction.settle_secs
    /// past its end). Without it: what the daemon's daily job takes, the finished days
    /// of the last week and every older one not compacted yet.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub day: Option<chrono::NaiveDate>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Sink URL to read, overriding sink.url.
    #[arg(long, value_name = "URL")]
    pub sink: Option<String>,

    /// Where to write the page [default: report.html].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Report on this study (the `study` of a hyper record) instead of the newest trial's.
    #[arg(long, conflicts_with = "publish")]
    pub study: Option<String>,

    /// Rewrite the sink's report/latest.html (the page the daemon publishes daily)
    /// instead of writing a local file.
    #[arg(long, conflicts_with = "out")]
    pub publish: bool,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// Sink URL to write the locations for, overriding sink.url.
    #[arg(long, value_name = "URL")]
    pub sink: Option<String>,
}

#[derive(Debug, Args)]
pub struct LeaderboardArgs {
    /// Sink URL to read, overriding sink.url.
    #[arg(long, value_name = "URL")]
    pub sink: Option<String>,

    /// Show only the best N trials.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,

    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Rank by this score [default: cv_r2 when the study's trials have it, else test_r2]
    #[arg(long, value_enum)]
    pub by: Option<RankBy>,

    /// Rank this study (the `study` of a hyper record) instead of the newest trial's.
    #[arg(long)]
    pub study: Option<String>,
}

#[derive(Debug, Args)]
pub struct OnceArgs {
    /// Sink URL for this trial (s3://bucket/prefix, file:///dir or a directory),
    /// overriding sink.url.
    #[arg(long, value_name = "URL")]
    pub sink: Option<String>,

    /// Replay a configuration instead of drawing one: gamma of the RBF kernel.
    #[arg(long, requires_all = ["c", "epsilon"], conflicts_with = "seed")]
    pub gamma: Option<f64>,

    /// Regularization C (with --gamma).
    #[arg(long, requires_all = ["gamma", "epsilon"])]
    pub c: Option<f64>,

    /// Width of the epsilon-insensitive tube (with --gamma).
    #[arg(long, requires_all = ["gamma", "c"])]
    pub epsilon: Option<f64>,

    /// Draw from this trial seed (the `seed` of an earlier hyper record replays it).
    #[arg(long, conflicts_with = "trials")]
    pub seed: Option<u64>,

    /// Run this many trials, one after another, each printing its line.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub trials: u32,
}

/// `leaderboard --by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RankBy {
    /// The cross-validated score on the training rows: the honest choice.
    #[value(name = "cv_r2")]
    CvR2,
    /// The test R^2 from the predictions, as the seed pipeline ranked.
    #[value(name = "test_r2")]
    TestR2,
}

/// `leaderboard --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}
