"""Divolte's wire format for Python test and benchmark clients: the Murmur3-32 checksum,
base-36 numbers and signed event query strings (independent of Eddy's Rust code)."""

import urllib.parse


def murmur3_32(data):
    """MurmurHash3 x86 32-bit, seed 0, as a signed int."""
    c1, c2, h, n = 0xCC9E2D51, 0x1B873593, 0, len(data)

    def mix(k):
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        return (k * c2) & 0xFFFFFFFF

    for i in range(0, n - n % 4, 4):
        h ^= mix(int.from_bytes(data[i:i + 4], "little"))
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail = data[n - n % 4:]
    if tail:
        h ^= mix(int.from_bytes(tail, "little"))
    h ^= n
    for shift, mul in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        h ^= h >> shift
        h = (h * mul) & 0xFFFFFFFF
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def base36(v):
    digits, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    neg, v = v < 0, abs(v)
    while True:
        out, v = digits[v % 36] + out, v // 36
        if v == 0:
            return "-" + out if neg else out


def signed_query(params):
    """`params` (name -> text) as a query string with Divolte's checksum `x`."""
    canonical = "".join(f"{k}={v},;" for k, v in sorted(params.items()))
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    return f"{query}&x={base36(murmur3_32(canonical.encode()))}"
