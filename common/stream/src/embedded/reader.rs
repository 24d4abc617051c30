//! Reading a topic from chosen offsets: one cursor per partition over the durable part of its
//! file, round robin between partitions, waiting on the topic's append signal.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::partition::{HEADER, Partition, decode, frame_len};
use crate::{StreamError, StreamReader, StreamRecord};

pub(super) struct Cursor {
    pub(super) partition: u32,
    pub(super) part: Arc<Partition>,
    pub(super) file: File,
    pub(super) offset: u64,
    pub(super) position: u64,
}

pub(super) struct EmbeddedReader {
    pub(super) topic: String,
    pub(super) appended: watch::Receiver<u64>,
    pub(super) deleted: Arc<AtomicBool>,
    pub(super) cursors: Vec<Cursor>,
    pub(super) next_cursor: usize,
    pub(super) buf: Vec<u8>,
}

/// Bytes read from a partition file at once.
const READ_CHUNK: usize = 1 << 20;

impl Cursor {
    /// Reads up to `max` committed records into `out`.
    fn read(
        &mut self,
        max: usize,
        buf: &mut Vec<u8>,
        out: &mut Vec<StreamRecord>,
    ) -> Result<(), StreamError> {
        let (count, end) = self.part.snapshot();
        let mut taken = 0;
        while taken < max && self.offset < count && self.position < end {
            let want = ((end - self.position) as usize).min(READ_CHUNK.max(HEADER));
            buf.resize(want, 0);
            self.file
                .read_exact_at(buf, self.position)
                .map_err(|e| StreamError::io(&self.part.path, e))?;
            let mut pos = 0usize;
            let mut progressed = false;
            while taken < max && self.offset < count {
                let Some(len) = frame_len(&buf[pos..]) else {
                    break;
                };
                out.push(decode(
                    &buf[pos..pos + 4 + len],
                    self.partition,
                    self.offset,
                ));
                pos += 4 + len;
                self.offset += 1;
                taken += 1;
                progressed = true;
            }
            self.position += pos as u64;
            if !progressed {
                // One frame larger than the chunk: read exactly it.
                let mut len_buf = [0u8; 4];
                self.file
                    .read_exact_at(&mut len_buf, self.position)
                    .map_err(|e| StreamError::io(&self.part.path, e))?;
                let len = u32::from_le_bytes(len_buf) as usize;
                buf.resize(4 + len, 0);
                self.file
                    .read_exact_at(buf, self.position)
                    .map_err(|e| StreamError::io(&self.part.path, e))?;
                out.push(decode(buf, self.partition, self.offset));
                self.position += (4 + len) as u64;
                self.offset += 1;
                taken += 1;
            }
        }
        Ok(())
    }
}

impl EmbeddedReader {
    fn read_available(&mut self, max: usize) -> Result<Vec<StreamRecord>, StreamError> {
        let mut out = Vec::new();
        let n = self.cursors.len();
        for i in 0..n {
            if out.len() >= max {
                break;
            }
            // Start from a different partition each time, so none starves.
            let c = (self.next_cursor + i) % n;
            let room = max - out.len();
            self.cursors[c].read(room, &mut self.buf, &mut out)?;
        }
        if n > 0 {
            self.next_cursor = (self.next_cursor + 1) % n;
        }
        if self.buf.capacity() > 4 * READ_CHUNK {
            self.buf = Vec::new();
        }
        Ok(out)
    }
}

#[async_trait]
impl StreamReader for EmbeddedReader {
    async fn poll(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<StreamRecord>, StreamError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.appended.borrow_and_update();
            // Reads hit the page cache of a file this process just wrote.
            let batch = self.read_available(max.max(1))?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            if self.deleted.load(Ordering::SeqCst) {
                // Every record was read and the topic is gone.
                return Err(StreamError::UnknownTopic(self.topic.clone()));
            }
            match tokio::time::timeout_at(deadline, self.appended.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => return Ok(Vec::new()),
            }
        }
    }
}
