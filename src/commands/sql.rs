//! `svr-etl sql`: the Athena DDL for the configured database, location and data set.

use super::{print, with_sink};
use crate::cli::SqlArgs;
use crate::config::Settings;
use crate::error::AppError;
use crate::study::athena;

pub fn run(settings: Settings, args: &SqlArgs) -> Result<(), AppError> {
    let settings = with_sink(settings, args.sink.as_deref())?;
    let dataset = settings.dataset().load()?;
    print(&athena::setup_script(
        settings.athena_database().as_str(),
        &settings.sink().url,
        dataset.feature_names(),
        settings.compaction().enabled,
    ))
}
