//! Preparing a reload off the daemon's loop: read the file again and, when the data
//! set, solver or sink changed, build the new pipeline and publish its data set.
//!
//! The loop spawns [`prepare`] as a task and keeps serving ticks, pings and signals
//! while it runs; it applies the result in one step once it is ready.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::error::AppError;
use crate::sink::{Connect, Deadline};
use crate::study::publish::publish_dataset;
use crate::trial::id::HyperIdGenerator;
use crate::trial::{Clock, Pipeline};

/// A reload ready to apply.
pub(super) struct Prepared {
    pub settings: Settings,
    /// The new pipeline, when the new settings need one.
    pub pipeline: Option<Pipeline>,
    pub changed: Vec<String>,
}

/// What [`prepare`] needs, cloned out of the daemon so the task owns it.
pub(super) struct Request {
    pub path: Option<PathBuf>,
    pub current: Settings,
    pub connect: Arc<dyn Connect>,
    pub ids: Arc<HyperIdGenerator>,
    pub clock: Clock,
    /// Ends a publish still waiting on the sink at shutdown.
    pub cancel: CancellationToken,
}

/// Loads the file and builds what the new settings need. Any error refuses the reload
/// whole; the publish has the new sink's upload deadline.
pub(super) async fn prepare(request: Request) -> Result<Prepared, AppError> {
    let settings = Settings::load(request.path.as_deref())?;
    let changed = request.current.changed_keys(&settings);
    let pipeline = if request.current.same_pipeline(&settings) {
        None
    } else {
        let pipeline = Pipeline::build(
            &settings,
            request.connect.as_ref(),
            request.ids,
            request.clock,
        )
        .await?;
        let deadline = Deadline {
            timeout: settings.sink().upload_timeout(),
            cancel: request.cancel,
        };
        publish_dataset(&pipeline, &deadline).await?;
        Some(pipeline)
    };
    Ok(Prepared {
        settings,
        pipeline,
        changed,
    })
}
