//! Where objects go: the [`Sink`] trait, its settings, and opening one from a URL.
//!
//! A sink creates objects from a writer callback, so records are serialized straight
//! into the destination, and guarantees that an object appears under its final key
//! whole or not at all, and never replaces one already there. [`keys`] decides the
//! keys (the same on every sink) and the encoding. Only `s3.rs` touches aws types.

pub mod encoding;
pub mod keys;
mod local;
#[cfg(feature = "s3")]
mod s3;
mod settings;

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use encoding::Compression;
pub use keys::Layout;
pub use local::LocalSink;
#[cfg(feature = "s3")]
pub use s3::S3Sink;
pub use settings::{Encryption, Endpoint, PartSize, S3Settings, SinkSettings, SinkUrl};

/// Writes an object's bytes, on a blocking thread. It writes the same bytes each time it
/// is called: a sink that must start an object over (S3 after a conflict) calls it again.
pub type BodyWriter = Arc<dyn Fn(&mut dyn Write) -> io::Result<()> + Send + Sync>;

/// A failed sink operation; names the object.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{location} already exists")]
    Exists { location: String },
    #[error("{op} {location}: {source}")]
    Io {
        op: &'static str,
        location: String,
        #[source]
        source: io::Error,
    },
    #[error("{op} {location}: {message}")]
    Remote {
        op: &'static str,
        location: String,
        message: String,
    },
    #[error("{op} {location}: no answer within {}s", .after.as_secs_f64())]
    Timeout {
        op: &'static str,
        location: String,
        after: Duration,
    },
    #[error("{op} {location}: cancelled at shutdown")]
    Cancelled { op: &'static str, location: String },
}

/// What a successful create wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub location: String,
    pub bytes: u64,
}

/// How long a write may take, and the token that ends it early at shutdown.
#[derive(Debug, Clone)]
pub struct Deadline {
    pub timeout: Duration,
    pub cancel: CancellationToken,
}

impl Deadline {
    /// A deadline that only times out.
    pub fn after(timeout: Duration) -> Deadline {
        Deadline {
            timeout,
            cancel: CancellationToken::new(),
        }
    }
}

/// An object store.
#[async_trait]
pub trait Sink: Send + Sync + fmt::Debug {
    /// Creates `key` from what `body` writes, within `deadline`. The object becomes
    /// visible only once complete, and an existing object is never replaced
    /// ([`SinkError::Exists`]). On any failure, cancellation included, nothing is
    /// visible under `key`.
    async fn create(
        &self,
        key: &str,
        body: BodyWriter,
        deadline: &Deadline,
    ) -> Result<Written, SinkError>;

    /// Writes `bytes` to `key`, replacing the object there, within `deadline`: readers
    /// see the old object or the new one, never a part. Only the published report is
    /// written this way ([`keys::REPORT_KEY`]); every record is created once.
    async fn replace(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &'static str,
        deadline: &Deadline,
    ) -> Result<Written, SinkError>;

    /// The object's bytes, or `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError>;

    /// Every key under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, SinkError>;

    /// The folders directly under `prefix` (which ends in `/`), each as a prefix ending
    /// in `/`, sorted: the days of a partitioned table without listing its objects.
    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>, SinkError> {
        let folders: std::collections::BTreeSet<String> = self
            .list(prefix)
            .await?
            .iter()
            .filter_map(|key| {
                let (folder, _) = key.strip_prefix(prefix)?.split_once('/')?;
                Some(format!("{prefix}{folder}/"))
            })
            .collect();
        Ok(folders.into_iter().collect())
    }

    /// Removes `key`; a key that is not there is no error. Used only for the
    /// short-lived markers of trials in flight (`running/`), never for records.
    async fn delete(&self, key: &str) -> Result<(), SinkError>;

    /// Removes what writes cut short by a crash left behind (never visible under a
    /// key) and that is older than `age`, so no writer still in progress is touched.
    /// Returns how many were removed.
    async fn clean_stale(&self, age: Duration) -> Result<usize, SinkError>;

    /// The object's full address, for messages (`file:///…`, `s3://…`).
    fn location(&self, key: &str) -> String;
}

/// Opens sinks; the daemon is given one, so that tests can put latency or faults
/// between it and a real sink.
#[async_trait]
pub trait OpenSink: Send + Sync {
    async fn open(&self, sink: &SinkSettings, s3: &S3Settings) -> Arc<dyn Sink>;
}

/// Opens the sink a URL names. For S3 this builds the client; it does not yet talk to
/// the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connector;

#[async_trait]
impl OpenSink for Connector {
    async fn open(&self, sink: &SinkSettings, s3: &S3Settings) -> Arc<dyn Sink> {
        match &sink.url {
            SinkUrl::Local(dir) => Arc::new(LocalSink::new(dir.clone())),
            #[cfg(feature = "s3")]
            SinkUrl::S3 { bucket, prefix } => Arc::new(
                S3Sink::new(
                    bucket.clone(),
                    prefix.clone(),
                    s3,
                    sink.part_size_mib.bytes(),
                )
                .await,
            ),
            #[cfg(not(feature = "s3"))]
            SinkUrl::S3 { .. } => {
                let _ = s3;
                unreachable!("without the s3 feature, s3:// URLs are refused when parsed")
            }
        }
    }
}

/// Counts the bytes that pass through, for logs and receipts.
pub(crate) struct CountingWriter<W> {
    pub inner: W,
    pub count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
