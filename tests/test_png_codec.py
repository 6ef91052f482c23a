"""The PNG writer and its deflate kernel against zlib, Pillow and plain numpy.

Every stream ``deflate_rle`` writes must inflate (zlib) to its input; tokens must follow
zlib's run rule (a byte-at-a-time reference); row filters must
equal the PNG specification's, computed in numpy; Huffman code lengths must form complete
prefix codes within the length limit, as short in total as Huffman's when the limit does
not bind; PNGs of every level must decode (Pillow) to the pixels given. Inputs are fresh
random ones (the seed is in the failure message) plus hypothesis examples.
"""

from __future__ import annotations

import heapq
import io
import itertools
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from clothparse.parse import deflate_kernel as k
from clothparse.parse.huffman import canonical_codes, huffman_lengths
from clothparse.parse.png_codec import check_level, palette_png, rgb_png


def deflate(data: np.ndarray, block_tokens: int = k.BLOCK_TOKENS) -> bytes:
    out = np.empty((2 + 400 // block_tokens) * data.size + 1024, np.uint8)  # small blocks: a header each
    n = k.deflate_rle(np.ascontiguousarray(data, np.uint8), out, block_tokens, k.LEN_SYM, k.LEN_NBITS, k.LEN_BITS, k.CL_ORDER)
    assert n > 0
    return out[:n].tobytes()


def scanlines(rows: np.ndarray, bpp: int, ftype: int) -> np.ndarray:
    out = np.empty(rows.shape[0] * (rows.shape[1] + 1), np.uint8)
    k.png_scanlines(rows, bpp, ftype, out)
    return out


def inflate(raw: bytes) -> bytes:
    d = zlib.decompressobj(-15)
    out = d.decompress(raw) + d.flush()
    assert d.eof and not d.unused_data  # one complete stream, its final block last
    return out


def random_bytes(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.choice([0, 1, 2, 3, 4, 5, 100, 5000, 300_000]))
    kind = rng.integers(0, 4)
    if kind == 0:
        return rng.integers(0, 256, n).astype(np.uint8)
    if kind == 1:  # few symbols: long codes for rare ones, short for common ones
        return rng.choice(np.arange(5, dtype=np.uint8), n, p=[0.9, 0.05, 0.03, 0.015, 0.005])
    if kind == 2:  # runs of every length, 258 and past it included
        runs = rng.integers(1, 600, max(1, n // 50))
        return np.repeat(rng.integers(0, 256, runs.size).astype(np.uint8), runs)[:n]
    return np.zeros(n, np.uint8)


def test_deflate_reports_a_short_buffer() -> None:
    data = np.random.default_rng().integers(0, 256, 5000).astype(np.uint8)
    for size in (0, 1, 100, 4000):
        out = np.zeros(size, np.uint8)
        assert k.deflate_rle(data, out, k.BLOCK_TOKENS, k.LEN_SYM, k.LEN_NBITS, k.LEN_BITS, k.CL_ORDER) == -1
    assert k.deflate_rle(data[:0], np.zeros(1, np.uint8), k.BLOCK_TOKENS, k.LEN_SYM, k.LEN_NBITS, k.LEN_BITS, k.CL_ORDER) == -1


def test_deflate_inflates_to_its_input() -> None:
    seed = int(np.random.default_rng().integers(2**31))
    rng = np.random.default_rng(seed)
    for _ in range(40):
        data = random_bytes(rng)
        for block in (k.BLOCK_TOKENS, 7):  # small blocks: many headers, a final one at any size
            assert inflate(deflate(data, block)) == data.tobytes(), f"seed {seed}, n {data.size}, block {block}"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700), st.integers(1, 40))
def test_deflate_property(data: bytes, block: int) -> None:
    assert inflate(deflate(np.frombuffer(data, np.uint8), block)) == data


def ref_tokens(data: bytes) -> list[int]:
    """zlib's ``deflate_rle`` rule, one byte at a time."""
    out, i = [], 0
    while i < len(data):
        if i > 0 and i + 2 < len(data) and data[i] == data[i + 1] == data[i + 2] == data[i - 1]:
            n = 3
            while n < 258 and i + n < len(data) and data[i + n] == data[i - 1]:
                n += 1
            out.append(256 + n - 3)
            i += n
        else:
            out.append(data[i])
            i += 1
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 300)), max_size=20))
def test_tokens_follow_zlibs_run_rule(runs: list[tuple[int, int]]) -> None:
    data = bytes(b for b, n in runs for _ in range(n))
    arr = np.frombuffer(data, np.uint8)
    tokens: list[int] = []
    i = 0
    while i < len(arr):  # blocks of 16 tokens, each with its own counts
        buf, freq = np.zeros(16, np.uint16), np.zeros(512, np.int64)
        i, made = k._tokenize_block(arr, i, buf, freq)
        assert 0 < made <= 16 and (made == 16 or i == len(arr))
        np.testing.assert_array_equal(freq, np.bincount(buf[:made], minlength=512))
        tokens += buf[:made].tolist()
    assert tokens == ref_tokens(data)


def huffman_cost(freq: np.ndarray) -> int:
    """Total bits of an optimal (unlimited) Huffman code, by the textbook heap merge."""
    heap = [int(f) for f in freq if f > 0]
    if len(heap) < 2:
        return sum(heap)
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        cost += a + b
        heapq.heappush(heap, a + b)
    return cost


@settings(max_examples=300, deadline=None)
@given(
    arrays(np.int64, st.integers(1, 40), elements=st.one_of(st.just(0), st.integers(1, 10**6))),
    st.sampled_from([7, 9, 15]),
)
def test_huffman_lengths_complete_and_limited(freq: np.ndarray, max_bits: int) -> None:
    used = freq > 0
    if used.sum() > 2**max_bits:
        return  # cannot fit; deflate's alphabets (286, 19) never ask for it
    lengths = huffman_lengths(freq, max_bits).astype(np.int64)
    assert lengths.max(initial=0) <= max_bits
    if used.sum() == 0:
        assert not lengths.any()
        return
    assert (lengths[used] > 0).all()
    if len(freq) == 1:
        assert lengths.tolist() == [1]
        return
    assert sum(2.0 ** -int(n) for n in lengths if n) == 1.0  # complete: zlib rejects anything else
    if used.sum() >= 2 and lengths.max() < max_bits:  # the limit did not bind: optimal
        assert int((freq * lengths).sum()) == huffman_cost(freq)
    codes = canonical_codes(lengths.astype(np.uint8))
    words = sorted(format(int(c), f"0{n}b")[::-1] for c, n in zip(codes, lengths, strict=True) if n)
    assert all(not b.startswith(a) for a, b in itertools.pairwise(words))  # prefix-free


def test_huffman_lengths_fibonacci_needs_limiting() -> None:
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    lengths = huffman_lengths(np.array(fib, np.int64), 15)
    assert lengths.max() == 15 and sum(2.0 ** -int(n) for n in lengths) == 1.0


def ref_filter(rows: np.ndarray, bpp: int, ftype: int) -> np.ndarray:
    """PNG 1.2, section 6, in int arithmetic over whole arrays."""
    x = rows.astype(np.int32)
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp] if bpp < x.shape[1] else 0
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, bpp:] = x[:-1, :-bpp] if bpp < x.shape[1] else 0
    if ftype == 0:
        pred = np.zeros_like(x)
    elif ftype == 1:
        pred = a
    elif ftype == 2:
        pred = b
    else:
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    out = np.empty((x.shape[0], x.shape[1] + 1), np.uint8)
    out[:, 0] = ftype
    out[:, 1:] = (x - pred) % 256
    return out.reshape(-1)


@pytest.mark.parametrize("ftype", [0, 1, 2, 4])
def test_scanlines_equal_the_png_filters(ftype: int) -> None:
    seed = int(np.random.default_rng().integers(2**31))
    rng = np.random.default_rng(seed)
    for _ in range(20):
        bpp = int(rng.choice([1, 3]))
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        rows = rng.integers(0, 256, (h, w * bpp)).astype(np.uint8)
        rows[:, : w * bpp // 2] //= 16  # smooth parts too: small differences
        np.testing.assert_array_equal(scanlines(rows, bpp, ftype), ref_filter(rows, bpp, ftype), f"seed {seed}")


@pytest.mark.parametrize("level", range(10))
def test_png_decodes_to_its_pixels(level: int) -> None:
    seed = int(np.random.default_rng().integers(2**31))
    rng = np.random.default_rng(seed)
    for h, w in ((1, 1), (1, 300), (300, 1), (61, 47)):
        for image in (rng.integers(0, 256, (h, w, 3), dtype=np.uint8), np.full((h, w, 3), 200, np.uint8)):
            got = Image.open(io.BytesIO(rgb_png(image, level)))
            assert got.mode == "RGB", f"seed {seed}"
            np.testing.assert_array_equal(np.asarray(got), image, f"seed {seed}")
        labels = rng.integers(0, 15, (h, w), dtype=np.uint8)
        got = Image.open(io.BytesIO(palette_png(labels, bytes(range(45)), level)))
        assert got.mode == "P" and got.getpalette()[:45] == list(range(45))
        np.testing.assert_array_equal(np.asarray(got), labels, f"seed {seed}")


def test_png_level_and_input_checks() -> None:
    assert [check_level(v) for v in (0, 9, np.int64(3))] == [0, 9, 3]
    for bad in (-1, 10, 2.0, True, "1", None):
        with pytest.raises(ValueError, match="0-9"):
            check_level(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="RGB uint8"):
        rgb_png(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        rgb_png(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        palette_png(np.zeros((4, 4), np.int32), bytes(3))
    with pytest.raises(ValueError, match="palette"):
        palette_png(np.zeros((4, 4), np.uint8), bytes(4))
