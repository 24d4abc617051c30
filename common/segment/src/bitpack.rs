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
    if end_bit.div_ceil(8) + 8 > data.len() {
        return false;
    }
    let mask = if w >= 32 {
        u64::from(u32::MAX)
    } else {
        (1u64 << w) - 1
    };
    let mut bit = first * w;
    for slot in out.iter_mut() {
        let byte = bit >> 3;
        let word = u64::from_le_bytes(data[byte..byte + 8].try_into().unwrap_or([0; 8]));
        *slot = ((word >> (bit & 7)) & mask) as u32;
        bit += w;
    }
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
    if end_bit.div_ceil(8) + 16 > data.len() {
        return false;
    }
    let mut bit = first * w;
    if w <= 56 {
        let mask = (1u64 << w) - 1;
        for slot in out.iter_mut() {
            let byte = bit >> 3;
            let word = u64::from_le_bytes(data[byte..byte + 8].try_into().unwrap_or([0; 8]));
            *slot = (word >> (bit & 7)) & mask;
            bit += w;
        }
    } else {
        let mask: u128 = if w == 64 {
            u128::from(u64::MAX)
        } else {
            (1u128 << w) - 1
        };
        for slot in out.iter_mut() {
            let byte = bit >> 3;
            let word = u128::from_le_bytes(data[byte..byte + 16].try_into().unwrap_or([0; 16]));
            *slot = ((word >> (bit & 7)) & mask) as u64;
            bit += w;
        }
    }
    true
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
