// Connectivity enforcement: every output label is one 4-connected component.
//
// Raster scan; each unvisited pixel seeds a span (scanline) flood fill over its 4-connected
// same-label pixels, which touches every pixel a constant number of times in sequential order.
#include <algorithm>
#include <stdexcept>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "clothparse/slic.hpp"
#include "internal.hpp"

namespace clothparse::slic {

int enforce_connectivity(const std::int32_t* labels, int height, int width, long long min_size,
                         long long max_size, std::int32_t* out) {
    const std::size_t n = static_cast<std::size_t>(std::max(height, 0)) * std::max(width, 0);
    std::vector<std::int32_t> qy(n + 1), qx(n + 1);
    return detail::enforce_connectivity(labels, height, width, min_size, max_size, out, qy.data(),
                                        qx.data());
}

namespace {

// Pushes the first pixel of every run of unvisited `lab` pixels in row y, columns [x0, x1].
inline void push_runs(const std::int32_t* labels, const std::int32_t* out, int y, int width,
                      int x0, int x1, std::int32_t lab, std::vector<std::pair<int, int>>& stack) {
    const std::int32_t* lr = labels + static_cast<std::ptrdiff_t>(y) * width;
    const std::int32_t* orow = out + static_cast<std::ptrdiff_t>(y) * width;
    int x = x0;
    bool in_run = false;
#if defined(__AVX512F__)
    // Open pixels as a bit mask per 16 columns; a run starts at an open bit whose left
    // neighbour is closed. Same pushes, same order as the scalar loop, without its branch
    // mispredictions.
    const __m512i vlab = _mm512_set1_epi32(lab), zero = _mm512_setzero_si512();
    for (; x <= x1; x += 16) {
        const int n = std::min(16, x1 - x + 1);
        const __mmask16 valid = n == 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u);
        const __mmask16 same = _mm512_mask_cmpeq_epi32_mask(valid, _mm512_maskz_loadu_epi32(valid, lr + x), vlab);
        const __mmask16 open = _mm512_mask_cmplt_epi32_mask(same, _mm512_maskz_loadu_epi32(same, orow + x), zero);
        const unsigned bits = open;
        unsigned starts = bits & ~((bits << 1) | (in_run ? 1u : 0u)) & 0xFFFFu;
        while (starts) {
            stack.emplace_back(y, x + __builtin_ctz(starts));
            starts &= starts - 1;
        }
        in_run = (bits >> (n - 1)) & 1u;
    }
#endif
    for (; x <= x1; ++x) {
        const bool open = lr[x] == lab && orow[x] < 0;
        if (open && !in_run) stack.emplace_back(y, x);
        in_run = open;
    }
}

}  // namespace

int detail::enforce_connectivity(const std::int32_t* labels, int height, int width,
                                 long long min_size, long long max_size, std::int32_t* out,
                                 std::int32_t* span_y, std::int32_t* span_x0) {
    if (height < 1 || width < 1) throw std::invalid_argument("enforce_connectivity: empty image");
    if (max_size < 1) max_size = 1;
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(height) * width;
    std::fill(out, out + n, -1);
    // Spans of the current component: rows in span_y, starts in span_x0, lengths in span_len.
    std::vector<std::int32_t> span_len;
    std::vector<std::pair<int, int>> stack;
    std::int32_t next = 0;

    for (std::ptrdiff_t p = 0; p < n; ++p) {
        if (out[p] >= 0) continue;
        const std::int32_t lab = labels[p];
        long long size = 0;
        std::size_t spans = 0;
        span_len.clear();
        stack.assign(1, {static_cast<int>(p / width), static_cast<int>(p % width)});
        while (!stack.empty() && size < max_size) {
            const auto [y, x] = stack.back();
            stack.pop_back();
            const std::ptrdiff_t row = static_cast<std::ptrdiff_t>(y) * width;
            if (out[row + x] >= 0) continue;
            int xl = x, xr = x;
            while (xl > 0 && labels[row + xl - 1] == lab && out[row + xl - 1] < 0) --xl;
            while (xr + 1 < width && labels[row + xr + 1] == lab && out[row + xr + 1] < 0) ++xr;
            // Cut at max_size, keeping x inside the span so the piece stays connected.
            const long long budget = max_size - size;
            if (xr - xl + 1 > budget) {
                xl = static_cast<int>(std::max<long long>(xl, x - budget + 1));
                xr = static_cast<int>(xl + budget - 1);
            }
            std::fill(out + row + xl, out + row + xr + 1, next);
            span_y[spans] = y;
            span_x0[spans] = xl;
            span_len.push_back(xr - xl + 1);
            ++spans;
            size += xr - xl + 1;
            if (y > 0) push_runs(labels, out, y - 1, width, xl, xr, lab, stack);
            if (y + 1 < height) push_runs(labels, out, y + 1, width, xl, xr, lab, stack);
        }
        // A small piece joins the component left of (or above) its first pixel, which is earlier
        // in raster order and so already final; the very first component keeps its own label.
        if (size < min_size && p > 0) {
            const std::int32_t adjacent = p % width > 0 ? out[p - 1] : out[p - width];
            for (std::size_t s = 0; s < spans; ++s)
                std::fill_n(out + static_cast<std::ptrdiff_t>(span_y[s]) * width + span_x0[s],
                            span_len[s], adjacent);
        } else {
            ++next;
        }
    }
    return next;
}

}  // namespace clothparse::slic
