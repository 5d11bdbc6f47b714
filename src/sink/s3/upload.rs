//! Uploading one object: a single PutObject, or a multipart upload of the parts the
//! body writer fills. Each request carries the object's CRC64NVME checksum and
//! `If-None-Match: *`; a write that meets a conflicting one (409) starts over.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use tokio::sync::mpsc;

use super::abort::Open;
use super::identity::{Fingerprint, Sent};
use super::parts::{small_body, Chunk, PartWriter, SMALL_BODY};
use super::S3Sink;
use crate::sink::{BodyWriter, CountingWriter, Sink, SinkError, Written};

/// How many times an object is started over after S3 answers 409: a conditional write
/// raced another operation on the key, and S3's remedy is a new upload.
const CONFLICT_ATTEMPTS: u32 = 3;

/// Why an upload stopped early.
pub(super) enum Stop {
    /// The body writer ended without finishing; its own error says why.
    WriterGone,
    /// S3 answered 409 ConditionalRequestConflict.
    Conflict(SinkError),
    Failed(SinkError),
}

impl From<SinkError> for Stop {
    fn from(e: SinkError) -> Stop {
        Stop::Failed(e)
    }
}

impl S3Sink {
    /// Creates `key` from `body`, starting over after a conflict. `open` holds the id of
    /// a multipart upload in progress, for the caller to abort should this future be
    /// dropped (a deadline, shutdown).
    pub(super) async fn create_with_restarts(
        &self,
        key: &str,
        body: &BodyWriter,
        open: &mut Option<Open>,
    ) -> Result<Written, SinkError> {
        for attempt in 1.. {
            match self.attempt(key, body, open).await {
                Ok(written) => return Ok(written),
                Err(Stop::Conflict(e)) if attempt < CONFLICT_ATTEMPTS => {
                    let location = self.location(key);
                    tracing::warn!(
                        location = %location,
                        "{e}: a write raced this one; starting {location} over (attempt {} of {CONFLICT_ATTEMPTS})",
                        attempt + 1
                    );
                }
                Err(Stop::Conflict(e) | Stop::Failed(e)) => return Err(e),
                Err(Stop::WriterGone) => unreachable!("an attempt reports its writer's error"),
            }
        }
        unreachable!("the attempts end in a return")
    }

    /// One upload of the whole object: a small body written here and sent in one
    /// PutObject, a larger one written on a blocking thread that hands full parts over a
    /// channel of one slot.
    async fn attempt(
        &self,
        key: &str,
        body: &BodyWriter,
        open: &mut Option<Open>,
    ) -> Result<Written, Stop> {
        let writer_error = |source| {
            Stop::Failed(SinkError::Io {
                op: "writing",
                location: self.location(key),
                source,
            })
        };
        let (tx, mut rx) = mpsc::channel(1);
        let small = small_body(body, SMALL_BODY.min(self.part_size)).map_err(writer_error)?;
        if let Some(bytes) = small {
            let len = bytes.len() as u64;
            tx.try_send(Chunk { bytes, last: true })
                .unwrap_or_else(|_| unreachable!("the channel is new, with one slot"));
            self.upload(key, &mut rx, open).await?;
            return Ok(Written {
                location: self.location(key),
                bytes: len,
            });
        }
        let (part_size, body) = (self.part_size, body.clone());
        let writer = tokio::task::spawn_blocking(move || {
            let mut out = CountingWriter {
                inner: PartWriter::new(part_size, tx),
                count: 0,
            };
            body(&mut out)?;
            out.inner.send(true)?;
            Ok::<u64, std::io::Error>(out.count)
        });
        let uploaded = self.upload(key, &mut rx, open).await;
        // Unblocks the writer if the upload stopped early.
        drop(rx);
        let written = writer.await;
        if let Some(upload) = open.take() {
            self.abort_open(key, upload).await;
        }
        match (uploaded, written) {
            (Ok(()), Ok(Ok(bytes))) => Ok(Written {
                location: self.location(key),
                bytes,
            }),
            // An upload that failed first is the cause; the writer then only saw the
            // channel close.
            (Err(stop @ (Stop::Failed(_) | Stop::Conflict(_))), _) => Err(stop),
            (_, Ok(Err(source))) => Err(writer_error(source)),
            (_, Err(join)) => Err(writer_error(std::io::Error::other(join.to_string()))),
            (Err(Stop::WriterGone), Ok(Ok(_))) => {
                unreachable!("a writer that finished sent its last chunk")
            }
        }
    }

    /// Sends the chunks as they arrive: one PutObject, or a multipart upload.
    async fn upload(
        &self,
        key: &str,
        chunks: &mut mpsc::Receiver<Chunk>,
        open: &mut Option<Open>,
    ) -> Result<(), Stop> {
        let Some(first) = chunks.recv().await else {
            return Err(Stop::WriterGone);
        };
        let mut sent = None;
        let outcome = if first.last {
            self.put(key, first.bytes, &mut sent).await
        } else {
            self.multipart(key, first, chunks, open, &mut sent).await
        };
        match outcome {
            // The SDK retries a request whose answer was lost; when the first attempt
            // landed after all, the retry finds the key taken.
            Err(Stop::Failed(SinkError::Exists { location })) => {
                let sent = sent.expect("a key is found taken only once the whole object was sent");
                // A refused completion leaves its upload open; the caller aborts it.
                if self.holds(key, &sent).await? {
                    Ok(())
                } else {
                    Err(Stop::Failed(SinkError::Exists { location }))
                }
            }
            other => other,
        }
    }

    fn encryption(&self) -> Option<ServerSideEncryption> {
        self.sse.header().map(ServerSideEncryption::from)
    }

    /// A PutObject of `bytes` to `key` with their checksum and the configured
    /// encryption; what the checksum identifies goes to `sent`.
    fn put_request(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        sent: &mut Option<Sent>,
    ) -> PutObjectFluentBuilder {
        let mut fingerprint = Fingerprint::new();
        let checksum = fingerprint.add_part(&bytes);
        *sent = Some(fingerprint.finish());
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .content_type(content_type)
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .checksum_crc64_nvme(checksum)
            .set_server_side_encryption(self.encryption())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .body(ByteStream::from(bytes))
    }

    /// A whole object in one request.
    async fn put(&self, key: &str, bytes: Vec<u8>, sent: &mut Option<Sent>) -> Result<(), Stop> {
        let out = self
            .put_request(key, bytes, "application/json", sent)
            .if_none_match("*")
            .send()
            .await
            .map_err(|e| self.upload_error("PutObject", key, e))?;
        self.identity
            .note(&self.location(""), out.checksum_crc64_nvme().is_some());
        Ok(())
    }

    /// A whole object in one request that replaces what is there: S3 makes it visible
    /// whole, the old object until then.
    pub(super) async fn put_replacing(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &'static str,
    ) -> Result<(), SinkError> {
        self.put_request(key, bytes, content_type, &mut None)
            .send()
            .await
            .map_err(|e| self.remote("PutObject", key, e))?;
        Ok(())
    }

    /// A multipart upload of `first` and the chunks after it, with a full-object
    /// checksum that S3 checks at completion.
    async fn multipart(
        &self,
        key: &str,
        first: Chunk,
        chunks: &mut mpsc::Receiver<Chunk>,
        open: &mut Option<Open>,
        sent: &mut Option<Sent>,
    ) -> Result<(), Stop> {
        let request = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .content_type("application/json")
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .checksum_type(ChecksumType::FullObject)
            .set_server_side_encryption(self.encryption())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .send();
        let Open::Creating(creating) = open.insert(Open::Creating(tokio::spawn(request))) else {
            unreachable!("just inserted");
        };
        let answer = creating.await;
        *open = None;
        let created = answer
            .map_err(|join| self.task_failed("CreateMultipartUpload", key, &join))?
            .map_err(|e| self.upload_error("CreateMultipartUpload", key, e))?;
        let id = created.upload_id().unwrap_or_default().to_string();
        *open = Some(Open::Id(id.clone()));
        let mut fingerprint = Fingerprint::new();
        let parts = self
            .send_parts(key, &id, first, chunks, &mut fingerprint)
            .await?;
        let whole = fingerprint.finish();
        *sent = Some(whole.clone());
        self.complete(key, &id, parts, &whole).await?;
        *open = None;
        Ok(())
    }

    /// Uploads `first` and the chunks after it as the parts of upload `id`.
    async fn send_parts(
        &self,
        key: &str,
        id: &str,
        first: Chunk,
        chunks: &mut mpsc::Receiver<Chunk>,
        fingerprint: &mut Fingerprint,
    ) -> Result<Vec<CompletedPart>, Stop> {
        let mut parts = Vec::new();
        let mut chunk = first;
        loop {
            // A last chunk can be empty when the object is a whole number of parts;
            // S3 takes no empty part after the first.
            if !(chunk.last && chunk.bytes.is_empty()) {
                let number = parts.len() as i32 + 1;
                let checksum = fingerprint.add_part(&chunk.bytes);
                let sent = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(self.full_key(key))
                    .upload_id(id)
                    .part_number(number)
                    .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
                    .checksum_crc64_nvme(checksum.clone())
                    .body(ByteStream::from(chunk.bytes))
                    .send()
                    .await
                    .map_err(|e| self.upload_error("UploadPart", key, e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(sent.e_tag().map(str::to_string))
                        .checksum_crc64_nvme(checksum)
                        .build(),
                );
            }
            if chunk.last {
                return Ok(parts);
            }
            chunk = chunks.recv().await.ok_or(Stop::WriterGone)?;
        }
    }

    async fn complete(
        &self,
        key: &str,
        id: &str,
        parts: Vec<CompletedPart>,
        whole: &Sent,
    ) -> Result<(), Stop> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .upload_id(id)
            // Create-once holds for multipart objects too.
            .if_none_match("*")
            .checksum_type(ChecksumType::FullObject)
            .checksum_crc64_nvme(&whole.crc64nvme)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(
                |e| match self.upload_error("CompleteMultipartUpload", key, e) {
                    // A retried completion finds the upload already completed: whether
                    // the object is ours is decided as for a taken key.
                    Stop::Failed(SinkError::Remote {
                        message, location, ..
                    }) if message.starts_with("NoSuchUpload") => {
                        Stop::Failed(SinkError::Exists { location })
                    }
                    other => other,
                },
            )?;
        Ok(())
    }

    /// A failed upload request: 409 starts the object over, anything else ends it.
    fn upload_error<E>(&self, op: &'static str, key: &str, err: SdkError<E>) -> Stop
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let conflict = err.raw_response().map(|r| r.status().as_u16()) == Some(409);
        let error = self.remote(op, key, err);
        if conflict {
            Stop::Conflict(error)
        } else {
            Stop::Failed(error)
        }
    }

    /// The request task `op` on `key` ended without an answer (it panicked).
    fn task_failed(&self, op: &'static str, key: &str, join: &tokio::task::JoinError) -> Stop {
        Stop::Failed(SinkError::Io {
            op,
            location: self.location(key),
            source: std::io::Error::other(join.to_string()),
        })
    }
}
