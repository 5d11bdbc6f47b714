//! A directory as a sink, with the same keys as S3.
//!
//! An object is written to a hidden `.<name>.partial-…` file beside its final name,
//! synced, then hard-linked to the final name: `link(2)` fails when the name exists,
//! which gives create-once atomically, and readers never see a partial file under a
//! `*.json` name. The one object that is replaced (the report) is renamed over the old
//! one instead. A write runs on the asking task while the sink's writes are quick
//! ([`write_times`]), on a blocking thread otherwise.

mod write_times;

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;

use super::{BodyWriter, CountingWriter, Deadline, Sink, SinkError, Written};
use crate::model::catch_panic;
use write_times::WriteTimes;

#[derive(Debug, Clone)]
pub struct LocalSink {
    root: PathBuf,
    /// Shared by the clones, which write to the same file system.
    times: Arc<WriteTimes>,
}

impl LocalSink {
    pub fn new(root: PathBuf) -> LocalSink {
        LocalSink {
            root,
            times: Arc::new(WriteTimes::new()),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Runs `write` (given the path and location of `key`), timed: here while this
    /// sink's writes are quick, else on a blocking thread.
    async fn write(
        &self,
        key: &str,
        deadline: &Deadline,
        write: impl FnOnce(&Path, &str) -> Result<Written, SinkError> + Send + 'static,
    ) -> Result<Written, SinkError> {
        // Local writes do not hang the way a network call can, and a blocking write
        // cannot be interrupted, so only a cancellation before the start is honoured.
        let (path, location) = (self.path(key), self.location(key));
        if deadline.cancel.is_cancelled() {
            return Err(SinkError::Cancelled {
                op: "writing",
                location,
            });
        }
        let times = self.times.clone();
        let timed = move || {
            let started = Instant::now();
            let written = catch_panic(|| write(&path, &location));
            times.record(started.elapsed());
            written
        };
        let written = if self.times.quick() {
            timed()
        } else {
            tokio::task::spawn_blocking(timed)
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        };
        written.unwrap_or_else(|message| {
            Err(SinkError::Io {
                op: "writing",
                location: self.location(key),
                source: io::Error::other(message),
            })
        })
    }
}

#[async_trait]
impl Sink for LocalSink {
    async fn create(
        &self,
        key: &str,
        body: BodyWriter,
        deadline: &Deadline,
    ) -> Result<Written, SinkError> {
        self.write(key, deadline, move |path, location| {
            create_once(path, body, location)
        })
        .await
    }

    async fn replace(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _content_type: &'static str,
        deadline: &Deadline,
    ) -> Result<Written, SinkError> {
        self.write(key, deadline, move |path, location| {
            replace_file(path, bytes, location)
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        match tokio::fs::read(self.path(key)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SinkError::Io {
                op: "reading",
                location: self.location(key),
                source,
            }),
        }
    }

    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>, SinkError> {
        let dir = self.path(prefix);
        let location = self.location(prefix);
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(source) => {
                    return Err(SinkError::Io {
                        op: "listing",
                        location,
                        source,
                    })
                }
            };
            let mut folders = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|source| SinkError::Io {
                    op: "listing",
                    location: location.clone(),
                    source,
                })?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && entry.path().is_dir() {
                    folders.push(format!("{prefix}{name}/"));
                }
            }
            folders.sort();
            Ok(folders)
        })
        .await
        .expect("listing does not panic")
    }

    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(SinkError::Io {
                op: "deleting",
                location: self.location(key),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, SinkError> {
        let root = self.root.clone();
        let start = self.path(prefix);
        let location = self.location(prefix);
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            // Hidden names are partial files, never complete objects.
            let mut visible = |path: PathBuf, name: &str| {
                if !name.starts_with('.') {
                    let rel = path.strip_prefix(&root).expect("the walk stays under root");
                    keys.push(rel.to_string_lossy().into_owned());
                }
            };
            walk_files(&start, &mut visible).map_err(|source| SinkError::Io {
                op: "listing",
                location,
                source,
            })?;
            keys.sort();
            Ok(keys)
        })
        .await
        .expect("listing does not panic")
    }

    async fn clean_stale(&self, age: Duration) -> Result<usize, SinkError> {
        let root = self.root.clone();
        let location = self.location("");
        tokio::task::spawn_blocking(move || {
            let mut partials = Vec::new();
            let mut partial = |path: PathBuf, name: &str| {
                if is_partial(name) {
                    partials.push(path);
                }
            };
            walk_files(&root, &mut partial).map_err(|source| SinkError::Io {
                op: "cleaning",
                location,
                source,
            })?;
            let mut removed = 0;
            for path in partials {
                let old = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|e| e > age));
                if old && fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
        .expect("cleaning does not panic")
    }

    fn location(&self, key: &str) -> String {
        let root = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        format!("file://{}", root.join(key).display())
    }
}

fn create_once(path: &Path, body: BodyWriter, location: &str) -> Result<Written, SinkError> {
    let io_err = |op, source| SinkError::Io {
        op,
        location: location.to_string(),
        source,
    };
    let dir = path.parent().expect("keys have a directory");
    fs::create_dir_all(dir).map_err(|e| io_err("creating the directory of", e))?;
    let partial = partial_name(path);
    let result =
        write_partial(&partial, body).and_then(|bytes| match fs::hard_link(&partial, path) {
            Ok(()) => Ok(Some(bytes)),
            // A retry of a write that landed finds its own object: the same bytes
            // under the name are a success, anything else a conflict.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                same_content(&partial, path).map(|same| same.then_some(bytes))
            }
            Err(e) => Err(e),
        });
    // The partial file goes whatever happened; on success the final name keeps the data.
    let _ = fs::remove_file(&partial);
    match result {
        Ok(Some(bytes)) => {
            // Make the new directory entry durable, not just the file's data.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err("syncing the directory of", e))?;
            Ok(Written {
                location: location.to_string(),
                bytes,
            })
        }
        Ok(None) => Err(SinkError::Exists {
            location: location.to_string(),
        }),
        Err(e) => Err(io_err("writing", e)),
    }
}

/// Writes `path` whole through a synced partial file renamed over it.
fn replace_file(path: &Path, bytes: Vec<u8>, location: &str) -> Result<Written, SinkError> {
    let io_err = |op, source| SinkError::Io {
        op,
        location: location.to_string(),
        source,
    };
    let dir = path.parent().expect("keys have a directory");
    fs::create_dir_all(dir).map_err(|e| io_err("creating the directory of", e))?;
    let partial = partial_name(path);
    let len = bytes.len() as u64;
    let body: BodyWriter = Arc::new(move |w: &mut dyn Write| w.write_all(&bytes));
    let written = write_partial(&partial, body).and_then(|_| fs::rename(&partial, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&partial);
        return Err(io_err("writing", e));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("syncing the directory of", e))?;
    Ok(Written {
        location: location.to_string(),
        bytes: len,
    })
}

/// A partial file's name beside `path`: hidden, and unique to this write.
fn partial_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .expect("keys name a file")
        .to_string_lossy();
    path.with_file_name(format!(
        ".{name}.partial-{}-{:08x}",
        std::process::id(),
        rand::thread_rng().gen::<u32>()
    ))
}

/// Whether two files hold the same bytes.
fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut a, mut b) = (File::open(a)?, File::open(b)?);
    if a.metadata()?.len() != b.metadata()?.len() {
        return Ok(false);
    }
    let (mut buf_a, mut buf_b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = a.read(&mut buf_a)?;
        if n == 0 {
            return Ok(true);
        }
        b.read_exact(&mut buf_b[..n])?;
        if buf_a[..n] != buf_b[..n] {
            return Ok(false);
        }
    }
}

fn write_partial(partial: &Path, body: BodyWriter) -> io::Result<u64> {
    let file = File::create_new(partial)?;
    let mut out = CountingWriter {
        inner: BufWriter::new(file),
        count: 0,
    };
    body(&mut out)?;
    let file = out.inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(out.count)
}

/// Whether a file name is one of our partial files.
fn is_partial(name: &str) -> bool {
    name.starts_with('.') && name.contains(".partial-")
}

/// Calls `found` with the path and name of every file under `dir`, hidden ones
/// included; a missing `dir` has none.
fn walk_files(dir: &Path, found: &mut dyn FnMut(PathBuf, &str)) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            walk_files(&entry.path(), found)?;
        } else {
            found(entry.path(), &entry.file_name().to_string_lossy());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
