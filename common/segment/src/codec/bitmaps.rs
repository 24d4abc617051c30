//! One roaring bitmap per dictionary id: the inverted index of a dimension.
//!
//! Layout: `u32 count`, `u32 reserved`, `count + 1` `u64` offsets into the data area, then the
//! bitmaps in the portable roaring format.

use std::borrow::Cow;

use bytes::Bytes;
use roaring::RoaringBitmap;

const HEADER: usize = 8;

pub fn encode(bitmaps: &[RoaringBitmap]) -> Vec<u8> {
    let mut offsets = Vec::with_capacity(bitmaps.len() + 1);
    let mut data = Vec::new();
    for bm in bitmaps {
        offsets.push(data.len() as u64);
        // Writing into a Vec cannot fail.
        let _ = bm.serialize_into(&mut data);
    }
    offsets.push(data.len() as u64);
    let mut out = Vec::with_capacity(HEADER + offsets.len() * 8 + data.len());
    out.extend_from_slice(&(bitmaps.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&data);
    out
}

#[derive(Debug, Clone)]
pub struct BitmapIndex {
    data: Bytes,
    count: usize,
}

fn u64_at(d: &[u8], pos: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[pos..pos + 8]);
    u64::from_le_bytes(b)
}

impl BitmapIndex {
    pub fn open(data: Bytes, expected_count: usize) -> Result<Self, String> {
        if data.len() < HEADER {
            return Err("bitmap part is shorter than its header".into());
        }
        let count = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if count != expected_count {
            return Err(format!(
                "bitmap part has {count} bitmaps, the dictionary has {expected_count} ids"
            ));
        }
        let data_start = HEADER + (count + 1) * 8;
        if data.len() < data_start {
            return Err("bitmap offsets are truncated".into());
        }
        let area = (data.len() - data_start) as u64;
        let mut prev = 0;
        for i in 0..=count {
            let o = u64_at(&data, HEADER + i * 8);
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

    pub fn get(&self, id: usize) -> Result<Cow<'static, RoaringBitmap>, String> {
        if id >= self.count {
            return Err(format!("bitmap {id} out of range ({})", self.count));
        }
        let data_start = HEADER + (self.count + 1) * 8;
        let a = u64_at(&self.data, HEADER + id * 8) as usize;
        let b = u64_at(&self.data, HEADER + (id + 1) * 8) as usize;
        RoaringBitmap::deserialize_from(&self.data[data_start + a..data_start + b])
            .map(Cow::Owned)
            .map_err(|e| format!("bitmap {id} does not decode: {e}"))
    }

    /// Serialized size of bitmap `id` (a cheap proxy for its cardinality).
    pub fn byte_len(&self, id: usize) -> usize {
        if id >= self.count {
            return 0;
        }
        (u64_at(&self.data, HEADER + (id + 1) * 8) - u64_at(&self.data, HEADER + id * 8)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bms: Vec<RoaringBitmap> = (0..5u32)
            .map(|i| (0..1000u32).filter(|r| r % (i + 1) == 0).collect())
            .collect();
        let idx = BitmapIndex::open(Bytes::from(encode(&bms)), 5).unwrap();
        for (i, bm) in bms.iter().enumerate() {
            assert_eq!(idx.get(i).unwrap().as_ref(), bm);
        }
        assert!(idx.get(5).is_err());
        assert!(BitmapIndex::open(Bytes::from(encode(&bms)), 4).is_err());
    }
}
