//! Cutting a streamed body into multipart parts: the body writer, on a blocking
//! thread, fills a part and hands it over a channel to the uploader. A small body is
//! written whole where it is asked for instead ([`small_body`]).

use std::io;

use tokio::sync::mpsc;

use crate::model::catch_panic;
use crate::sink::BodyWriter;

/// Bodies up to this size are written on the task that uploads them, for one
/// PutObject: a trial's objects are a few tens of KiB, and handing each to a blocking
/// thread wakes that thread and then the task, on a busy machine by an interrupt on
/// another core (with the local sink, such hand-offs cost a daemon on 2 cores more than
/// the writes themselves). A larger body is started over on a blocking thread, so at
/// most this much is written twice.
pub(super) const SMALL_BODY: usize = 256 * 1024;

/// What `body` writes, when that is at most `limit` bytes; `None` when it is more.
/// A panic in the body is its error.
pub(super) fn small_body(body: &BodyWriter, limit: usize) -> io::Result<Option<Vec<u8>>> {
    let mut out = Bounded {
        buf: Vec::new(),
        limit,
        over: false,
    };
    let written = catch_panic(|| body(&mut out)).unwrap_or_else(|m| Err(io::Error::other(m)));
    match written {
        Ok(()) => Ok(Some(out.buf)),
        // The body may wrap the error (a compressor), so the writer remembers.
        Err(_) if out.over => Ok(None),
        Err(e) => Err(e),
    }
}

/// A buffer that refuses to grow past `limit`.
struct Bounded {
    buf: Vec<u8>,
    limit: usize,
    over: bool,
}

impl io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.over = true;
            return Err(io::Error::other("past the size written in place"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One filled part, or the tail of the object once the writer has finished.
pub(super) struct Chunk {
    pub bytes: Vec<u8>,
    pub last: bool,
}

/// Cuts what the body writes into parts and hands them to the uploader.
pub(super) struct PartWriter {
    buf: Vec<u8>,
    part_size: usize,
    tx: mpsc::Sender<Chunk>,
}

impl PartWriter {
    pub fn new(part_size: usize, tx: mpsc::Sender<Chunk>) -> PartWriter {
        // The buffer grows with what is written: a small object never takes a whole
        // part's memory.
        PartWriter {
            buf: Vec::new(),
            part_size,
            tx,
        }
    }

    pub fn send(&mut self, last: bool) -> std::io::Result<()> {
        let bytes = std::mem::take(&mut self.buf);
        self.tx
            .blocking_send(Chunk { bytes, last })
            .map_err(|_| std::io::Error::other("the upload stopped"))
    }
}

impl std::io::Write for PartWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.part_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.part_size {
            self.send(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
