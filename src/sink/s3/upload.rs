//! Uploading one object: a single PutObject, or a multipart upload of the parts the
//! body writer fills, each with `If-None-Match: *`, and what makes a retried request
//! that finds its own first attempt a success.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use md5::{Digest, Md5};
use tokio::sync::mpsc;

use super::parts::Chunk;
use super::{S3Sink, ABORT_TIMEOUT};
use crate::sink::{Deadline, Sink, SinkError};

/// Why an upload stopped early.
pub(super) enum Stop {
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
    pub(super) async fn upload_within(
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

    pub(super) async fn abort(&self, key: &str, upload_id: &str) {
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
        let location = self.location(key);
        tracing::warn!(
            location = %location,
            upload_id,
            error,
            "could not abort the multipart upload {upload_id} of {location}: {error}"
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
