//! Telling the service manager how the daemon is doing (`Type=notify`): READY=1 once
//! start-up is done, STATUS= lines for `systemctl status`, WATCHDOG=1 pings,
//! RELOADING=1 and STOPPING=1. [`SdNotify`] speaks systemd's protocol; without
//! NOTIFY_SOCKET each call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

/// What the daemon tells its service manager.
pub trait Notify: Send + Sync {
    fn ready(&self, status: &str);
    fn status(&self, status: &str);
    fn watchdog(&self);
    fn reloading(&self);
    fn stopping(&self);
    /// How often to ping the watchdog; `None` when no watchdog is set.
    fn watchdog_interval(&self) -> Option<Duration>;
}

/// systemd's notification socket; failures are logged, never fatal.
#[derive(Debug, Clone, Copy, Default)]
pub struct SdNotify;

impl SdNotify {
    fn send(&self, states: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!(error = %e, "notifying systemd: {e}");
        }
    }
}

impl Notify for SdNotify {
    fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// systemd 253+ requires the monotonic time with RELOADING=1.
    fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(e) => tracing::warn!(error = %e, "reading the monotonic clock: {e}"),
        }
    }

    fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// Half the watchdog's timeout, as sd_watchdog_enabled(3) advises.
    fn watchdog_interval(&self) -> Option<Duration> {
        sd_notify::watchdog_enabled().map(|timeout| timeout / 2)
    }
}
