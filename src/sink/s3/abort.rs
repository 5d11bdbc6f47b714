//! Ending multipart uploads that will not complete: one whose write failed or was cut
//! off, found by its id or by the answer to the request creating it, within a bound.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::create_multipart_upload::{
    CreateMultipartUploadError, CreateMultipartUploadOutput,
};
use tokio::task::JoinHandle;

use super::{S3Sink, ABORT_TIMEOUT};
use crate::sink::Sink;

/// A multipart upload this write has begun, for the caller to abort should the write
/// be dropped (a deadline, shutdown): its id, or the request creating it. That request
/// runs as a task of its own, so that S3's answer is still read when the write is
/// dropped while it is in flight; dropped with it, an upload S3 had opened was left
/// open with its id unknown.
pub(super) enum Open {
    Creating(JoinHandle<Result<CreateMultipartUploadOutput, SdkError<CreateMultipartUploadError>>>),
    Id(String),
}

impl S3Sink {
    /// Aborts `upload`, first reading S3's answer to the request creating it if that is
    /// still in flight (bounded as an abort is).
    pub(super) async fn abort_open(&self, key: &str, upload: Open) {
        let id = match upload {
            Open::Id(id) => id,
            Open::Creating(creating) => match tokio::time::timeout(ABORT_TIMEOUT, creating).await {
                Ok(Ok(Ok(created))) => created.upload_id().unwrap_or_default().to_string(),
                // Not created: nothing to abort.
                Ok(Ok(Err(_)) | Err(_)) => return,
                Err(_) => {
                    let location = self.location(key);
                    tracing::warn!(
                        location = %location,
                        "no answer within {}s to the request creating a multipart upload of {location}; if it was created, a bucket lifecycle rule removes it",
                        ABORT_TIMEOUT.as_secs_f64()
                    );
                    return;
                }
            },
        };
        self.abort(key, &id).await;
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
