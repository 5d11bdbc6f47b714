//! Telling systemd how the service is doing (`Type=notify`): READY=1 once start-up is
//! done, STATUS= lines for `systemctl status`, WATCHDOG=1 pings, RELOADING=1 and
//! STOPPING=1. Without NOTIFY_SOCKET every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

/// Sends notifications; failures are logged, never fatal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Notifier;

impl Notifier {
    fn send(&self, states: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!(error = %e, "notifying systemd");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// systemd 253+ requires the monotonic time with RELOADING=1.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(e) => tracing::warn!(error = %e, "reading the monotonic clock"),
        }
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// How often to ping the watchdog: half its timeout, as sd_watchdog_enabled(3)
    /// advises. `None` when systemd set no watchdog for this process.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        sd_notify::watchdog_enabled().map(|timeout| timeout / 2)
    }
}
