//! Per-thread block buffers for decoders, so decoding a block neither allocates nor clears
//! a fresh buffer each time (clearing 32 KiB per block was a tenth of a sum's time).

use std::cell::RefCell;

use crate::BLOCK_ROWS;

thread_local! {
    static WORDS: RefCell<Vec<u64>> = RefCell::new(vec![0; BLOCK_ROWS]);
    static IDS: RefCell<Vec<u32>> = RefCell::new(vec![0; BLOCK_ROWS]);
}

/// Runs `f` with a block-sized `u64` buffer of this thread (contents unspecified). A nested
/// call gets a fresh buffer.
pub fn with_words<R>(f: impl FnOnce(&mut [u64]) -> R) -> R {
    WORDS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut vec![0; BLOCK_ROWS]),
    })
}

/// Runs `f` with a block-sized `u32` buffer of this thread (contents unspecified).
pub fn with_ids<R>(f: impl FnOnce(&mut [u32]) -> R) -> R {
    IDS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut vec![0; BLOCK_ROWS]),
    })
}
