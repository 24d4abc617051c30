//! Sorted string dictionaries in zstd-compressed pages.
//!
//! Layout: `u32 count`, `u32 page_values`, `u32 num_pages`, `u32 reserved`, then per page
//! `u64 offset, u32 compressed_len, u32 raw_len` (offsets relative to the data area), then the
//! pages. A raw page is its values as `varint len, bytes`.
//!
//! Strings dominate clickstream segments (URLs, titles, referrers), and zstd shrinks them
//! several times; sorted neighbours compress even better. A dictionary is decoded once, on
//! first use, into one buffer with offsets, and stays decoded for the life of the segment:
//! lookups by id or by value are then plain slice accesses.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::hll::{read_varint, write_varint};

pub const PAGE_VALUES: usize = 4096;
const HEADER: usize = 16;
const ENTRY: usize = 16;
const ZSTD_LEVEL: i32 = 3;

/// Encodes `values`, which must be sorted and distinct.
pub fn encode<'a>(values: impl ExactSizeIterator<Item = &'a str>) -> Vec<u8> {
    let count = values.len();
    let num_pages = count.div_ceil(PAGE_VALUES);
    let mut pages: Vec<(Vec<u8>, usize)> = Vec::with_capacity(num_pages);
    let mut raw = Vec::new();
    for (i, v) in values.enumerate() {
        write_varint(&mut raw, v.len() as u64);
        raw.extend_from_slice(v.as_bytes());
        if (i + 1) % PAGE_VALUES == 0 || i + 1 == count {
            let compressed = zstd::bulk::compress(&raw, ZSTD_LEVEL).unwrap_or_else(|_| raw.clone());
            pages.push((compressed, raw.len()));
            raw.clear();
        }
    }
    let mut out = Vec::with_capacity(
        HEADER + num_pages * ENTRY + pages.iter().map(|p| p.0.len()).sum::<usize>(),
    );
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out.extend_from_slice(&(PAGE_VALUES as u32).to_le_bytes());
    out.extend_from_slice(&(num_pages as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut offset = 0u64;
    for (p, raw_len) in &pages {
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&(*raw_len as u32).to_le_bytes());
        offset += p.len() as u64;
    }
    for (p, _) in &pages {
        out.extend_from_slice(p);
    }
    out
}

/// Every value in one buffer, with `offsets[i]..offsets[i + 1]` holding value `i`.
#[derive(Debug)]
struct Decoded {
    offsets: Vec<u32>,
    bytes: String,
}

#[derive(Debug)]
pub struct StringDict {
    data: Bytes,
    count: usize,
    page_values: usize,
    num_pages: usize,
    decoded: OnceLock<Result<Decoded, String>>,
}

fn u32_at(d: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes([d[pos], d[pos + 1], d[pos + 2], d[pos + 3]])
}

impl StringDict {
    /// Checks the layout; pages decode on first use.
    pub fn open(data: Bytes) -> Result<Self, String> {
        if data.len() < HEADER {
            return Err("dictionary part is shorter than its header".into());
        }
        let count = u32_at(&data, 0) as usize;
        let page_values = u32_at(&data, 4) as usize;
        let num_pages = u32_at(&data, 8) as usize;
        if page_values == 0 || num_pages != count.div_ceil(page_values) {
            return Err(format!(
                "dictionary header is inconsistent: {count} values in {num_pages} pages of {page_values}"
            ));
        }
        let data_start = HEADER + num_pages * ENTRY;
        if data.len() < data_start {
            return Err("dictionary page table is truncated".into());
        }
        let dict = StringDict {
            data,
            count,
            page_values,
            num_pages,
            decoded: OnceLock::new(),
        };
        for p in 0..num_pages {
            let (offset, len, _) = dict.page(p);
            if data_start + offset + len > dict.data.len() {
                return Err(format!("dictionary page {p} runs past the end of its part"));
            }
        }
        Ok(dict)
    }

    fn page(&self, p: usize) -> (usize, usize, usize) {
        let e = HEADER + p * ENTRY;
        let mut off = [0u8; 8];
        off.copy_from_slice(&self.data[e..e + 8]);
        (
            u64::from_le_bytes(off) as usize,
            u32_at(&self.data, e + 8) as usize,
            u32_at(&self.data, e + 12) as usize,
        )
    }

    fn decode(&self) -> Result<Decoded, String> {
        let data_start = HEADER + self.num_pages * ENTRY;
        let raw_total: usize = (0..self.num_pages).map(|p| self.page(p).2).sum();
        let mut offsets = Vec::with_capacity(self.count + 1);
        let mut bytes: Vec<u8> = Vec::with_capacity(raw_total);
        offsets.push(0u32);
        for p in 0..self.num_pages {
            let (offset, len, raw_len) = self.page(p);
            let start = data_start + offset;
            let raw = crate::codec::unzstd(&self.data[start..start + len], raw_len)
                .map_err(|e| format!("dictionary page {p} does not decompress: {e}"))?;
            let expected = (self.count - p * self.page_values).min(self.page_values);
            let mut pos = 0;
            for _ in 0..expected {
                let n = read_varint(&raw, &mut pos)
                    .ok_or_else(|| format!("dictionary page {p} is truncated"))?
                    as usize;
                let value = raw
                    .get(pos..pos + n)
                    .ok_or_else(|| format!("dictionary page {p} is truncated"))?;
                bytes.extend_from_slice(value);
                pos += n;
                offsets.push(
                    u32::try_from(bytes.len())
                        .map_err(|_| "dictionary is larger than 4 GiB".to_string())?,
                );
            }
        }
        let bytes =
            String::from_utf8(bytes).map_err(|_| "dictionary holds invalid UTF-8".to_string())?;
        if offsets
            .windows(2)
            .any(|w| bytes.get(w[0] as usize..w[1] as usize).is_none())
        {
            return Err("dictionary values are not whole UTF-8 strings".into());
        }
        Ok(Decoded { offsets, bytes })
    }

    fn decoded(&self) -> Result<&Decoded, String> {
        self.decoded
            .get_or_init(|| self.decode())
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The value at `index` (0-based).
    pub fn get(&self, index: usize) -> Result<&str, String> {
        let d = self.decoded()?;
        if index >= self.count {
            return Err(format!(
                "dictionary index {index} out of range ({})",
                self.count
            ));
        }
        Ok(&d.bytes[d.offsets[index] as usize..d.offsets[index + 1] as usize])
    }

    /// Calls `f(index, value)` for every value in order.
    pub fn for_each(&self, f: &mut dyn FnMut(usize, &str)) -> Result<(), String> {
        let d = self.decoded()?;
        for i in 0..self.count {
            f(
                i,
                &d.bytes[d.offsets[i] as usize..d.offsets[i + 1] as usize],
            );
        }
        Ok(())
    }

    /// `Ok(index)` when found, `Err(insertion point)` otherwise, like `slice::binary_search`.
    pub fn search(&self, value: &str) -> Result<Result<usize, usize>, String> {
        let d = self.decoded()?;
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let v = &d.bytes[d.offsets[mid] as usize..d.offsets[mid + 1] as usize];
            match v.cmp(value) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(lo))
    }

    /// Bytes held by the decoded form (0 until first use).
    pub fn decoded_bytes(&self) -> usize {
        self.decoded
            .get()
            .and_then(|d| d.as_ref().ok())
            .map_or(0, |d| d.bytes.len() + d.offsets.len() * 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        #[test]
        fn round_trip_and_search(mut values in proptest::collection::vec("[a-c]{0,6}|http://x\\.ru/[a-z]{0,8}|[абв]{1,4}", 0..9000), probes in proptest::collection::vec("[a-c]{0,6}", 0..20)) {
            values.sort();
            values.dedup();
            let part = encode(values.iter().map(String::as_str));
            let dict = StringDict::open(Bytes::from(part)).unwrap();
            prop_assert_eq!(dict.len(), values.len());
            for (i, v) in values.iter().enumerate().step_by(7) {
                prop_assert_eq!(dict.get(i).unwrap(), v.as_str());
            }
            let mut seen = Vec::new();
            dict.for_each(&mut |_, s| seen.push(s.to_string())).unwrap();
            prop_assert_eq!(&seen, &values);
            for p in probes.iter().chain(values.iter().step_by(11)) {
                prop_assert_eq!(dict.search(p).unwrap(), values.binary_search(p));
            }
        }
    }

    #[test]
    fn damaged_bytes_are_errors() {
        let values: Vec<String> = (0..10_000).map(|i| format!("value-{i:05}")).collect();
        let part = encode(values.iter().map(String::as_str));
        assert!(StringDict::open(Bytes::copy_from_slice(&part[..20])).is_err());
        let mut broken = part.clone();
        let n = broken.len();
        broken.truncate(n - 30);
        assert!(StringDict::open(Bytes::from(broken)).is_err());
        let mut flipped = part.clone();
        let last = flipped.len() - 10;
        flipped[last] ^= 0xff;
        let dict = StringDict::open(Bytes::from(flipped)).unwrap();
        assert!(
            dict.get(0).is_err() || dict.get(9_999).map(|v| v != "value-09999").unwrap_or(true)
        );
    }
}
