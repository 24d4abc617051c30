//! Dictionary ids per row, bit-packed at one width for the whole column, with each block's
//! smallest and largest id so sorted columns can skip blocks.
//!
//! Layout: `u32 num_values`, `u8 width`, 3 bytes reserved, `u32 num_blocks`, then
//! `num_blocks` pairs of `u32 min, u32 max`, then the packed ids (with tail padding).
//! Multi-value columns store one such part for all values plus a second one for the row
//! offsets (`num_rows + 1` cumulative counts).

use bytes::Bytes;

use crate::BLOCK_ROWS;
use crate::bitpack::{pack, unpack_u32, width_for};

const HEADER: usize = 12;

pub fn encode(ids: &[u32]) -> Vec<u8> {
    let max = ids.iter().copied().max().unwrap_or(0);
    let width = width_for(u64::from(max));
    let num_blocks = ids.len().div_ceil(BLOCK_ROWS);
    let mut out = Vec::with_capacity(HEADER + num_blocks * 8 + ids.len() * width as usize / 8 + 16);
    out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    out.extend_from_slice(&[width, 0, 0, 0]);
    out.extend_from_slice(&(num_blocks as u32).to_le_bytes());
    for chunk in ids.chunks(BLOCK_ROWS) {
        let lo = chunk.iter().copied().min().unwrap_or(0);
        let hi = chunk.iter().copied().max().unwrap_or(0);
        out.extend_from_slice(&lo.to_le_bytes());
        out.extend_from_slice(&hi.to_le_bytes());
    }
    pack(ids.iter().map(|v| u64::from(*v)), width, &mut out);
    out
}

#[derive(Debug, Clone)]
pub struct PackedIds {
    data: Bytes,
    len: usize,
    width: u8,
    num_blocks: usize,
}

fn u32_at(d: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes([d[pos], d[pos + 1], d[pos + 2], d[pos + 3]])
}

impl PackedIds {
    /// Opens the part; `max_id` bounds every id (the dictionary size) and is checked per block.
    pub fn open(data: Bytes, expected_len: usize, max_id: u32) -> Result<Self, String> {
        if data.len() < HEADER {
            return Err("id part is shorter than its header".into());
        }
        let len = u32_at(&data, 0) as usize;
        let width = data[4];
        let num_blocks = u32_at(&data, 8) as usize;
        if len != expected_len {
            return Err(format!("id part has {len} values, expected {expected_len}"));
        }
        if width > 32 || num_blocks != len.div_ceil(BLOCK_ROWS) {
            return Err("id part header is inconsistent".into());
        }
        let packed_start = HEADER + num_blocks * 8;
        let needed = packed_start + (len * width as usize).div_ceil(8) + 16;
        if data.len() < needed {
            return Err(format!("id part is {} bytes, needs {needed}", data.len()));
        }
        let ids = PackedIds {
            data,
            len,
            width,
            num_blocks,
        };
        for b in 0..num_blocks {
            if let Some((_, hi)) = ids.block_range(b)
                && hi > max_id
            {
                return Err(format!(
                    "id block {b} refers to id {hi}, past the dictionary ({max_id})"
                ));
            }
        }
        Ok(ids)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn block_range(&self, b: usize) -> Option<(u32, u32)> {
        (b < self.num_blocks).then(|| {
            (
                u32_at(&self.data, HEADER + b * 8),
                u32_at(&self.data, HEADER + b * 8 + 4),
            )
        })
    }

    /// Reads `out.len()` ids starting at index `first`.
    pub fn read(&self, first: usize, out: &mut [u32]) -> Result<(), String> {
        if first + out.len() > self.len {
            return Err(format!(
                "id read {first}+{} past {} values",
                out.len(),
                self.len
            ));
        }
        let packed = &self.data[HEADER + self.num_blocks * 8..];
        if unpack_u32(packed, self.width, first, out) {
            Ok(())
        } else {
            Err("id part is truncated".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_ranges() {
        let ids: Vec<u32> = (0..10_000u32).map(|i| (i * 7919) % 1000).collect();
        let ids_part = PackedIds::open(Bytes::from(encode(&ids)), ids.len(), 999).unwrap();
        let mut out = vec![0u32; 300];
        ids_part.read(4000, &mut out).unwrap();
        assert_eq!(&out[..], &ids[4000..4300]);
        let (lo, hi) = ids_part.block_range(0).unwrap();
        assert_eq!((lo, hi), (0, 999));
        assert!(PackedIds::open(Bytes::from(encode(&ids)), ids.len(), 500).is_err());
        assert!(ids_part.read(9990, &mut out).is_err());
    }
}
