// Connectivity enforcement: every output label is one 4-connected component.
//
// Fast path: the label image as horizontal runs; runs of equal label that overlap between
// adjacent rows are joined with union-find, whose root (the smallest run index) is the
// component's first pixel in raster order. Components are then numbered and small ones merged
// in raster order, exactly as the flood fill below does. The flood fill (a span fill from each
// unvisited pixel in raster order) stays as the reference and the path for images where some
// component exceeds max_size, whose cut depends on the fill order.
#include <algorithm>
#include <limits>
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
                                        qx.data(), detail::resolve_threads(0));
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

int detail::flood_fill_components(const std::int32_t* labels, int height, int width,
                                  long long min_size, long long max_size, std::int32_t* out,
                                  std::int32_t* span_y, std::int32_t* span_x0) {
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

namespace {

// Union-find over run indices; a root is the smallest index of its set, so parents only point
// to smaller indices.
CPT_INLINE std::int32_t find_root(std::int32_t* parent, std::int32_t x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

CPT_INLINE void unite(std::int32_t* parent, std::int32_t a, std::int32_t b) {
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a < b) parent[b] = a;
    else if (b < a) parent[a] = b;
}

// Joins the runs of row y with the overlapping runs of equal label in row y - 1. Both rows'
// runs tile [0, width), so advancing whichever run ends first visits exactly the overlapping pairs.
void join_rows(const std::int32_t* labels, int width, int y, const std::int32_t* run_x,
               const std::int32_t* row_first, std::int32_t* parent) {
    const std::int32_t* up = labels + static_cast<std::ptrdiff_t>(y - 1) * width;
    const std::int32_t* dn = labels + static_cast<std::ptrdiff_t>(y) * width;
    std::int32_t i = row_first[y - 1], i_end = row_first[y];
    std::int32_t j = row_first[y], j_end = row_first[y + 1];
    while (i < i_end && j < j_end) {
        const std::int32_t xi = run_x[i], xj = run_x[j];
        if (up[xi] == dn[xj]) unite(parent, i, j);
        const std::int32_t ei = i + 1 < i_end ? run_x[i + 1] : width;
        const std::int32_t ej = j + 1 < j_end ? run_x[j + 1] : width;
        i += ei <= ej;
        j += ej <= ei;
    }
}

// The run-based labelling; returns -1 (output untouched) when some component exceeds max_size.
int label_runs(const std::int32_t* labels, int height, int width, long long min_size,
               long long max_size, std::int32_t* out, std::int32_t* run_x_buf,
               std::int32_t* parent, int nt) {
    // Run starts of row y are written at run_x_buf[y * width ...], then packed.
    std::vector<std::int32_t> row_first(static_cast<std::size_t>(height) + 1, 0);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int y = 0; y < height; ++y) {
        const std::int32_t* lr = labels + static_cast<std::ptrdiff_t>(y) * width;
        std::int32_t* rx = run_x_buf + static_cast<std::ptrdiff_t>(y) * width;
        int c = 1;
        rx[0] = 0;
        // Branch-free append: run boundaries are unpredictable.
        for (int x = 1; x < width; ++x) {
            rx[c] = x;
            c += lr[x] != lr[x - 1];
        }
        row_first[y + 1] = c;
    }
    for (int y = 0; y < height; ++y) row_first[y + 1] += row_first[y];
    const std::int32_t runs = row_first[height];
    // Packing moves runs only towards lower addresses, so it is done in place, in row order.
    for (int y = 1; y < height; ++y) {
        const std::int32_t* src = run_x_buf + static_cast<std::ptrdiff_t>(y) * width;
        std::copy(src, src + (row_first[y + 1] - row_first[y]), run_x_buf + row_first[y]);
    }
    const std::int32_t* run_x = run_x_buf;

    for (std::int32_t r = 0; r < runs; ++r) parent[r] = r;
    // Each thread joins the rows inside its own band (disjoint runs, so no races); the seams
    // between bands are joined afterwards.
    const int bands = std::max(1, std::min(nt, height / 64));
#pragma omp parallel for num_threads(bands) schedule(static, 1)
    for (int b = 0; b < bands; ++b) {
        const int y0 = static_cast<int>(static_cast<long long>(height) * b / bands);
        const int y1 = static_cast<int>(static_cast<long long>(height) * (b + 1) / bands);
        for (int y = std::max(1, y0 + 1); y < y1; ++y) join_rows(labels, width, y, run_x, row_first.data(), parent);
    }
    for (int b = 1; b < bands; ++b)
        join_rows(labels, width, static_cast<int>(static_cast<long long>(height) * b / bands), run_x,
                  row_first.data(), parent);

    // parent[r] <= r, so one pass in index order points every run at its root.
    std::vector<std::int64_t> size(runs, 0);
    for (std::int32_t r = 0; r < runs; ++r) parent[r] = parent[parent[r]];
    for (int y = 0; y < height; ++y)
        for (std::int32_t r = row_first[y]; r < row_first[y + 1]; ++r) {
            const std::int32_t end = r + 1 < row_first[y + 1] ? run_x[r + 1] : width;
            size[parent[r]] += end - run_x[r];
        }
    for (std::int32_t r = 0; r < runs; ++r)
        if (size[r] > max_size) return -1;

    // Number components in raster order of their first pixel (their root run's start); a small
    // one takes the final label of the pixel left of (or above) that pixel, as the flood fill does.
    std::vector<std::int32_t> final_label(runs);
    std::int32_t next = 0;
    for (int y = 0; y < height; ++y)
        for (std::int32_t r = row_first[y]; r < row_first[y + 1]; ++r) {
            if (parent[r] != r) {
                final_label[r] = final_label[parent[r]];
            } else if (size[r] < min_size && r > 0) {
                final_label[r] = run_x[r] > 0 ? final_label[r - 1] : final_label[row_first[y - 1]];
            } else {
                final_label[r] = next++;
            }
        }

#pragma omp parallel for num_threads(nt) schedule(static)
    for (int y = 0; y < height; ++y) {
        std::int32_t* orow = out + static_cast<std::ptrdiff_t>(y) * width;
        for (std::int32_t r = row_first[y]; r < row_first[y + 1]; ++r) {
            const std::int32_t end = r + 1 < row_first[y + 1] ? run_x[r + 1] : width;
            std::fill(orow + run_x[r], orow + end, final_label[r]);
        }
    }
    return next;
}

}  // namespace

int detail::enforce_connectivity(const std::int32_t* labels, int height, int width,
                                 long long min_size, long long max_size, std::int32_t* out,
                                 std::int32_t* scratch_a, std::int32_t* scratch_b, int num_threads) {
    if (height < 1 || width < 1) throw std::invalid_argument("enforce_connectivity: empty image");
    if (static_cast<long long>(height) * width > std::numeric_limits<std::int32_t>::max())
        throw std::invalid_argument("enforce_connectivity: image over 2^31 pixels");
    if (max_size < 1) max_size = 1;
    const int nt = detail::resolve_threads(num_threads);
    const int n = label_runs(labels, height, width, min_size, max_size, out, scratch_a, scratch_b, nt);
    if (n >= 0) return n;
    return flood_fill_components(labels, height, width, min_size, max_size, out, scratch_a,
                                 scratch_b);
}

}  // namespace clothparse::slic
