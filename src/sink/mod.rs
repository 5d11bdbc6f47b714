//! Where objects go: the [`Sink`] trait, its settings, and the key layout.
//!
//! A sink creates objects from a writer callback, so records are serialized straight
//! into the destination, and guarantees that an object appears under its final key
//! whole or not at all, and never replaces one already there. [`Layout`] decides the
//! keys (mirroring the S3 layout on every sink) and applies compression. Only
//! `s3.rs` touches aws types.

mod local;
mod s3;

use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use local::LocalSink;
pub use s3::S3Sink;

use crate::hyper_id::HyperId;

/// Writes an object's bytes; called once, on a blocking thread.
pub type BodyWriter = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send>;

/// S3 refuses multipart parts below 5 MiB (except the last).
const MIN_PART_MIB: f64 = 5.0;
/// And above 5 GiB.
const MAX_PART_MIB: f64 = 5.0 * 1024.0;

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
}

/// What a successful create wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub location: String,
    pub bytes: u64,
}

/// An object store.
#[async_trait]
pub trait Sink: Send + Sync + fmt::Debug {
    /// Creates `key` from what `body` writes, within `timeout`. The object becomes
    /// visible only once complete, and an existing object is never replaced
    /// ([`SinkError::Exists`]). On any failure nothing is visible under `key`.
    async fn create(
        &self,
        key: &str,
        body: BodyWriter,
        timeout: Duration,
    ) -> Result<Written, SinkError>;

    /// The object's bytes, or `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError>;

    /// Every key under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, SinkError>;

    /// The object's full address, for messages (`file:///…`, `s3://…`).
    fn location(&self, key: &str) -> String;
}

/// Where the sink is.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkUrl {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl SinkUrl {
    pub fn parse(url: &str) -> Result<SinkUrl, String> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{url:?} names no bucket"));
            }
            return Ok(SinkUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(format!("{url:?}: a file:// URL needs an absolute path"));
            }
            return Ok(SinkUrl::Local(PathBuf::from(path)));
        }
        if url.is_empty() || url.contains("://") {
            return Err(format!(
                "{url:?}: expected s3://bucket/prefix, file:///dir or a directory path"
            ));
        }
        Ok(SinkUrl::Local(PathBuf::from(url)))
    }
}

impl fmt::Display for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkUrl::Local(p) => write!(f, "file://{}", p.display()),
            SinkUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Whether objects are gzipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

/// How the S3 client reaches the store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct S3Settings {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub force_path_style: bool,
}

/// Validated `[sink]` and `[s3]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkSettings {
    pub url: SinkUrl,
    pub compression: Compression,
    pub upload_timeout: Duration,
    pub part_size: usize,
    pub s3: S3Settings,
}

impl SinkSettings {
    /// Errors name the config key at fault.
    pub fn new(
        url: &str,
        compression: &str,
        upload_timeout: Duration,
        part_size_mib: f64,
        region: String,
        endpoint_url: String,
        force_path_style: bool,
    ) -> Result<SinkSettings, (&'static str, String)> {
        let url = SinkUrl::parse(url).map_err(|e| ("sink.url", e))?;
        let compression = match compression.trim() {
            "none" => Compression::None,
            "gzip" => Compression::Gzip,
            other => {
                return Err((
                    "sink.compression",
                    format!("expected \"none\" or \"gzip\", got {other:?}"),
                ))
            }
        };
        if !(MIN_PART_MIB..=MAX_PART_MIB).contains(&part_size_mib) {
            return Err((
                "sink.part_size_mib",
                format!("must be {MIN_PART_MIB} to {MAX_PART_MIB} (S3's part limits), got {part_size_mib}"),
            ));
        }
        let endpoint_url = Some(endpoint_url.trim().to_string()).filter(|s| !s.is_empty());
        if let Some(e) = &endpoint_url {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err((
                    "s3.endpoint_url",
                    format!("expected an http:// or https:// URL, got {e:?}"),
                ));
            }
        }
        Ok(SinkSettings {
            url,
            compression,
            upload_timeout,
            part_size: (part_size_mib * 1024.0 * 1024.0) as usize,
            s3: S3Settings {
                region: Some(region.trim().to_string()).filter(|s| !s.is_empty()),
                endpoint_url,
                force_path_style,
            },
        })
    }
}

/// Opens the configured sink. For S3 this builds the client; it does not yet talk to
/// the store.
pub async fn open(settings: &SinkSettings) -> Arc<dyn Sink> {
    match &settings.url {
        SinkUrl::Local(dir) => Arc::new(LocalSink::new(dir.clone())),
        SinkUrl::S3 { bucket, prefix } => Arc::new(
            S3Sink::new(
                bucket.clone(),
                prefix.clone(),
                &settings.s3,
                settings.part_size,
            )
            .await,
        ),
    }
}

/// The keys objects are written under, the same on every sink:
/// `data/data.json`, `fact/dt=YYYY-MM-DD/<hyper_id>.json`,
/// `hyper/dt=YYYY-MM-DD/<hyper_id>.json` (`.json.gz` when gzipped). The date is the
/// trial's UTC creation day, the Athena partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    compression: Compression,
}

impl Layout {
    pub fn new(compression: Compression) -> Layout {
        Layout { compression }
    }

    fn ext(&self) -> &'static str {
        match self.compression {
            Compression::None => "json",
            Compression::Gzip => "json.gz",
        }
    }

    pub fn data_key(&self) -> String {
        format!("data/data.{}", self.ext())
    }

    pub fn fact_key(&self, created: DateTime<Utc>, id: HyperId) -> String {
        format!("fact/dt={}/{id}.{}", created.format("%Y-%m-%d"), self.ext())
    }

    pub fn hyper_key(&self, created: DateTime<Utc>, id: HyperId) -> String {
        format!(
            "hyper/dt={}/{id}.{}",
            created.format("%Y-%m-%d"),
            self.ext()
        )
    }

    /// Wraps `body` so that what it writes is compressed as configured.
    pub fn encode(&self, body: BodyWriter) -> BodyWriter {
        match self.compression {
            Compression::None => body,
            Compression::Gzip => Box::new(move |out: &mut dyn Write| {
                let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
                body(&mut gz)?;
                gz.finish()?;
                Ok(())
            }),
        }
    }
}

/// The plain bytes of an object read back, whichever way it was written.
pub fn decode(key: &str, bytes: Vec<u8>) -> io::Result<Vec<u8>> {
    if key.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice()).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            SinkUrl::parse("s3://b/p/q/").unwrap(),
            SinkUrl::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            SinkUrl::parse("s3://b").unwrap(),
            SinkUrl::S3 {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            SinkUrl::parse("file:///tmp/x").unwrap(),
            SinkUrl::Local("/tmp/x".into())
        );
        assert_eq!(SinkUrl::parse("out").unwrap(), SinkUrl::Local("out".into()));
        for bad in ["s3:///p", "file://rel", "http://x/y", ""] {
            assert!(SinkUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_partitioned_by_utc_day() {
        use chrono::TimeZone;
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 23, 59, 59).unwrap();
        let id = crate::hyper_id::HyperIdGenerator::with_node(0).next(t);
        let plain = Layout::new(Compression::None);
        assert_eq!(
            plain.fact_key(t, id),
            format!("fact/dt=2026-11-26/{id}.json")
        );
        assert_eq!(
            plain.hyper_key(t, id),
            format!("hyper/dt=2026-11-26/{id}.json")
        );
        assert_eq!(
            Layout::new(Compression::Gzip).data_key(),
            "data/data.json.gz"
        );
    }

    #[test]
    fn gzip_round_trips() {
        let layout = Layout::new(Compression::Gzip);
        let body = layout.encode(Box::new(|w: &mut dyn Write| w.write_all(b"{\"a\":1}\n")));
        let mut out = Vec::new();
        body(&mut out).unwrap();
        assert_ne!(out, b"{\"a\":1}\n");
        assert_eq!(decode("x.json.gz", out).unwrap(), b"{\"a\":1}\n");
    }
}
