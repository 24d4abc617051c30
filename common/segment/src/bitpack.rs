//! Fixed-width bit packing of unsigned integers, little-endian, with 16 bytes of tail padding so
//! that unpacking can always read a whole `u64`/`u128` word without bounds checks per value.

/// Bytes of padding after packed data.
pub const PADDING: usize = 16;

/// Bits needed to represent `max`.
pub fn width_for(max: u64) -> u8 {
    (64 - max.leading_zeros()) as u8
}

/// Packed size in bytes for `n` values of `width` bits, including padding.
pub fn packed_len(n: usize, width: u8) -> usize {
    (n * width as usize).div_ceil(8) + PADDING
}

/// Appends `values` packed at `width` bits to `out` (with padding).
pub fn pack(values: impl IntoIterator<Item = u64>, width: u8, out: &mut Vec<u8>) {
    let start = out.len();
    let mut acc: u128 = 0;
    let mut bits: u32 = 0;
    let w = u32::from(width);
    if w == 0 {
        out.extend_from_slice(&[0u8; PADDING]);
        return;
    }
    let mask: u128 = if w == 64 {
        u128::from(u64::MAX)
    } else {
        (1u128 << w) - 1
    };
    for v in values {
        acc |= (u128::from(v) & mask) << bits;
        bits += w;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
    let _ = start;
    out.extend_from_slice(&[0u8; PADDING]);
}

#[inline(always)]
fn word_at(data: &[u8], byte: usize) -> u64 {
    u64::from_le_bytes(data[byte..byte + 8].try_into().unwrap_or([0; 8]))
}

/// Unpackers specialized per width: groups of eight values start on a byte boundary and span
/// `W` bytes, so each group is one bounds check and eight shifts by constants, which the
/// compiler unrolls. Widths up to 56 (a value plus its bit offset fits one `u64` read).
macro_rules! fixed_width_unpacker {
    ($name:ident, $t:ty) => {
        #[inline(always)]
        fn $name<const W: usize>(data: &[u8], first: usize, out: &mut [$t]) {
            let mask: u64 = (1u64 << W) - 1;
            let n = out.len();
            let mut i = 0;
            while i < n && (first + i) % 8 != 0 {
                let bit = (first + i) * W;
                out[i] = ((word_at(data, bit >> 3) >> (bit & 7)) & mask) as $t;
                i += 1;
            }
            while i + 8 <= n {
                let byte = (first + i) / 8 * W;
                let group = &data[byte..byte + W + 8];
                let dst = &mut out[i..i + 8];
                for (j, slot) in dst.iter_mut().enumerate() {
                    let bit = j * W;
                    let word = u64::from_le_bytes(
                        group[bit / 8..bit / 8 + 8].try_into().unwrap_or([0; 8]),
                    );
                    *slot = ((word >> (bit % 8)) & mask) as $t;
                }
                i += 8;
            }
            while i < n {
                let bit = (first + i) * W;
                out[i] = ((word_at(data, bit >> 3) >> (bit & 7)) & mask) as $t;
                i += 1;
            }
        }
    };
}

fixed_width_unpacker!(unpack_fixed_u32, u32);
fixed_width_unpacker!(unpack_fixed_u64, u64);

macro_rules! by_width {
    ($f:ident, $w:expr, $data:expr, $first:expr, $out:expr, $fallback:expr; $($n:literal)*) => {
        match $w {
            $($n => $f::<$n>($data, $first, $out),)*
            _ => $fallback,
        }
    };
}

/// Reads `out.len()` values of `width` bits starting at value index `first` from `data`.
/// Returns false if `data` is too short (a corrupt or truncated part).
#[inline]
pub fn unpack_u32(data: &[u8], width: u8, first: usize, out: &mut [u32]) -> bool {
    let w = width as usize;
    if w == 0 {
        out.fill(0);
        return true;
    }
    let end_bit = (first + out.len()) * w;
    if end_bit.div_ceil(8) + 8 > data.len() || w > 32 {
        return false;
    }
    by_width!(unpack_fixed_u32, w, data, first, out, unreachable!("width checked above");
        1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32);
    true
}

/// Like [`unpack_u32`] for widths up to 64.
#[inline]
pub fn unpack_u64(data: &[u8], width: u8, first: usize, out: &mut [u64]) -> bool {
    let w = width as usize;
    if w == 0 {
        out.fill(0);
        return true;
    }
    let end_bit = (first + out.len()) * w;
    if end_bit.div_ceil(8) + 16 > data.len() || w > 64 {
        return false;
    }
    by_width!(unpack_fixed_u64, w, data, first, out, unpack_wide(data, w, first, out);
        1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28
        29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56);
    true
}

/// Widths 57 to 64: a value and its bit offset may span nine bytes.
fn unpack_wide(data: &[u8], w: usize, first: usize, out: &mut [u64]) {
    let mask: u128 = if w == 64 {
        u128::from(u64::MAX)
    } else {
        (1u128 << w) - 1
    };
    let mut bit = first * w;
    for slot in out.iter_mut() {
        let byte = bit >> 3;
        let word = u128::from_le_bytes(data[byte..byte + 16].try_into().unwrap_or([0; 16]));
        *slot = ((word >> (bit & 7)) & mask) as u64;
        bit += w;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(values in proptest::collection::vec(any::<u64>(), 0..300), width in 0u8..=64, first in 0usize..50) {
            let mask = if width == 64 { u64::MAX } else if width == 0 { 0 } else { (1u64 << width) - 1 };
            let values: Vec<u64> = values.into_iter().map(|v| v & mask).collect();
            let mut buf = Vec::new();
            pack(values.iter().copied(), width, &mut buf);
            prop_assert_eq!(buf.len(), packed_len(values.len(), width));
            let first = first.min(values.len());
            let mut out = vec![0u64; values.len() - first];
            prop_assert!(unpack_u64(&buf, width, first, &mut out));
            prop_assert_eq!(&out[..], &values[first..]);
            if width <= 32 {
                let mut out32 = vec![0u32; values.len() - first];
                prop_assert!(unpack_u32(&buf, width, first, &mut out32));
                prop_assert!(out32.iter().zip(&values[first..]).all(|(a, b)| u64::from(*a) == *b));
            }
        }
    }

    #[test]
    fn short_data_is_refused() {
        let mut buf = Vec::new();
        pack([1, 2, 3], 7, &mut buf);
        let mut out = [0u32; 3];
        assert!(!unpack_u32(&buf[..4], 7, 0, &mut out));
        assert!(unpack_u32(&buf, 7, 0, &mut out));
        assert_eq!(out, [1, 2, 3]);
    }
}
