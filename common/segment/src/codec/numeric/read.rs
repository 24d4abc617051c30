//! Reading a numeric part: the validated block index, block ranges, and decoding blocks.

use super::*;

/// Read side of a numeric part. Construction validates the header and every index entry, so
/// block reads only fail on payloads that do not decode.
#[derive(Debug, Clone)]
pub struct NumericBlocks {
    kind: NumKind,
    data: Bytes,
    num_rows: usize,
    num_blocks: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: usize,
    len: usize,
    enc: u8,
    all_null: bool,
    lo: u64,
    hi: u64,
}

fn u32_at(d: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes([d[pos], d[pos + 1], d[pos + 2], d[pos + 3]])
}

fn u64_at(d: &[u8], pos: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[pos..pos + 8]);
    u64::from_le_bytes(b)
}

impl NumericBlocks {
    pub fn open(data: Bytes, expected_rows: usize) -> Result<Self, String> {
        if data.len() < HEADER {
            return Err(format!(
                "numeric part is {} bytes, shorter than its header",
                data.len()
            ));
        }
        let kind = NumKind::from_code(u32_at(&data, 0)).ok_or("unknown numeric kind")?;
        let num_rows = u32_at(&data, 4) as usize;
        let num_blocks = u32_at(&data, 8) as usize;
        if num_rows != expected_rows {
            return Err(format!(
                "numeric part has {num_rows} rows, the segment has {expected_rows}"
            ));
        }
        if num_blocks != num_rows.div_ceil(BLOCK_ROWS) {
            return Err(format!(
                "numeric part has {num_blocks} blocks for {num_rows} rows"
            ));
        }
        let payload_start = HEADER + num_blocks * ENTRY;
        if data.len() < payload_start {
            return Err("numeric block index is truncated".into());
        }
        let blocks = NumericBlocks {
            kind,
            data,
            num_rows,
            num_blocks,
        };
        for b in 0..num_blocks {
            let e = blocks.entry(b);
            if payload_start + e.offset + e.len > blocks.data.len() {
                return Err(format!("numeric block {b} runs past the end of its part"));
            }
            if !matches!(
                e.enc & !ENC_ZSTD,
                ENC_CONST | ENC_FOR | ENC_DELTA | ENC_DICT | ENC_RAW
            ) {
                return Err(format!("numeric block {b} has unknown encoding {}", e.enc));
            }
        }
        Ok(blocks)
    }

    pub fn kind(&self) -> NumKind {
        self.kind
    }

    pub fn num_rows(&self) -> usize {
        self.num_rows
    }

    fn entry(&self, b: usize) -> Entry {
        let p = HEADER + b * ENTRY;
        let d = &self.data;
        Entry {
            offset: u64_at(d, p) as usize,
            len: u32_at(d, p + 8) as usize,
            enc: d[p + 12],
            all_null: d[p + 13] & FLAG_ALL_NULL != 0,
            lo: u64_at(d, p + 16),
            hi: u64_at(d, p + 24),
        }
    }

    fn block_len(&self, b: usize) -> usize {
        (self.num_rows - b * BLOCK_ROWS).min(BLOCK_ROWS)
    }

    /// Min and max of the block's non-null values as longs (None when all are null).
    pub fn range_i64(&self, b: usize) -> Option<(i64, i64)> {
        let e = self.entry(b);
        if e.all_null {
            return None;
        }
        Some(match self.kind {
            NumKind::Long => (e.lo as i64, e.hi as i64),
            _ => (
                f64::from_bits(e.lo).floor() as i64,
                f64::from_bits(e.hi).ceil() as i64,
            ),
        })
    }

    /// Min and max of the block's non-null values as doubles.
    pub fn range_f64(&self, b: usize) -> Option<(f64, f64)> {
        let e = self.entry(b);
        if e.all_null {
            return None;
        }
        Some(match self.kind {
            NumKind::Long => (e.lo as i64 as f64, e.hi as i64 as f64),
            _ => (f64::from_bits(e.lo), f64::from_bits(e.hi)),
        })
    }

    /// Decodes block `b` into raw bit patterns (i64 for longs, f64 bits otherwise).
    fn decode_bits(&self, b: usize, out: &mut [u64]) -> Result<(), String> {
        let n = self.block_len(b);
        if out.len() < n {
            return Err("output buffer too small".into());
        }
        let out = &mut out[..n];
        let e = self.entry(b);
        let start = HEADER + self.num_blocks * ENTRY + e.offset;
        let raw = &self.data[start..start + e.len];
        let decompressed;
        let payload: &[u8] = if e.enc & ENC_ZSTD != 0 {
            if raw.len() < 4 {
                return Err(format!("block {b}: truncated zstd frame"));
            }
            let size = u32_at(raw, 0) as usize;
            if size > n * 16 + 1024 * 1024 {
                return Err(format!("block {b}: implausible decompressed size {size}"));
            }
            decompressed = crate::codec::unzstd(&raw[4..], size)
                .map_err(|e| format!("block {b}: zstd: {e}"))?;
            &decompressed
        } else {
            raw
        };
        let bad = || format!("block {b}: payload too short for its encoding");
        match e.enc & !ENC_ZSTD {
            ENC_CONST => out.fill(e.lo),
            ENC_FOR => {
                let (&width, packed) = payload.split_first().ok_or_else(bad)?;
                if !unpack_u64(packed, width, 0, out) {
                    return Err(bad());
                }
                let min = e.lo as i64;
                for v in out.iter_mut() {
                    *v = min.wrapping_add(*v as i64) as u64;
                }
            }
            ENC_DELTA => {
                if payload.len() < 9 {
                    return Err(bad());
                }
                let first = u64_at(payload, 0);
                let width = payload[8];
                out[0] = first;
                if n > 1 && !unpack_u64(&payload[9..], width, 0, &mut out[1..]) {
                    return Err(bad());
                }
                let mut acc = first as i64;
                for v in out[1..].iter_mut() {
                    acc = acc.wrapping_add(*v as i64);
                    *v = acc as u64;
                }
            }
            ENC_DICT => {
                if payload.len() < 3 {
                    return Err(bad());
                }
                let d = u16::from_le_bytes([payload[0], payload[1]]) as usize + 1;
                let width = payload[2];
                let values_end = 3 + d * 8;
                if payload.len() < values_end {
                    return Err(bad());
                }
                let dict = &payload[3..values_end];
                crate::scratch::with_ids(|ids| {
                    if !unpack_u32(&payload[values_end..], width, 0, &mut ids[..n]) {
                        return Err(bad());
                    }
                    for (v, id) in out.iter_mut().zip(&ids[..n]) {
                        let at = *id as usize * 8;
                        let word = dict
                            .get(at..at + 8)
                            .ok_or_else(|| format!("block {b}: dictionary id out of range"))?;
                        *v = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
                    }
                    Ok(())
                })?;
            }
            _ => match self.kind {
                NumKind::Float => {
                    if payload.len() < n * 4 {
                        return Err(bad());
                    }
                    for (v, c) in out.iter_mut().zip(payload.chunks_exact(4)) {
                        *v = f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_bits();
                    }
                }
                _ => {
                    if payload.len() < n * 8 {
                        return Err(bad());
                    }
                    for (v, c) in out.iter_mut().zip(payload.chunks_exact(8)) {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(c);
                        *v = u64::from_le_bytes(a);
                    }
                }
            },
        }
        Ok(())
    }

    /// Decodes block `b` into `out`, converting each value's bits with `conv`.
    fn read_as<T>(&self, b: usize, out: &mut [T], conv: impl Fn(u64) -> T) -> Result<(), String> {
        let n = self.block_len(b);
        crate::scratch::with_words(|bits| {
            self.decode_bits(b, &mut bits[..n])?;
            out[..n]
                .iter_mut()
                .zip(&bits[..n])
                .for_each(|(o, v)| *o = conv(*v));
            Ok(())
        })
    }

    pub fn read_i64(&self, b: usize, out: &mut [i64]) -> Result<(), String> {
        match self.kind {
            NumKind::Long => self.read_as(b, out, |v| v as i64),
            _ => self.read_as(b, out, |v| f64::from_bits(v) as i64),
        }
    }

    pub fn read_f64(&self, b: usize, out: &mut [f64]) -> Result<(), String> {
        match self.kind {
            NumKind::Long => self.read_as(b, out, |v| v as i64 as f64),
            _ => self.read_as(b, out, f64::from_bits),
        }
    }
}
