//! Process signals: SIGTERM and SIGINT cancel the shutdown token, SIGHUP asks for a
//! config reload (`systemctl reload`). signal-hook does the unsafe part.

use futures::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::Signals;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Starts listening. Reload requests arrive on the returned channel; a second one
/// while the first is pending is folded into it.
pub fn listen(shutdown: CancellationToken) -> std::io::Result<mpsc::Receiver<()>> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let (reload_tx, reload_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while let Some(signal) = signals.next().await {
            match signal {
                SIGHUP => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    let _ = reload_tx.try_send(());
                }
                _ => {
                    tracing::info!(signal, "stopping: no new runs (signal {signal})");
                    shutdown.cancel();
                }
            }
        }
    });
    Ok(reload_rx)
}
