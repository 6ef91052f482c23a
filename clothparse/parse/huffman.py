"""Huffman codes for ``clothparse.parse.deflate_kernel``: length-limited code lengths and
deflate's canonical codes (RFC 1951, 3.2.2), as Numba functions.

Module-level ``@njit(cache=True, nogil=True)``: compiled into the deflate kernel, cached.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def huffman_lengths(freq, max_bits):
    """uint8 code lengths of a prefix code for int64 symbol frequencies ``freq`` (0 = unused),
    no code longer than ``max_bits``: Huffman's, then miniz's length limiting. The code
    is complete (Kraft sum 1; zlib's inflate rejects incomplete code-length codes): a
    single used symbol gets a partner of length 1 (when the alphabet has two symbols)."""
    n = freq.shape[0]
    lengths = np.zeros(n, np.uint8)
    used = np.flatnonzero(freq > 0)
    m = used.shape[0]
    if m == 0:
        return lengths
    if m == 1:
        lengths[used[0]] = 1
        if n > 1:
            lengths[1 if used[0] == 0 else 0] = 1
        return lengths
    syms = used[np.argsort(freq[used], kind="mergesort")]  # ascending frequency
    lf = freq[syms]
    # Two-queue Huffman: leaves in frequency order, internal nodes in creation order.
    ifreq = np.zeros(m - 1, np.int64)
    lparent = np.zeros(m, np.int64)
    iparent = np.zeros(m - 1, np.int64)
    li = 0
    ii = 0
    for k in range(m - 1):
        total = np.int64(0)
        for _ in range(2):
            if li < m and (ii >= k or lf[li] <= ifreq[ii]):
                lparent[li] = k
                total += lf[li]
                li += 1
            else:
                iparent[ii] = k
                total += ifreq[ii]
                ii += 1
        ifreq[k] = total
    depth = np.zeros(m - 1, np.int64)  # internal node k's parent has a higher index; root m - 2
    for k in range(m - 3, -1, -1):
        depth[k] = depth[iparent[k]] + 1
    count = np.zeros(64, np.int64)
    for j in range(m):
        count[min(depth[lparent[j]] + 1, 63)] += 1  # deeper than 63 only folds to max_bits anyway
    # Length limiting (miniz's tdefl_huffman_enforce_max_code_size): fold the overlong
    # codes into max_bits, then lengthen shorter ones until the Kraft sum is exactly 1.
    for d in range(max_bits + 1, 64):
        count[max_bits] += count[d]
        count[d] = 0
    total = np.int64(0)
    for d in range(max_bits, 0, -1):
        total += count[d] << (max_bits - d)
    while total != (np.int64(1) << max_bits):
        count[max_bits] -= 1
        for d in range(max_bits - 1, 0, -1):
            if count[d] != 0:
                count[d] -= 1
                count[d + 1] += 2
                break
        total -= 1
    # Shortest codes to the most frequent symbols.
    j = m
    for d in range(1, max_bits + 1):
        for _ in range(count[d]):
            j -= 1
            lengths[syms[j]] = d
    return lengths


@njit(cache=True, nogil=True)
def canonical_codes(lengths):
    """int64 canonical Huffman codes of uint8 ``lengths``, bit-reversed (deflate sends
    codes most significant bit first into a least-significant-bit-first stream)."""
    n = lengths.shape[0]
    count = np.zeros(16, np.int64)
    for s in range(n):
        count[lengths[s]] += 1
    count[0] = 0
    nxt = np.zeros(16, np.int64)
    code = np.int64(0)
    for d in range(1, 16):
        code = (code + count[d - 1]) << 1
        nxt[d] = code
    codes = np.zeros(n, np.int64)
    for s in range(n):
        d = lengths[s]
        if d == 0:
            continue
        c = nxt[d]
        nxt[d] += 1
        r = np.int64(0)
        for _ in range(d):
            r = (r << 1) | (c & 1)
            c >>= 1
        codes[s] = r
    return codes
