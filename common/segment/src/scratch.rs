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

/// An empty vector reusing `v`'s buffer for elements of another type (in practice the same
/// type with another lifetime, such as the values of the next row: the standard library then
/// collects in place, so no allocation is made).
pub fn recycle<A, B>(mut v: Vec<A>) -> Vec<B> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    use super::recycle;

    #[test]
    fn recycling_empties_the_vector_and_keeps_its_buffer() {
        let text = String::from("a row's value");
        let mut v: Vec<&str> = Vec::with_capacity(16);
        v.extend(text.split(' '));
        let ptr = v.as_ptr() as usize;
        let next: Vec<&'static str> = recycle(v);
        assert!(next.is_empty());
        assert_eq!(next.capacity(), 16);
        assert_eq!(next.as_ptr() as usize, ptr);
    }
}
