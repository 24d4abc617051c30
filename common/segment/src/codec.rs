//! Column codecs: each encodes a whole column part and opens it again for reading with every
//! offset and length checked, so damaged bytes surface as errors rather than panics.

pub mod bitmaps;
pub mod dictionary;
pub mod ids;
pub mod numeric;
pub mod sketches;

use std::cell::RefCell;

thread_local! {
    /// One decompression context per thread: creating one costs more than decompressing a
    /// 4096-row block.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decompresses a zstd frame of at most `capacity` bytes.
pub(crate) fn unzstd(frame: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = match slot.as_mut() {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        d.decompress(frame, capacity)
    })
}
