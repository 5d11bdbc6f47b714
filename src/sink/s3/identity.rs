//! Telling our own write from another's. The SDK retries a request whose answer was
//! lost; when the first attempt landed, the retry finds the key taken. The object is
//! ours when it holds what we sent: its full-object CRC64NVME checksum says so whatever
//! the part size or encryption. Its ETag is the MD5 of what was sent only for a
//! plaintext or SSE-S3 object, so the ETag is the fallback for stores that keep no
//! checksums.

use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_s3::types::ChecksumMode;
use aws_smithy_checksums::http::HttpChecksum;
use aws_smithy_checksums::ChecksumAlgorithm;
use md5::{Digest, Md5};

use super::S3Sink;
use crate::sink::{Sink, SinkError};

/// Digests of an object as its parts are sent.
pub(super) struct Fingerprint {
    full: Box<dyn HttpChecksum>,
    md5s: Vec<[u8; 16]>,
}

/// What identifies an object we sent.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sent {
    /// The full-object CRC64NVME, base64, as S3 returns it.
    pub crc64nvme: String,
    /// The ETag S3 gives a plaintext object uploaded in these parts, without quotes.
    pub etag: String,
}

impl Fingerprint {
    pub fn new() -> Fingerprint {
        Fingerprint {
            full: ChecksumAlgorithm::Crc64Nvme.into_impl(),
            md5s: Vec::new(),
        }
    }

    /// Adds a part; returns the part's own CRC64NVME, base64, for its request.
    pub fn add_part(&mut self, bytes: &[u8]) -> String {
        self.full.update(bytes);
        self.md5s.push(Md5::digest(bytes).into());
        let mut part = ChecksumAlgorithm::Crc64Nvme.into_impl();
        part.update(bytes);
        base64_of(part)
    }

    pub fn finish(self) -> Sent {
        Sent {
            crc64nvme: base64_of(self.full),
            etag: etag_of(&self.md5s),
        }
    }
}

fn base64_of(checksum: Box<dyn HttpChecksum>) -> String {
    checksum
        .header_value()
        .to_str()
        .expect("base64 is ASCII")
        .to_string()
}

/// The ETag S3 gives a plaintext object uploaded in parts with these MD5 digests: the
/// plain MD5 for a single PutObject, the MD5 of the digests and their count for a
/// multipart one.
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

/// How a taken key was (or will be) judged, said once per sink (a reload that opens a
/// new one says it again): whether the store keeps checksums is a property of the
/// store, learnt at the first write.
#[derive(Debug, Default)]
pub(super) struct IdentityLog(AtomicBool);

impl IdentityLog {
    pub fn note(&self, store: &str, checksums: bool) {
        if self.0.swap(true, Ordering::Relaxed) {
            return;
        }
        if checksums {
            tracing::info!(
                store,
                "{store} keeps CRC64NVME checksums: a write that finds its key taken is ours when the checksums match"
            );
        } else {
            tracing::warn!(
                store,
                "{store} returns no CRC64NVME checksums: a write that finds its key taken is judged by its ETag, which matches only for unencrypted and SSE-S3 objects"
            );
        }
    }
}

impl S3Sink {
    /// Whether `key` holds what was sent. Only a definite answer counts: an object that
    /// cannot be read now is an error, which the caller retries, not a conflict.
    pub(super) async fn holds(&self, key: &str, sent: &Sent) -> Result<bool, SinkError> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| self.remote("HeadObject", key, e))?;
        let ours = match head.checksum_crc64_nvme() {
            Some(theirs) => {
                self.identity.note(&self.location(""), true);
                theirs == sent.crc64nvme
            }
            None => {
                self.identity.note(&self.location(""), false);
                head.e_tag().map(|t| t.trim_matches('"')) == Some(sent.etag.as_str())
            }
        };
        if ours {
            let location = self.location(key);
            tracing::info!(
                location = %location,
                "{location} already holds exactly what was sent (a retried request found its first attempt, or an earlier start wrote it): the write stands"
            );
        }
        Ok(ours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_checksum_does_not_depend_on_the_parts() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = Fingerprint::new();
        let single = whole.add_part(&data);
        let whole = whole.finish();
        assert_eq!(single, whole.crc64nvme);
        let mut split = Fingerprint::new();
        for part in data.chunks(30_000) {
            split.add_part(part);
        }
        let split = split.finish();
        assert_eq!(split.crc64nvme, whole.crc64nvme);
        assert_ne!(split.etag, whole.etag);
        assert!(split.etag.ends_with("-4"), "{}", split.etag);
    }

    #[test]
    fn crc64nvme_is_the_published_check_value() {
        // CRC-64/NVME of "123456789" is 0xae8b14860a799888.
        let mut f = Fingerprint::new();
        f.add_part(b"123456789");
        let expected = [0xae, 0x8b, 0x14, 0x86, 0x0a, 0x79, 0x98, 0x88];
        let mut want = ChecksumAlgorithm::Crc64Nvme.into_impl();
        want.update(b"123456789");
        assert_eq!(&want.finalize()[..], &expected);
        assert_eq!(f.finish().crc64nvme, "rosUhgp5mIg=");
    }
}
