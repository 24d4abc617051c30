//! One bitmap per dictionary id: the inverted index of a dimension.
//!
//! Layout: `u32 count`, `u32 reserved`, `count + 1` `u32` offsets into the data area, then the
//! entries. An entry is a tag byte and its body: tag 0, a roaring bitmap in the portable format;
//! tag 1, a short sorted row list as `varint n` then `n` delta varints. High-cardinality
//! columns (URLs, user ids) have many values that occur on a handful of rows; a roaring bitmap
//! spends about 20 bytes of headers on each, a row list a few bytes.

use std::borrow::Cow;

use bytes::Bytes;
use roaring::RoaringBitmap;

use crate::hll::{read_varint, write_varint};

const HEADER: usize = 8;
const TAG_ROARING: u8 = 0;
const TAG_LIST: u8 = 1;
/// Bitmaps with at most this many rows are stored as row lists.
const LIST_MAX: u64 = 24;
const SERIAL_COOKIE_NO_RUNCONTAINER: u32 = 12346;
const SERIAL_COOKIE: u32 = 12347;

pub fn encode(bitmaps: &[RoaringBitmap]) -> Result<Vec<u8>, String> {
    let mut offsets: Vec<u32> = Vec::with_capacity(bitmaps.len() + 1);
    let mut data = Vec::new();
    for bm in bitmaps {
        offsets.push(
            u32::try_from(data.len())
                .map_err(|_| "bitmap index is larger than 4 GiB".to_string())?,
        );
        if bm.len() <= LIST_MAX {
            data.push(TAG_LIST);
            write_varint(&mut data, bm.len());
            let mut prev = 0u32;
            for r in bm {
                write_varint(&mut data, u64::from(r - prev));
                prev = r;
            }
        } else {
            data.push(TAG_ROARING);
            let mut bm = bm.clone();
            bm.optimize();
            // Writing into a Vec cannot fail.
            let _ = bm.serialize_into(&mut data);
        }
    }
    offsets.push(
        u32::try_from(data.len()).map_err(|_| "bitmap index is larger than 4 GiB".to_string())?,
    );
    let mut out = Vec::with_capacity(HEADER + offsets.len() * 4 + data.len());
    out.extend_from_slice(&(bitmaps.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&data);
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct BitmapIndex {
    data: Bytes,
    count: usize,
}

fn u32_at(d: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes([d[pos], d[pos + 1], d[pos + 2], d[pos + 3]])
}

impl BitmapIndex {
    pub fn open(data: Bytes, expected_count: usize) -> Result<Self, String> {
        if data.len() < HEADER {
            return Err("bitmap part is shorter than its header".into());
        }
        let count = u32_at(&data, 0) as usize;
        if count != expected_count {
            return Err(format!(
                "bitmap part has {count} bitmaps, the dictionary has {expected_count} ids"
            ));
        }
        let data_start = HEADER + (count + 1) * 4;
        if data.len() < data_start {
            return Err("bitmap offsets are truncated".into());
        }
        let area = (data.len() - data_start) as u32;
        let mut prev = 0;
        for i in 0..=count {
            let o = u32_at(&data, HEADER + i * 4);
            if o < prev || o > area {
                return Err(format!("bitmap offset {i} is out of range"));
            }
            prev = o;
        }
        Ok(BitmapIndex { data, count })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn entry(&self, id: usize) -> Result<&[u8], String> {
        if id >= self.count {
            return Err(format!("bitmap {id} out of range ({})", self.count));
        }
        let data_start = HEADER + (self.count + 1) * 4;
        let a = data_start + u32_at(&self.data, HEADER + id * 4) as usize;
        let b = data_start + u32_at(&self.data, HEADER + (id + 1) * 4) as usize;
        let bytes = &self.data[a..b];
        if bytes.is_empty() {
            return Err(format!("bitmap {id} is empty"));
        }
        Ok(bytes)
    }

    pub fn get(&self, id: usize) -> Result<Cow<'static, RoaringBitmap>, String> {
        let bytes = self.entry(id)?;
        match bytes[0] {
            TAG_ROARING => RoaringBitmap::deserialize_from(&bytes[1..])
                .map(Cow::Owned)
                .map_err(|e| format!("bitmap {id} does not decode: {e}")),
            TAG_LIST => {
                let mut pos = 1;
                let bad = || format!("bitmap {id} row list is damaged");
                let n = read_varint(bytes, &mut pos).ok_or_else(bad)?;
                if n > LIST_MAX {
                    return Err(bad());
                }
                let mut rows = Vec::with_capacity(n as usize);
                let mut row = 0u64;
                for i in 0..n {
                    let d = read_varint(bytes, &mut pos).ok_or_else(bad)?;
                    if i > 0 && d == 0 {
                        return Err(bad());
                    }
                    row += d;
                    rows.push(u32::try_from(row).map_err(|_| bad())?);
                }
                RoaringBitmap::from_sorted_iter(rows)
                    .map(Cow::Owned)
                    .map_err(|_| bad())
            }
            other => Err(format!("bitmap {id} has unknown encoding {other}")),
        }
    }

    /// Number of rows in bitmap `id`, from headers only.
    pub fn cardinality(&self, id: usize) -> Result<u64, String> {
        let bytes = self.entry(id)?;
        let bad = || format!("bitmap {id} has a damaged header");
        match bytes[0] {
            TAG_LIST => {
                let mut pos = 1;
                read_varint(bytes, &mut pos).ok_or_else(bad)
            }
            TAG_ROARING => {
                let body = &bytes[1..];
                let u16_at =
                    |p: usize| body.get(p..p + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
                let cookie = body
                    .get(0..4)
                    .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
                    .ok_or_else(bad)?;
                let (containers, header) = if cookie & 0xffff == SERIAL_COOKIE {
                    let n = (cookie >> 16) as usize + 1;
                    (n, 4 + n.div_ceil(8))
                } else if cookie == SERIAL_COOKIE_NO_RUNCONTAINER {
                    let n = body
                        .get(4..8)
                        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
                        .ok_or_else(bad)? as usize;
                    (n, 8)
                } else {
                    return Err(bad());
                };
                let mut total = 0u64;
                for c in 0..containers {
                    total += u64::from(u16_at(header + c * 4 + 2).ok_or_else(bad)?) + 1;
                }
                Ok(total)
            }
            other => Err(format!("bitmap {id} has unknown encoding {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_small_and_large() {
        let mut bms: Vec<RoaringBitmap> = (0..5u32)
            .map(|i| (0..1000u32).filter(|r| r % (i + 1) == 0).collect())
            .collect();
        bms.push(RoaringBitmap::new());
        bms.push([7u32].into_iter().collect());
        bms.push([0u32, 3, 70_000, 4_000_000].into_iter().collect());
        let mut runs = RoaringBitmap::new();
        runs.insert_range(10..200_000);
        bms.push(runs);
        let idx = BitmapIndex::open(Bytes::from(encode(&bms).unwrap()), bms.len()).unwrap();
        for (i, bm) in bms.iter().enumerate() {
            assert_eq!(idx.get(i).unwrap().as_ref(), bm, "bitmap {i}");
            assert_eq!(idx.cardinality(i).unwrap(), bm.len(), "cardinality {i}");
        }
        assert!(idx.get(bms.len()).is_err());
        assert!(BitmapIndex::open(Bytes::from(encode(&bms).unwrap()), 4).is_err());
    }
}
