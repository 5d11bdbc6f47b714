//! Cutting a streamed body into multipart parts: the body writer, on a blocking
//! thread, fills a part and hands it over a channel to the uploader.

use tokio::sync::mpsc;

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
