//! S3 (and S3-compatible stores) as a sink, streaming without temporary files.
//!
//! A body of up to 256 KiB (a trial's objects) is written on the uploading task; a
//! larger one is started over on a blocking thread that hands full parts over a channel
//! of one slot, so memory stays near a few parts whatever the object's size. An object
//! that fits in one part goes up in one PutObject; a larger one becomes a multipart
//! upload whose parts are sent as they fill, and which is aborted on any failure.
//! Both carry `If-None-Match: *`, so an existing object is never replaced, and S3
//! makes an object visible only once PutObject or CompleteMultipartUpload succeeds.
//! Both carry the object's CRC64NVME checksum too, by which a retried write knows its
//! own first attempt ([`identity`]).

use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

mod abort;
mod answers;
mod identity;
mod parts;
mod upload;

use identity::IdentityLog;

use super::{BodyWriter, Deadline, Encryption, S3Settings, Sink, SinkError, Written};

/// Regions for stores that have none; S3-compatible servers accept any.
const FALLBACK_REGION: &str = "us-east-1";
/// How long aborting a multipart upload may take. After a cancellation the process is
/// about to exit, so this is short; a lifecycle rule removes what an abort missed.
const ABORT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct S3Sink {
    client: Client,
    bucket: String,
    prefix: String,
    part_size: usize,
    sse: Encryption,
    kms_key_id: Option<String>,
    identity: Arc<IdentityLog>,
}

impl S3Sink {
    /// Builds the client from aws-config's default chain (environment, profile,
    /// IMDSv2 instance role) and `settings`. Makes no request.
    pub async fn new(
        bucket: String,
        prefix: String,
        settings: &S3Settings,
        part_size: usize,
    ) -> S3Sink {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            // The SDK sets no timeouts by default: against a frozen server a request
            // would hang for ever. Setting a timeout config replaces all defaults, so
            // the connect timeout is set here too. The per-object deadline on top of
            // these is the caller's.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(30))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            )
            // Standard mode, not adaptive: a daemon sends a few requests a second, far
            // below S3's per-prefix rates, so a 503 SlowDown is S3 scaling, not this
            // client going too fast. Adaptive mode's rate limiter starts from that
            // small measured rate and held the next attempt back 20 s after a single
            // SlowDown (standard: 0.07 s). Once a write's attempts run out, the
            // daemon's retry queue backs off from 1 s to 30 s.
            .retry_config(RetryConfig::standard().with_max_attempts(4));
        if let Some(region) = settings.region.get() {
            loader = loader.region(aws_config::Region::new(region.to_string()));
        } else if settings.endpoint_url.get().is_some() {
            loader = loader.region(aws_config::Region::new(FALLBACK_REGION));
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.force_path_style)
            // The default retry quota is spent after about 25 consecutive failures and
            // then refills only on success, so a daemon that lived through an outage
            // would stop retrying for good. This bucket refills with time as well.
            .retry_partition(
                RetryPartition::custom("svr-etl")
                    .token_bucket(TokenBucket::builder().refill_rate(1.0).build())
                    .build(),
            )
            .interceptor(answers::LogRetriedAnswers);
        if let Some(endpoint) = settings.endpoint_url.get() {
            config = config.endpoint_url(endpoint);
        }
        S3Sink {
            client: Client::from_conf(config.build()),
            bucket,
            prefix,
            part_size,
            sse: settings.sse,
            kms_key_id: settings.kms_key_id.get().map(str::to_string),
            identity: Arc::default(),
        }
    }

    /// `work`'s result, or the error of the deadline that ended it first.
    async fn within<T>(
        &self,
        deadline: &Deadline,
        op: &'static str,
        key: &str,
        work: impl std::future::Future<Output = Result<T, SinkError>>,
    ) -> Result<T, SinkError> {
        let location = self.location(key);
        tokio::select! {
            result = tokio::time::timeout(deadline.timeout, work) => {
                result.unwrap_or_else(|_| Err(SinkError::Timeout { op, location, after: deadline.timeout }))
            }
            _ = deadline.cancel.cancelled() => Err(SinkError::Cancelled { op, location }),
        }
    }

    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }
}

#[async_trait]
impl Sink for S3Sink {
    async fn create(
        &self,
        key: &str,
        body: BodyWriter,
        deadline: &Deadline,
    ) -> Result<Written, SinkError> {
        let mut open = None;
        let upload = self.create_with_restarts(key, &body, &mut open);
        let created = self.within(deadline, "uploading", key, upload).await;
        if let Some(upload) = open {
            self.abort_open(key, upload).await;
        }
        created
    }

    async fn replace(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &'static str,
        deadline: &Deadline,
    ) -> Result<Written, SinkError> {
        let len = bytes.len() as u64;
        let put = self.put_replacing(key, bytes, content_type);
        self.within(deadline, "PutObject", key, put).await?;
        Ok(Written {
            location: self.location(key),
            bytes: len,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        match got {
            Ok(out) => {
                let bytes = out.body.collect().await.map_err(|e| SinkError::Remote {
                    op: "GetObject",
                    location: self.location(key),
                    message: e.to_string(),
                })?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.remote("GetObject", key, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.remote("DeleteObject", key, e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, SinkError> {
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full_key(prefix))
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.remote("ListObjectsV2", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .map(|k| k[strip..].to_string()),
            );
        }
        keys.sort();
        Ok(keys)
    }

    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>, SinkError> {
        let strip = self.full_key("").len();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full_key(prefix))
            .delimiter("/")
            .into_paginator()
            .send();
        let mut folders = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.remote("ListObjectsV2", prefix, e))?;
            folders.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix())
                    .map(|p| p[strip..].to_string()),
            );
        }
        folders.sort();
        Ok(folders)
    }

    async fn clean_stale(&self, age: Duration) -> Result<usize, SinkError> {
        let cutoff = std::time::SystemTime::now() - age;
        let mut stale = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(self.full_key(""))
                .set_key_marker(markers.0.take())
                .set_upload_id_marker(markers.1.take())
                .send()
                .await
                .map_err(|e| self.remote("ListMultipartUploads", "", e))?;
            for upload in page.uploads() {
                let started = upload
                    .initiated()
                    .and_then(|t| std::time::SystemTime::try_from(*t).ok());
                if let (Some(key), Some(id), Some(started)) =
                    (upload.key(), upload.upload_id(), started)
                {
                    // Some S3-compatible stores ignore the prefix of this listing.
                    if started < cutoff && key.starts_with(&self.full_key("")) {
                        stale.push((key.to_string(), id.to_string()));
                    }
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            markers = (
                page.next_key_marker().map(str::to_string),
                page.next_upload_id_marker().map(str::to_string),
            );
        }
        let strip = self.full_key("").len();
        for (key, id) in &stale {
            self.abort(&key[strip..], id).await;
        }
        Ok(stale.len())
    }

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }
}
