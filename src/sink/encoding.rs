//! How objects are compressed (`sink.compression`): a writer wrapped in gzip on the way
//! out, and the plain bytes back whichever way an object was written, told by its key.

use std::io::{self, Read, Write};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::BodyWriter;

/// Whether objects are gzipped (`sink.compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
}

/// Wraps `body` so that what it writes is compressed as `compression` says.
pub fn encode(compression: Compression, body: BodyWriter) -> BodyWriter {
    match compression {
        Compression::None => body,
        Compression::Gzip => Arc::new(move |out: &mut dyn Write| {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            body(&mut gz)?;
            gz.finish()?;
            Ok(())
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips() {
        let body = encode(
            Compression::Gzip,
            Arc::new(|w: &mut dyn Write| w.write_all(b"{\"a\":1}\n")),
        );
        let mut out = Vec::new();
        body(&mut out).unwrap();
        assert_ne!(out, b"{\"a\":1}\n");
        assert_eq!(decode("x.json.gz", out).unwrap(), b"{\"a\":1}\n");
    }
}
