//! S3 (and S3-compatible stores) as a sink, streaming without temporary files.
//!
//! The body writer runs on a blocking thread and hands full parts over a channel of
//! one slot, so memory stays near a few parts whatever the object's size. An object
//! that fits in one part goes up in one PutObject; a larger one becomes a multipart
//! upload whose parts are sent as they fill, and which is aborted on any failure.
//! Both carry `If-None-Match: *`, so an existing object is never replaced, and S3
//! makes an object visible only once PutObject or CompleteMultipartUpload succeeds.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use md5::{Digest, Md5};
use tokio::sync::mpsc;

use super::parts::{Chunk, PartWriter};
use super::{BodyWriter, CountingWriter, Deadline, S3Settings, Sink, SinkError, Written};

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
}

/// Why an upload stopped early.
enum Stop {
    /// The body writer ended without finishing; its own error says why.
    WriterGone,
    Failed(SinkError),
}

impl From<SinkError> for Stop {
    fn from(e: SinkError) -> Stop {
        Stop::Failed(e)
    }
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
            );
        if let Some(endpoint) = settings.endpoint_url.get() {
            config = config.endpoint_url(endpoint);
        }
        S3Sink {
            client: Client::from_conf(config.build()),
            bucket,
            prefix,
            part_size,
        }
    }

    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn remote<E>(&self, op: &'static str, key: &str, err: SdkError<E>) -> SinkError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let location = self.location(key);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err
            .as_service_error()
            .and_then(|e| e.code().map(str::to_string));
        // 412: the If-None-Match: * precondition failed, the key is taken.
        if status == Some(412) || code.as_deref() == Some("PreconditionFailed") {
            return SinkError::Exists { location };
        }
        // The SDK's own rendering of a service error includes the raw response; the
        // code, message and status say all a reader of the log needs.
        let message = match (&code, err.as_service_error().and_then(|e| e.message())) {
            (Some(code), Some(text)) => format!("{code}: {text}"),
            (Some(code), None) => code.clone(),
            _ => DisplayErrorContext(&err).to_string(),
        };
        let message = match status {
            Some(status) => format!("{message} (HTTP {status})"),
            None => message,
        };
        SinkError::Remote {
            op,
            location,
            message,
        }
    }

    /// Sends the chunks as they arrive: one PutObject, or a multipart upload.
    async fn upload(
        &self,
        key: &str,
        chunks: &mut mpsc::Receiver<Chunk>,
        upload_id: &mut Option<String>,
    ) -> Result<(), Stop> {
        let Some(first) = chunks.recv().await else {
            return Err(Stop::WriterGone);
        };
        let expected_etag;
        let outcome = if first.last {
            expected_etag = etag_of(&[Md5::digest(&first.bytes).into()]);
            self.put(key, first.bytes).await
        } else {
            let mut digests = Vec::new();
            let outcome = self
                .multipart(key, first, chunks, upload_id, &mut digests)
                .await;
            expected_etag = etag_of(&digests);
            outcome
        };
        match outcome {
            // The SDK retries a request whose answer timed out; when the first attempt
            // landed after all, the retry finds the key taken. An object with the
            // content we sent is ours, and the write has succeeded.
            Err(Stop::Failed(SinkError::Exists { location })) => {
                // A refused completion leaves its upload open; the caller aborts it.
                if self.etag(key).await.as_deref() == Some(expected_etag.as_str()) {
                    Ok(())
                } else {
                    Err(Stop::Failed(SinkError::Exists { location }))
                }
            }
            other => other,
        }
    }

    /// The object's ETag without quotes, if it can be read.
    async fn etag(&self, key: &str) -> Option<String> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .ok()?;
        Some(head.e_tag()?.trim_matches('"').to_string())
    }

    /// A multipart upload of `first` and the chunks after it; `digests` gets the MD5
    /// of each part sent.
    async fn multipart(
        &self,
        key: &str,
        first: Chunk,
        chunks: &mut mpsc::Receiver<Chunk>,
        upload_id: &mut Option<String>,
        digests: &mut Vec<[u8; 16]>,
    ) -> Result<(), Stop> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .content_type("application/json")
            .send()
            .await
            .map_err(|e| self.remote("CreateMultipartUpload", key, e))?;
        let id = created.upload_id().unwrap_or_default().to_string();
        *upload_id = Some(id.clone());
        let parts = self.send_parts(key, &id, first, chunks, digests).await?;
        self.complete(key, &id, parts).await?;
        *upload_id = None;
        Ok(())
    }

    /// A whole object in one request.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), Stop> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .if_none_match("*")
            .content_type("application/json")
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| self.remote("PutObject", key, e))?;
        Ok(())
    }

    /// Uploads `first` and the chunks after it as the parts of upload `id`.
    async fn send_parts(
        &self,
        key: &str,
        id: &str,
        first: Chunk,
        chunks: &mut mpsc::Receiver<Chunk>,
        digests: &mut Vec<[u8; 16]>,
    ) -> Result<Vec<CompletedPart>, Stop> {
        let mut parts = Vec::new();
        let mut chunk = first;
        loop {
            // A last chunk can be empty when the object is a whole number of parts;
            // S3 takes no empty part after the first.
            if !(chunk.last && chunk.bytes.is_empty()) {
                let number = parts.len() as i32 + 1;
                digests.push(Md5::digest(&chunk.bytes).into());
                let sent = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(self.full_key(key))
                    .upload_id(id)
                    .part_number(number)
                    .body(ByteStream::from(chunk.bytes))
                    .send()
                    .await
                    .map_err(|e| self.remote("UploadPart", key, e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(sent.e_tag().map(str::to_string))
                        .build(),
                );
            }
            if chunk.last {
                return Ok(parts);
            }
            chunk = chunks.recv().await.ok_or(Stop::WriterGone)?;
        }
    }

    async fn complete(&self, key: &str, id: &str, parts: Vec<CompletedPart>) -> Result<(), Stop> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .upload_id(id)
            // Create-once holds for multipart objects too.
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| match self.remote("CompleteMultipartUpload", key, e) {
                // A retried completion finds the upload already completed: whether
                // the object is ours is decided as for a taken key.
                SinkError::Remote {
                    message, location, ..
                } if message.starts_with("NoSuchUpload") => SinkError::Exists { location },
                other => other,
            })?;
        Ok(())
    }

    /// [`S3Sink::upload`] until the deadline's timeout or cancellation. Either way the
    /// upload future is dropped, and the caller aborts what it left open.
    async fn upload_within(
        &self,
        key: &str,
        chunks: &mut mpsc::Receiver<Chunk>,
        upload_id: &mut Option<String>,
        deadline: &Deadline,
    ) -> Result<(), Stop> {
        let location = || self.location(key);
        tokio::select! {
            result = tokio::time::timeout(deadline.timeout, self.upload(key, chunks, upload_id)) => {
                result.unwrap_or_else(|_| Err(Stop::Failed(SinkError::Timeout {
                    op: "uploading",
                    location: location(),
                    after: deadline.timeout,
                })))
            }
            _ = deadline.cancel.cancelled() => Err(Stop::Failed(SinkError::Cancelled {
                op: "uploading",
                location: location(),
            })),
        }
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        let request = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .upload_id(upload_id)
            .send();
        let error = match tokio::time::timeout(ABORT_TIMEOUT, request).await {
            Ok(Ok(_)) => return,
            // Completed by an earlier attempt after all.
            Ok(Err(e)) if e.as_service_error().and_then(|e| e.code()) == Some("NoSuchUpload") => {
                return
            }
            Ok(Err(e)) => DisplayErrorContext(&e).to_string(),
            Err(_) => format!("no answer within {}s", ABORT_TIMEOUT.as_secs_f64()),
        };
        // The object never became visible either way; a bucket lifecycle rule
        // (see the README) removes what an abort could not.
        tracing::warn!(
            location = %self.location(key),
            upload_id,
            error,
            "could not abort the multipart upload"
        );
    }
}

/// The ETag S3 gives an object uploaded in parts with these MD5 digests: the plain MD5
/// for a single PutObject, the MD5 of the digests and their count for a multipart one.
/// (Objects encrypted with SSE-KMS have other ETags; there a retry that meets its own
/// first attempt is reported as a conflict.)
fn etag_of(digests: &[[u8; 16]]) -> String {
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match digests {
        [single] => hex(single),
        parts => {
            let joined: Vec<u8> = parts.iter().flatten().copied().collect();
            format!("{}-{}", hex(&Md5::digest(&joined)), parts.len())
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
        let (tx, mut rx) = mpsc::channel(1);
        let part_size = self.part_size;
        let writer = tokio::task::spawn_blocking(move || {
            let mut out = CountingWriter {
                inner: PartWriter::new(part_size, tx),
                count: 0,
            };
            body(&mut out)?;
            out.inner.send(true)?;
            Ok::<u64, std::io::Error>(out.count)
        });
        let mut upload_id = None;
        let uploaded = self
            .upload_within(key, &mut rx, &mut upload_id, deadline)
            .await;
        // Unblocks the writer if the upload stopped early.
        drop(rx);
        let written = writer.await;
        if let Some(id) = upload_id {
            self.abort(key, &id).await;
        }
        let writer_error = |source| SinkError::Io {
            op: "writing",
            location: self.location(key),
            source,
        };
        match (uploaded, written) {
            (Ok(()), Ok(Ok(bytes))) => Ok(Written {
                location: self.location(key),
                bytes,
            }),
            // An upload that failed first is the cause; the writer then only saw the
            // channel close.
            (Err(Stop::Failed(e)), _) => Err(e),
            (_, Ok(Err(source))) => Err(writer_error(source)),
            (_, Err(join)) => Err(writer_error(std::io::Error::other(join.to_string()))),
            (Err(Stop::WriterGone), Ok(Ok(_))) => {
                unreachable!("a writer that finished sent its last chunk")
            }
        }
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

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }
}
