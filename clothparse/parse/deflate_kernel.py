"""Numba kernels of ``clothparse.parse.png_codec``: PNG row filters and a fast deflate encoder.

zlib (1.2.x, what Python links) spends ~12 ns a byte at level 1 with its run-length
strategy on an overlay, most of the encoding budget. ``deflate_rle`` writes the same kind
of stream (RFC 1951) a block at a time: matches are byte runs at distance 1, found by
zlib's ``deflate_rle`` rule (a byte followed by at least three copies of the byte before
it, up to 258), and every block of ``BLOCK_TOKENS`` tokens gets its own dynamic Huffman
codes (``clothparse.parse.huffman``: length-limited to 15 bits; code lengths run-length
coded as zlib does). Any inflater reads it; tests decode it with zlib.

Module-level ``@njit(cache=True, nogil=True)`` functions: a second process loads machine
code from ``__pycache__``, and encoding on a worker thread leaves the interpreter to the
others. ``png_codec`` imports this module on first use so that `cpt` starts fast.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from clothparse.parse.huffman import canonical_codes, huffman_lengths

#: Tokens (literals and matches) per deflate block: each block gets codes fitted to its
#: own statistics, as zlib's 32 Ki-symbol buffer does.
BLOCK_TOKENS = 1 << 15

# Length symbols 257..285: base length and extra bits (RFC 1951, 3.2.5).
_LEN_BASE = np.array(
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258],
    np.int64,
)
_LEN_EXTRA = np.array([0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0], np.int64)
#: Per match length 0..258: its symbol (257..285), extra-bit count and extra-bit value.
LEN_SYM = np.zeros(259, np.int64)
LEN_NBITS = np.zeros(259, np.int64)
LEN_BITS = np.zeros(259, np.int64)
for _k in range(len(_LEN_BASE) - 1, -1, -1):
    _hi = 259 if _k == len(_LEN_BASE) - 1 else int(_LEN_BASE[_k + 1])
    for _n in range(int(_LEN_BASE[_k]), _hi):
        if LEN_SYM[_n] == 0:
            LEN_SYM[_n] = 257 + _k
            LEN_NBITS[_n] = _LEN_EXTRA[_k]
            LEN_BITS[_n] = _n - _LEN_BASE[_k]
#: The order in which the code-length code's lengths are sent (RFC 1951, 3.2.7).
CL_ORDER = np.array([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15], np.int64)


@njit(cache=True, nogil=True)
def png_scanlines(rows, bpp, ftype, out):
    """PNG scanlines of uint8 [H, B] ``rows`` (B bytes a row, ``bpp`` bytes a pixel) into
    uint8 [H * (B + 1)] ``out``: each row its filter type byte then the filtered bytes.

    ftype: 0 none, 1 sub, 2 up, 4 Paeth (PNG 1.2, section 6); bytes left of the first
    pixel and above the first row count as 0. Inner loops index with unsigned integers
    (no negative-index wraparound), which lets LLVM vectorise them.
    """
    h, b = rows.shape
    scan = out.reshape(h, b + 1)
    zero = np.zeros(b, np.uint8)
    lead = min(bpp, b)
    for y in range(h):
        scan[y, 0] = ftype
        cur = rows[y]
        up = rows[y - 1] if y > 0 else zero
        dst = scan[y, 1:]
        if ftype == 0:
            dst[:] = cur
        elif ftype == 2:
            for j in range(b):
                k = np.uint64(j)
                dst[k] = cur[k] - up[k]
        else:
            for j in range(lead):  # no pixel on the left: Sub keeps the byte, Paeth takes the one above
                dst[j] = cur[j] - (up[j] if ftype == 4 else np.uint8(0))
            x_, a_, u_, c_, d_ = cur[lead:], cur[: b - lead], up[lead:], up[: b - lead], dst[lead:]
            if ftype == 1:
                for j in range(b - lead):
                    k = np.uint64(j)
                    d_[k] = x_[k] - a_[k]
            else:
                for j in range(b - lead):
                    k = np.uint64(j)
                    a = np.int16(a_[k])
                    u = np.int16(u_[k])
                    c = np.int16(c_[k])
                    # |p - a|, |p - b|, |p - c| for the estimate p = a + u - c, in int16
                    # lanes (|pc| <= 510): a third faster than int32 with LLVM's vectoriser.
                    pa = np.int16(u - c)
                    pb = np.int16(a - c)
                    pc = np.int16(pa + pb)
                    pa = max(pa, np.int16(-pa))
                    pb = max(pb, np.int16(-pb))
                    pc = max(pc, np.int16(-pc))
                    least = min(pc, min(pa, pb))
                    pred = a if pa == least else (u if pb == least else c)
                    d_[k] = np.uint8(x_[k] - np.uint8(pred))


@njit(cache=True, nogil=True)
def _tokenize_block(data, i, tokens, tok_freq):
    """Tokens of data[i:] into uint16 ``tokens`` until it is full or the data ends; counts
    each token value in int64 [512] ``tok_freq``. Returns (next data position, tokens made).

    A token is a literal byte (0-255), or 253 + L for a run of L (3-258) copies of the byte
    before it, i.e. a match at distance 1, by zlib's ``deflate_rle`` rule.
    """
    n = data.shape[0]
    t = 0
    while i < n and t < tokens.shape[0]:
        v = data[i]
        # "&" rather than "and": one predictable branch a byte.
        if i > 0 and i + 2 < n and (v == data[i - 1]) & (data[i + 1] == v) & (data[i + 2] == v):
            length = 3
            stop = min(n - i, 258)
            while length < stop and data[i + length] == v:
                length += 1
            tok = np.int64(253 + length)
            i += length
        else:
            tok = np.int64(v)
            i += 1
        tokens[t] = tok
        tok_freq[tok] += 1
        t += 1
    return i, t


@njit(cache=True, nogil=True)
def _symbol_freq(tok_freq, len_sym):
    """int64 [286] literal/length symbol counts of int64 [512] token value counts."""
    freq = np.zeros(286, np.int64)
    freq[:256] = tok_freq[:256]
    for length in range(3, 259):
        freq[len_sym[length]] += tok_freq[253 + length]
    return freq


@njit(cache=True, nogil=True)
def _put(out, state, value, nbits):
    """Append the low ``nbits`` (<= 32) of ``value`` to the bit stream.

    state: int64 [3] = (bit buffer, bits in it, bytes written to ``out``)."""
    buf = state[0] | (value << state[1])
    cnt = state[1] + nbits
    pos = state[2]
    while cnt >= 8:
        out[pos] = np.uint8(buf & 0xFF)
        buf >>= 8
        cnt -= 8
        pos += 1
    state[0] = buf
    state[1] = cnt
    state[2] = pos


@njit(cache=True, nogil=True)
def _code_length_runs(seq):
    """The code-length alphabet symbols (0-18) and extra-bit values of uint8 code lengths
    ``seq``, run-length coded like zlib's ``send_tree``: 16 repeats the previous length
    3-6 times, 17 / 18 give 3-10 / 11-138 zeros. Returns (int64 [K] symbols, int64 [K] extras)."""
    n = seq.shape[0]
    syms = np.empty(n, np.int64)
    extra = np.zeros(n, np.int64)
    k = 0
    i = 0
    while i < n:
        v = seq[i]
        run = 1
        while i + run < n and seq[i + run] == v:
            run += 1
        i += run
        if v == 0:
            while run >= 11:
                r = min(run, 138)
                syms[k] = 18
                extra[k] = r - 11
                k += 1
                run -= r
            if run >= 3:
                syms[k] = 17
                extra[k] = run - 3
                k += 1
                run = 0
        else:
            syms[k] = v
            k += 1
            run -= 1
            while run >= 3:
                r = min(run, 6)
                syms[k] = 16
                extra[k] = r - 3
                k += 1
                run -= r
        for _ in range(run):
            syms[k] = v
            k += 1
    return syms[:k], extra[:k]


@njit(cache=True, nogil=True)
def _block_codes(freq, len_sym, len_nbits, len_bits):
    """Codes of one block from its int64 [286] symbol counts: (uint8 [286] literal/length
    code lengths, uint64 [512] per token value its bit string << 6 | its bit count, the
    end-of-block code packed the same way). A match token's bit string is its length
    code, the length's extra bits and the one-bit distance code 0 (distance 1)."""
    f = freq.copy()
    f[256] = 1  # end of block
    lit_len = huffman_lengths(f, np.int64(15))
    lit_code = canonical_codes(lit_len)
    packed = np.zeros(512, np.uint64)
    for v in range(256):
        packed[v] = np.uint64((lit_code[v] << 6) | np.int64(lit_len[v]))
    for length in range(3, 259):
        s = len_sym[length]
        bits = lit_code[s] | (len_bits[length] << lit_len[s])  # then a 0 bit: distance code 0
        packed[length + 253] = np.uint64((bits << 6) | (np.int64(lit_len[s]) + len_nbits[length] + 1))
    return lit_len, packed, (lit_code[256] << 6) | np.int64(lit_len[256])


@njit(cache=True, nogil=True)
def _write_header(out, state, lit_len, final, cl_order):
    """Block header: BFINAL, BTYPE 10 and the code lengths of both codes (RFC 1951, 3.2.7)."""
    nlit = 286
    while nlit > 257 and lit_len[nlit - 1] == 0:
        nlit -= 1
    seq = np.ones(nlit + 2, np.uint8)  # distance codes 0 and 1, one bit each (a complete code)
    seq[:nlit] = lit_len[:nlit]
    cl_syms, cl_extra = _code_length_runs(seq)
    cl_freq = np.zeros(19, np.int64)
    for s in cl_syms:
        cl_freq[s] += 1
    cl_len = huffman_lengths(cl_freq, np.int64(7))
    cl_code = canonical_codes(cl_len)
    ncl = 19
    while ncl > 4 and cl_len[cl_order[ncl - 1]] == 0:
        ncl -= 1
    # Plain int64 arguments throughout: a literal argument would compile another copy.
    _put(out, state, np.int64(final) | (2 << 1), np.int64(3))
    _put(out, state, np.int64(nlit - 257) | (np.int64(1) << 5) | (np.int64(ncl - 4) << 10), np.int64(14))
    for j in range(ncl):
        _put(out, state, np.int64(cl_len[cl_order[j]]), np.int64(3))
    for j in range(cl_syms.shape[0]):
        s = cl_syms[j]
        _put(out, state, cl_code[s], np.int64(cl_len[s]))
        if s >= 16:
            _put(out, state, cl_extra[j], np.int64(2 if s == 16 else (3 if s == 17 else 7)))


@njit(cache=True, nogil=True)
def _write_tokens(out, state, tokens, start, stop, packed):
    """The codes of tokens[start:stop] (``packed`` from ``_block_codes``), branch-free: each
    token's bits join the buffer, four bytes are stored and the position moves past the
    whole ones (fewer than 8 bits wait plus at most 21 new; ``out`` has slack)."""
    buf = np.uint64(state[0])
    cnt = np.uint64(state[1])
    pos = np.uint64(state[2])
    for t in range(start, stop):
        c = packed[tokens[t]]
        buf |= (c >> np.uint64(6)) << cnt
        cnt += c & np.uint64(63)
        out[pos] = np.uint8(buf & np.uint64(0xFF))
        out[pos + np.uint64(1)] = np.uint8((buf >> np.uint64(8)) & np.uint64(0xFF))
        out[pos + np.uint64(2)] = np.uint8((buf >> np.uint64(16)) & np.uint64(0xFF))
        out[pos + np.uint64(3)] = np.uint8((buf >> np.uint64(24)) & np.uint64(0xFF))
        whole = cnt >> np.uint64(3)
        pos += whole
        buf >>= whole << np.uint64(3)
        cnt &= np.uint64(7)
    state[0] = np.int64(buf)
    state[1] = np.int64(cnt)
    state[2] = np.int64(pos)


@njit(cache=True, nogil=True)
def deflate_rle(data, out, block_tokens, len_sym, len_nbits, len_bits, cl_order):
    """Raw deflate stream (RFC 1951, no zlib header) of uint8 [n] ``data`` into uint8
    ``out``: the bytes written, or -1 when ``out`` is too small (nothing usable written).

    Blocks are tokenized, coded and written one at a time: no token array for the whole
    input, and a block's exact size is known before it is written.
    """
    if data.shape[0] == 0:
        if out.shape[0] < 2:
            return -1
        out[0] = 3  # a final fixed-Huffman block holding only its end code
        out[1] = 0
        return 2
    tokens = np.empty(block_tokens, np.uint16)
    state = np.zeros(3, np.int64)  # bit buffer (< 8 bits pending), its bit count, bytes done
    i = np.int64(0)
    while i < data.shape[0]:
        tok_freq = np.zeros(512, np.int64)
        i, made = _tokenize_block(data, i, tokens, tok_freq)
        lit_len, packed, end = _block_codes(_symbol_freq(tok_freq, len_sym), len_sym, len_nbits, len_bits)
        bits = 0
        for v in range(512):
            bits += tok_freq[v] * np.int64(packed[v] & np.uint64(63))
        # Header under 400 bytes; 4 bytes of slack for the branch-free token writer.
        if state[2] + (bits + 7) // 8 + 410 > out.shape[0]:
            return -1
        _write_header(out, state, lit_len, i >= data.shape[0], cl_order)
        _write_tokens(out, state, tokens, 0, made, packed)
        _put(out, state, end >> 6, end & 63)
    if state[1] > 0:
        _put(out, state, np.int64(0), 8 - state[1])
    return state[2]
