//! `svr-etl leaderboard`: the ranking of the trials in the configured sink.

use super::{print, with_sink};
use crate::cli::{self, LeaderboardArgs};
use crate::config::Settings;
use crate::error::AppError;
use crate::sink::{Connector, OpenSink};
use crate::study::leaderboard;

pub async fn run(settings: Settings, args: LeaderboardArgs) -> Result<(), AppError> {
    let settings = with_sink(settings, args.sink.as_deref())?;
    let sink = Connector.open(settings.sink(), settings.s3()).await;
    let mut entries = leaderboard::rank(
        sink.as_ref(),
        args.study.as_deref(),
        args.by.map(|by| match by {
            cli::RankBy::CvR2 => leaderboard::RankBy::CvR2,
            cli::RankBy::TestR2 => leaderboard::RankBy::TestR2,
        }),
        chrono::Utc::now().date_naive(),
    )
    .await?;
    if let Some(n) = args.top {
        entries.truncate(n);
    }
    let format = match args.format {
        cli::Format::Table => leaderboard::Format::Table,
        cli::Format::Csv => leaderboard::Format::Csv,
        cli::Format::Json => leaderboard::Format::Json,
    };
    print(&leaderboard::render(&entries, format))
}
