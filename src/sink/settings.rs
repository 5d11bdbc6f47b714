//! The `[sink]` and `[s3]` settings: where objects go and how the S3 client reaches
//! the store, each value checked as it is read from the config file.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Compression;
use crate::model::values::{Bounded, Optional, Seconds};

/// Where the sink is (`sink.url`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SinkUrl {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl SinkUrl {
    pub fn parse(url: &str) -> Result<SinkUrl, String> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("s3://") {
            if !cfg!(feature = "s3") {
                return Err(format!(
                    "{url:?}: this svr-etl was built without S3 (cargo --no-default-features); build it with the default features, or install the package"
                ));
            }
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
        // `s3:/b/p` and `s3:b/p` are typos of an S3 URL, not directory names.
        if url.is_empty() || url.contains("://") || url.starts_with("s3:") {
            return Err(format!(
                "{url:?}: expected s3://bucket/prefix, file:///dir or a directory path"
            ));
        }
        Ok(SinkUrl::Local(PathBuf::from(url)))
    }
}

impl TryFrom<String> for SinkUrl {
    type Error = String;
    fn try_from(url: String) -> Result<Self, String> {
        SinkUrl::parse(&url)
    }
}

impl From<SinkUrl> for String {
    /// The form the config file takes: a directory stays a path, so that a relative
    /// one stays relative.
    fn from(url: SinkUrl) -> String {
        match url {
            SinkUrl::Local(p) => p.display().to_string(),
            s3 => s3.to_string(),
        }
    }
}

impl fmt::Display for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkUrl::Local(p) => {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                write!(f, "file://{}", abs.display())
            }
            SinkUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// A multipart part size in MiB: S3's 5 MiB minimum to 1 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct PartSize(f64);

impl PartSize {
    const MIN_MIB: f64 = 5.0;
    /// S3 takes parts up to 5 GiB, but each upload holds a part in memory: 1 GiB
    /// parts already reach S3's 5 TiB object limit within its 10,000 parts.
    const MAX_MIB: f64 = 1024.0;

    pub fn bytes(self) -> usize {
        (self.0 * 1024.0 * 1024.0) as usize
    }
}

impl TryFrom<f64> for PartSize {
    type Error = String;
    fn try_from(mib: f64) -> Result<Self, String> {
        if (Self::MIN_MIB..=Self::MAX_MIB).contains(&mib) {
            Ok(PartSize(mib))
        } else {
            Err(format!(
                "must be {} to {} MiB, got {mib}",
                Self::MIN_MIB,
                Self::MAX_MIB
            ))
        }
    }
}

impl From<PartSize> for f64 {
    fn from(p: PartSize) -> f64 {
        p.0
    }
}

/// An S3 endpoint URL (`s3.endpoint_url`): empty for AWS, else http(s)://host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "Optional", into = "Optional")]
pub struct Endpoint(Optional);

impl Endpoint {
    pub fn get(&self) -> Option<&str> {
        self.0.get()
    }
}

impl TryFrom<Optional> for Endpoint {
    type Error = String;
    fn try_from(url: Optional) -> Result<Self, String> {
        if let Some(e) = url.get() {
            check_endpoint(e)
                .map_err(|why| format!("{why}; expected http(s)://host[:port], got {e:?}"))?;
        }
        Ok(Endpoint(url))
    }
}

/// What the S3 client will need of an endpoint URL: a scheme it speaks, a host, and a
/// port that exists.
fn check_endpoint(url: &str) -> Result<(), &'static str> {
    let uri: http::Uri = url.parse().map_err(|_| "not a URL")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("not http or https");
    }
    let authority = uri.authority().ok_or("no host")?;
    if authority.host().trim_matches(['[', ']']).is_empty() {
        return Err("no host");
    }
    if let Some(port) = authority.as_str().rsplit_once(':').map(|(_, p)| p) {
        if !port.ends_with(']') && port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err("the port is not 1 to 65535");
        }
    }
    Ok(())
}

impl From<Endpoint> for Optional {
    fn from(e: Endpoint) -> Optional {
        e.0
    }
}

/// `[sink]`: where and how objects are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSettings {
    pub url: SinkUrl,
    pub compression: Compression,
    pub upload_timeout_secs: Seconds<false>,
    pub part_size_mib: PartSize,
    pub retry_queue_mib: Bounded<0, 65_536>,
}

impl SinkSettings {
    /// How many bytes of unwritten trials the daemon keeps for another try.
    pub fn retry_queue_bytes(&self) -> usize {
        self.retry_queue_mib.get() * 1024 * 1024
    }

    pub fn upload_timeout(&self) -> Duration {
        self.upload_timeout_secs.get()
    }
}

/// `[s3]`: how the S3 client reaches the store.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub region: Optional,
    pub endpoint_url: Endpoint,
    pub force_path_style: bool,
    pub sse: Encryption,
    pub kms_key_id: Optional,
}

/// Server-side encryption asked for on each write (`s3.sse`). A bucket's default
/// encryption applies without it; it is for policies that require the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Encryption {
    /// The bucket's default.
    #[default]
    BucketDefault,
    /// SSE-S3, `AES256`.
    S3Managed,
    /// SSE-KMS, `aws:kms`: writes need kms:GenerateDataKey on the key, multipart
    /// uploads kms:Decrypt too.
    Kms,
}

impl Encryption {
    /// The value of the `x-amz-server-side-encryption` header.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Encryption::BucketDefault => None,
            Encryption::S3Managed => Some("AES256"),
            Encryption::Kms => Some("aws:kms"),
        }
    }
}

impl TryFrom<String> for Encryption {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.trim() {
            "" => Ok(Encryption::BucketDefault),
            "AES256" => Ok(Encryption::S3Managed),
            "aws:kms" => Ok(Encryption::Kms),
            other => Err(format!(
                "expected \"\" (the bucket's default), \"AES256\" or \"aws:kms\", got {other:?}"
            )),
        }
    }
}

impl From<Encryption> for String {
    fn from(e: Encryption) -> String {
        e.header().unwrap_or_default().to_string()
    }
}

impl S3Settings {
    /// Settings as the `[s3]` keys would give them; empty strings for "not set".
    pub fn new(
        region: &str,
        endpoint_url: &str,
        force_path_style: bool,
    ) -> Result<S3Settings, String> {
        Ok(S3Settings {
            region: Optional::from(region.to_string()),
            endpoint_url: Endpoint::try_from(Optional::from(endpoint_url.to_string()))?,
            force_path_style,
            ..S3Settings::default()
        })
    }

    /// The same settings asking for `sse` with `kms_key_id` (empty: the bucket's key).
    pub fn with_encryption(mut self, sse: Encryption, kms_key_id: &str) -> S3Settings {
        self.sse = sse;
        self.kms_key_id = Optional::from(kms_key_id.to_string());
        self
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
        for bad in [
            "s3:///p",
            "file://rel",
            "http://x/y",
            "",
            "s3:/b/p",
            "s3:b/p",
        ] {
            assert!(SinkUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_are_checked_as_the_client_will_use_them() {
        for good in [
            "http://127.0.0.1:9000",
            "https://s3.example.com",
            "http://[::1]:9000",
            "http://[::1]",
        ] {
            assert!(check_endpoint(good).is_ok(), "{good}");
        }
        for bad in [
            "http://",
            "https://[::1",
            "http://127.0.0.1:99999",
            "http://h:0",
            "ftp://h",
            "h:9000",
            "http://h:port",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_print_as_they_load() {
        for url in ["out", "/abs/dir", "s3://b/p"] {
            let parsed = SinkUrl::parse(url).unwrap();
            assert_eq!(String::from(parsed.clone()), url);
            assert_eq!(
                SinkUrl::parse(&String::from(parsed.clone())).unwrap(),
                parsed
            );
        }
    }
}
