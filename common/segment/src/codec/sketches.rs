//! Complex (HyperLogLog) metric columns: per block of rows, a zstd frame holding each row's
//! serialized sketch length (`u32`) followed by the sketch bytes.
//!
//! Layout: `u32 num_rows`, `u32 num_blocks`, then `num_blocks` entries (`u64 offset`,
//! `u32 len`, `u32 raw_len`), then the frames.

use bytes::Bytes;

use crate::BLOCK_ROWS;
use crate::hll::Hll;

const HEADER: usize = 8;
const ENTRY: usize = 16;

pub fn encode(sketches: &[Hll]) -> Vec<u8> {
    let num_blocks = sketches.len().div_ceil(BLOCK_ROWS);
    let mut out = Vec::new();
    out.extend_from_slice(&(sketches.len() as u32).to_le_bytes());
    out.extend_from_slice(&(num_blocks as u32).to_le_bytes());
    let index_pos = out.len();
    out.resize(index_pos + num_blocks * ENTRY, 0);
    let payload_start = out.len();
    for (b, chunk) in sketches.chunks(BLOCK_ROWS).enumerate() {
        let mut lens = Vec::with_capacity(chunk.len() * 4);
        let mut body = Vec::new();
        for s in chunk {
            let before = body.len();
            s.to_bytes(&mut body);
            lens.extend_from_slice(&((body.len() - before) as u32).to_le_bytes());
        }
        lens.extend_from_slice(&body);
        let frame = zstd::bulk::compress(&lens, 3).unwrap_or_else(|_| lens.clone());
        let e = index_pos + b * ENTRY;
        let offset = (out.len() - payload_start) as u64;
        out[e..e + 8].copy_from_slice(&offset.to_le_bytes());
        out[e + 8..e + 12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        out[e + 12..e + 16].copy_from_slice(&(lens.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

#[derive(Debug, Clone)]
pub struct SketchBlocks {
    data: Bytes,
    num_rows: usize,
    num_blocks: usize,
}

fn u32_at(d: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes([d[pos], d[pos + 1], d[pos + 2], d[pos + 3]])
}

impl SketchBlocks {
    pub fn open(data: Bytes, expected_rows: usize) -> Result<Self, String> {
        if data.len() < HEADER {
            return Err("sketch part is shorter than its header".into());
        }
        let num_rows = u32_at(&data, 0) as usize;
        let num_blocks = u32_at(&data, 4) as usize;
        if num_rows != expected_rows || num_blocks != num_rows.div_ceil(BLOCK_ROWS) {
            return Err(format!(
                "sketch part has {num_rows} rows in {num_blocks} blocks, expected {expected_rows} rows"
            ));
        }
        let payload_start = HEADER + num_blocks * ENTRY;
        if data.len() < payload_start {
            return Err("sketch index is truncated".into());
        }
        let s = SketchBlocks {
            data,
            num_rows,
            num_blocks,
        };
        for b in 0..num_blocks {
            let (off, len, _) = s.entry(b);
            if payload_start + off + len > s.data.len() {
                return Err(format!("sketch block {b} runs past the end of its part"));
            }
        }
        Ok(s)
    }

    fn entry(&self, b: usize) -> (usize, usize, usize) {
        let e = HEADER + b * ENTRY;
        let mut off = [0u8; 8];
        off.copy_from_slice(&self.data[e..e + 8]);
        (
            u64::from_le_bytes(off) as usize,
            u32_at(&self.data, e + 8) as usize,
            u32_at(&self.data, e + 12) as usize,
        )
    }

    /// Decodes the sketches of block `b`.
    pub fn read(&self, b: usize, out: &mut Vec<Hll>) -> Result<(), String> {
        out.clear();
        if b >= self.num_blocks {
            return Err(format!("sketch block {b} out of range"));
        }
        let (off, len, raw_len) = self.entry(b);
        let start = HEADER + self.num_blocks * ENTRY + off;
        let raw = crate::codec::unzstd(&self.data[start..start + len], raw_len)
            .map_err(|e| format!("sketch block {b}: zstd: {e}"))?;
        let n = (self.num_rows - b * BLOCK_ROWS).min(BLOCK_ROWS);
        if raw.len() < n * 4 {
            return Err(format!("sketch block {b} is truncated"));
        }
        let mut pos = n * 4;
        for i in 0..n {
            let l = u32_at(&raw, i * 4) as usize;
            let bytes = raw
                .get(pos..pos + l)
                .ok_or_else(|| format!("sketch block {b} is truncated"))?;
            out.push(Hll::from_bytes(bytes).map_err(|e| format!("sketch block {b} row {i}: {e}"))?);
            pos += l;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let sketches: Vec<Hll> = (0..5000)
            .map(|i| {
                let mut h = Hll::new();
                h.add_str(&format!("u{}", i % 17));
                h
            })
            .collect();
        let blocks = SketchBlocks::open(Bytes::from(encode(&sketches)), 5000).unwrap();
        let mut out = Vec::new();
        blocks.read(1, &mut out).unwrap();
        assert_eq!(out.len(), 5000 - BLOCK_ROWS);
        assert_eq!(out[0].estimate(), 1.0);
    }
}
