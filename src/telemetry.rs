//! Logging: tracing to journald under systemd, readable lines on stderr elsewhere.
//!
//! Under systemd (JOURNAL_STREAM set and the journal reachable) events go to
//! journald with their fields as journal fields (HYPER_ID, TEST_R2, ...). Elsewhere a
//! line is the message alone: every message carries its values in words, so the
//! fields would print each value twice. The level
//! comes from the config, RUST_LOG taking precedence, and can change at run time
//! through the returned [`LogHandle`].

use tracing_subscriber::layer::SubscriberExt;

use crate::model::panic_message;
use crate::model::values::LogLevel;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Changes the log level of a running process.
#[derive(Clone)]
pub struct LogHandle {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
}

impl LogHandle {
    /// A handle that changes nothing, for a daemon whose logging is set up elsewhere
    /// (an embedding program, a test).
    pub fn detached() -> LogHandle {
        LogHandle { handle: None }
    }

    /// Applies `level` unless RUST_LOG pins the filter.
    pub fn set_level(&self, level: &LogLevel) {
        let Some(handle) = &self.handle else {
            return;
        };
        if let Err(e) = handle.reload(level_filter(level.as_str())) {
            tracing::warn!(error = %e, "keeping the log level: {e}");
        }
    }
}

/// Installs the global subscriber. Call once, early in `main`.
pub fn init(level: &LogLevel) -> LogHandle {
    let level = level.as_str();
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let filter = from_env
        .as_deref()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| level_filter(level));
    let (filter, handle) = reload::Layer::new(filter);
    let handle = LogHandle {
        handle: from_env.is_none().then_some(handle),
    };
    let journald = std::env::var_os("JOURNAL_STREAM")
        .is_some()
        .then(|| tracing_journald::layer().ok())
        .flatten()
        // The default prefix would make HYPER_ID into F_HYPER_ID; the README promises
        // `journalctl -u svr-etl HYPER_ID=…`.
        .map(|layer| {
            layer
                .with_field_prefix(None)
                .with_syslog_identifier("svr-etl".into())
        });
    let registry = tracing_subscriber::registry().with(filter);
    match journald {
        Some(journal) => registry.with(journal).init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(tracing_subscriber::fmt::format::debug_fn(
                        |out, field, value| match field.name() {
                            "message" => write!(out, "{value:?}"),
                            _ => Ok(()),
                        },
                    ))
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(false),
            )
            .init(),
    }
    handle
}

/// Routes panic messages through tracing, so that under systemd a panic (linfa-svm
/// has some, contained by the trainer) is one journal entry rather than loose stderr.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        let message = panic_message(info.payload());
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        let trace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
            _ => String::new(),
        };
        tracing::error!(%location, %thread, %backtrace, "panic in thread {thread} at {location}: {message}{trace}");
    }));
}

/// The config's level.
fn level_filter(level: &str) -> EnvFilter {
    EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"))
}
