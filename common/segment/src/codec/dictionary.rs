//! Sorted string dictionaries, front-coded in buckets of [`BUCKET`] values.
//!
//! Layout: `u32 count`, `u32 bucket_size`, `u32 num_buckets`, `u32 reserved`, then
//! `num_buckets + 1` `u32` offsets (relative to the data area), then the buckets. In a bucket the
//! first value is `varint len, bytes`; each next value is `varint shared_prefix, varint
//! suffix_len, suffix bytes`. Sorted URLs share long prefixes, so this is several times smaller
//! than plain strings, and any value decodes by reading at most one bucket.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::hll::{read_varint, write_varint};

pub const BUCKET: usize = 16;
const HEADER: usize = 16;

/// Encodes `values`, which must be sorted and distinct.
pub fn encode<'a>(values: impl ExactSizeIterator<Item = &'a str>) -> Vec<u8> {
    let count = values.len();
    let num_buckets = count.div_ceil(BUCKET);
    let mut offsets: Vec<u32> = Vec::with_capacity(num_buckets + 1);
    let mut data: Vec<u8> = Vec::new();
    let mut prev: &str = "";
    for (i, v) in values.enumerate() {
        if i % BUCKET == 0 {
            offsets.push(data.len() as u32);
            write_varint(&mut data, v.len() as u64);
            data.extend_from_slice(v.as_bytes());
        } else {
            let shared = common_prefix(prev.as_bytes(), v.as_bytes());
            write_varint(&mut data, shared as u64);
            write_varint(&mut data, (v.len() - shared) as u64);
            data.extend_from_slice(&v.as_bytes()[shared..]);
        }
        prev = v;
    }
    offsets.push(data.len() as u32);
    let mut out = Vec::with_capacity(HEADER + offsets.len() * 4 + data.len());
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out.extend_from_slice(&(BUCKET as u32).to_le_bytes());
    out.extend_from_slice(&(num_buckets as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&data);
    out
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Read side. All structure is checked in `open`; decoding a bucket re-checks its bytes.
#[derive(Debug, Clone)]
pub struct FrontCodedDict {
    data: Bytes,
    count: usize,
    bucket_size: usize,
    num_buckets: usize,
    data_start: usize,
}

fn u32_at(d: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes([d[pos], d[pos + 1], d[pos + 2], d[pos + 3]])
}

impl FrontCodedDict {
    pub fn open(data: Bytes) -> Result<Self, String> {
        if data.len() < HEADER {
            return Err("dictionary part is shorter than its header".into());
        }
        let count = u32_at(&data, 0) as usize;
        let bucket_size = u32_at(&data, 4) as usize;
        let num_buckets = u32_at(&data, 8) as usize;
        if bucket_size == 0 || num_buckets != count.div_ceil(bucket_size) {
            return Err(format!(
                "dictionary header is inconsistent: {count} values in {num_buckets} buckets of {bucket_size}"
            ));
        }
        let data_start = HEADER + (num_buckets + 1) * 4;
        if data.len() < data_start {
            return Err("dictionary offsets are truncated".into());
        }
        let d = FrontCodedDict {
            data,
            count,
            bucket_size,
            num_buckets,
            data_start,
        };
        let area = d.data.len() - data_start;
        let mut prev = 0;
        for i in 0..=num_buckets {
            let o = d.offset(i);
            if o < prev || o > area {
                return Err(format!("dictionary bucket offset {i} is out of range"));
            }
            prev = o;
        }
        Ok(d)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn offset(&self, bucket: usize) -> usize {
        u32_at(&self.data, HEADER + bucket * 4) as usize
    }

    /// Decodes bucket `bucket`, calling `f(index, value)` for each value until it returns false.
    fn scan_bucket(
        &self,
        bucket: usize,
        f: &mut dyn FnMut(usize, &str) -> bool,
    ) -> Result<(), String> {
        let start = self.data_start + self.offset(bucket);
        let end = self.data_start + self.offset(bucket + 1);
        let bytes = &self.data[start..end];
        let first_index = bucket * self.bucket_size;
        let n = (self.count - first_index).min(self.bucket_size);
        let mut pos = 0;
        let mut current: Vec<u8> = Vec::with_capacity(64);
        let bad = || format!("dictionary bucket {bucket} is damaged");
        for k in 0..n {
            if k == 0 {
                let len = read_varint(bytes, &mut pos).ok_or_else(bad)? as usize;
                current.extend_from_slice(bytes.get(pos..pos + len).ok_or_else(bad)?);
                pos += len;
            } else {
                let shared = read_varint(bytes, &mut pos).ok_or_else(bad)? as usize;
                let len = read_varint(bytes, &mut pos).ok_or_else(bad)? as usize;
                if shared > current.len() {
                    return Err(bad());
                }
                current.truncate(shared);
                current.extend_from_slice(bytes.get(pos..pos + len).ok_or_else(bad)?);
                pos += len;
            }
            let s = std::str::from_utf8(&current).map_err(|_| bad())?;
            if !f(first_index + k, s) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The value at `index` (0-based).
    pub fn get(&self, index: usize) -> Result<String, String> {
        if index >= self.count {
            return Err(format!(
                "dictionary index {index} out of range ({})",
                self.count
            ));
        }
        let mut out = String::new();
        self.scan_bucket(index / self.bucket_size, &mut |i, s| {
            if i == index {
                out.push_str(s);
                false
            } else {
                true
            }
        })?;
        Ok(out)
    }

    /// Calls `f(index, value)` for every value in order.
    pub fn for_each(&self, f: &mut dyn FnMut(usize, &str)) -> Result<(), String> {
        for b in 0..self.num_buckets {
            self.scan_bucket(b, &mut |i, s| {
                f(i, s);
                true
            })?;
        }
        Ok(())
    }

    fn first_of_bucket(&self, bucket: usize) -> Result<String, String> {
        self.get(bucket * self.bucket_size)
    }

    /// `Ok(index)` when found, `Err(insertion point)` otherwise, like `slice::binary_search`.
    pub fn search(&self, value: &str) -> Result<Result<usize, usize>, String> {
        if self.count == 0 {
            return Ok(Err(0));
        }
        // Last bucket whose first value <= value.
        let (mut lo, mut hi) = (0usize, self.num_buckets);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.first_of_bucket(mid)?.as_str().cmp(value) {
                Ordering::Greater => hi = mid,
                _ => lo = mid + 1,
            }
        }
        if lo == 0 {
            return Ok(Err(0));
        }
        let bucket = lo - 1;
        let end = ((bucket + 1) * self.bucket_size).min(self.count);
        let mut result = Err(end);
        self.scan_bucket(bucket, &mut |i, s| match s.cmp(value) {
            Ordering::Less => true,
            Ordering::Equal => {
                result = Ok(i);
                false
            }
            Ordering::Greater => {
                result = Err(i);
                false
            }
        })?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip_and_search(mut values in proptest::collection::vec("[a-c]{0,6}|http://x\\.ru/[a-z]{0,8}", 0..200), probes in proptest::collection::vec("[a-c]{0,6}", 0..20)) {
            values.sort();
            values.dedup();
            let part = encode(values.iter().map(String::as_str));
            let dict = FrontCodedDict::open(Bytes::from(part)).unwrap();
            prop_assert_eq!(dict.len(), values.len());
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(&dict.get(i).unwrap(), v);
            }
            let mut seen = Vec::new();
            dict.for_each(&mut |_, s| seen.push(s.to_string())).unwrap();
            prop_assert_eq!(&seen, &values);
            for p in probes.iter().chain(values.iter()) {
                prop_assert_eq!(dict.search(p).unwrap(), values.binary_search(p));
            }
        }
    }

    #[test]
    fn damaged_bytes_are_errors() {
        let values: Vec<String> = (0..100).map(|i| format!("value-{i:03}")).collect();
        let part = encode(values.iter().map(String::as_str));
        assert!(FrontCodedDict::open(Bytes::copy_from_slice(&part[..20])).is_err());
        let mut broken = part.clone();
        let last = broken.len() - 1;
        broken.truncate(last - 30);
        assert!(FrontCodedDict::open(Bytes::from(broken)).is_err());
    }
}
