// Per-row kernels of a SLIC k-means pass: nearest-centre assignment and the centre sums.
//
// Distance (skimage's, multiplied through by compactness^2 so colour stays unscaled):
//   d = |Lab - Lab_k|^2 + (compactness / step)^2 * |(y, x) - (y_k, x_k)|^2
// Each centre searches Achanta's 2S x 2S window [c - S, c + S) (skimage searches 4S x 4S); at
// 2S = 32 px a window row is exactly two 16-lane vectors.
#include <algorithm>
#include <cmath>
#if defined(__AVX2__) || defined(__AVX512F__)
// GCC 12's conversion and reduction intrinsics raise a false -Wmaybe-uninitialized
// inside its own header; the warning is attributed to the header, so silence it there only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif
#include <limits>

#include "internal.hpp"

namespace clothparse::slic::detail {
namespace {

// Distance of pixels [x0, x1) of one row to centre k; keeps the nearer centre per pixel.
// Ties keep the earlier centre (strict <), as skimage does.
inline void scan_window(const float* Lr, const float* Ar, const float* Br, int x0, int x1,
                        const Centre& c, std::int32_t k, float wdy2, float weight, float* dist,
                        std::int32_t* lab) {
    int x = x0;
#if defined(__AVX512F__)
    const __m512 cl = _mm512_set1_ps(c.L), ca = _mm512_set1_ps(c.A), cb = _mm512_set1_ps(c.B);
    const __m512 cx = _mm512_set1_ps(c.x), w = _mm512_set1_ps(weight), base = _mm512_set1_ps(wdy2);
    const __m512i kk = _mm512_set1_epi32(k);
    const __m512 lane = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; x < x1; x += 16) {
        // The last vector is masked instead of finished by a scalar loop.
        const __mmask16 m = x1 - x >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (x1 - x)) - 1u);
        const __m512 dl = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, Lr + x), cl);
        const __m512 da = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, Ar + x), ca);
        const __m512 db = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, Br + x), cb);
        const __m512 dx = _mm512_sub_ps(_mm512_add_ps(_mm512_set1_ps(static_cast<float>(x)), lane), cx);
        __m512 d = _mm512_fmadd_ps(dl, dl, base);
        d = _mm512_fmadd_ps(da, da, d);
        d = _mm512_fmadd_ps(db, db, d);
        d = _mm512_fmadd_ps(_mm512_mul_ps(dx, dx), w, d);
        const __m512 old = _mm512_maskz_loadu_ps(m, dist + x);
        const __mmask16 better = _mm512_mask_cmp_ps_mask(m, d, old, _CMP_LT_OQ);
        _mm512_mask_storeu_ps(dist + x, better, d);
        _mm512_mask_storeu_epi32(lab + x, better, kk);
    }
#elif defined(__AVX2__) && defined(__FMA__)
    const __m256 cl = _mm256_set1_ps(c.L), ca = _mm256_set1_ps(c.A), cb = _mm256_set1_ps(c.B);
    const __m256 cx = _mm256_set1_ps(c.x), w = _mm256_set1_ps(weight), base = _mm256_set1_ps(wdy2);
    const __m256 kf = _mm256_castsi256_ps(_mm256_set1_epi32(k));
    const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    for (; x + 8 <= x1; x += 8) {
        const __m256 dl = _mm256_sub_ps(_mm256_loadu_ps(Lr + x), cl);
        const __m256 da = _mm256_sub_ps(_mm256_loadu_ps(Ar + x), ca);
        const __m256 db = _mm256_sub_ps(_mm256_loadu_ps(Br + x), cb);
        const __m256 dx = _mm256_sub_ps(_mm256_add_ps(_mm256_set1_ps(static_cast<float>(x)), lane), cx);
        __m256 d = _mm256_fmadd_ps(dl, dl, base);
        d = _mm256_fmadd_ps(da, da, d);
        d = _mm256_fmadd_ps(db, db, d);
        d = _mm256_fmadd_ps(_mm256_mul_ps(dx, dx), w, d);
        const __m256 old = _mm256_loadu_ps(dist + x);
        const __m256 better = _mm256_cmp_ps(d, old, _CMP_LT_OQ);
        _mm256_storeu_ps(dist + x, _mm256_blendv_ps(old, d, better));
        const __m256 oldk = _mm256_loadu_ps(reinterpret_cast<const float*>(lab + x));
        _mm256_storeu_ps(reinterpret_cast<float*>(lab + x), _mm256_blendv_ps(oldk, kf, better));
    }
#endif
    for (; x < x1; ++x) {
        const float dx = static_cast<float>(x) - c.x;
        const float dl = Lr[x] - c.L, da = Ar[x] - c.A, db = Br[x] - c.B;
#if defined(FP_FAST_FMAF)
        // Same operations as the SIMD paths, so SIMD and scalar pixels agree to the last bit.
        float d = std::fma(dl, dl, wdy2);
        d = std::fma(da, da, d);
        d = std::fma(db, db, d);
        d = std::fma(dx * dx, weight, d);
#else
        // No hardware FMA (and no SIMD path): std::fma would be a slow library call.
        const float d = dl * dl + wdy2 + da * da + db * db + dx * dx * weight;
#endif
        if (d < dist[x]) {
            dist[x] = d;
            lab[x] = k;
        }
    }
}

// Adds run [start, end) of row y, label k, to the centre sums; sl, sa, sb are exact sums of
// the run's quantized L, a, b in units of 2^-12.
CPT_INLINE void add_run(double* acc, std::int32_t k, int y, int start, int end, double sl,
                        double sa, double sb) {
    const double count = end - start;
    double* a = acc + static_cast<std::ptrdiff_t>(k) * kAcc;
    a[0] += count;
    a[1] += count * y;
    a[2] += count * (start + end - 1) * 0.5;
    a[3] += sl * (1.0 / 4096.0);
    a[4] += sa * (1.0 / 4096.0);
    a[5] += sb * (1.0 / 4096.0);
}

}  // namespace

// Windows one at a time over the row, keeping the best distance per pixel in scratch.dist.
void assign_row(const Planes& im, int y, const std::int32_t* cand, int ncand,
                const Centre* centres, const int* x_lo, const int* x_hi, float weight,
                RowScratch& scratch, std::int32_t* lab) {
    scratch.dist.assign(static_cast<std::size_t>(im.width), std::numeric_limits<float>::infinity());
    float* dist = scratch.dist.data();
    const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(y) * im.width;
    for (int c = 0; c < ncand; ++c) {
        const std::int32_t k = cand[c];
        const Centre& ck = centres[k];
        const float dy = static_cast<float>(y) - ck.y;
        scan_window(im.L + off, im.A + off, im.B + off, x_lo[k], x_hi[k], ck, k, weight * dy * dy,
                    weight, dist, lab);
    }
}

namespace {

// Inclusive prefix sums of the quantized values v * 4096 of three planes of `width` pixels,
// modulo 2^32: pre[c][i] is the sum of the first i pixels of plane c (pre[c][0] = 0), and a
// difference of two entries is an exact run sum (see accumulate_row). pre[c] has room for
// width + 17 entries.
void prefix_sums(const float* const rows[3], int width, std::uint32_t* const pre[3]) {
    for (int c = 0; c < 3; ++c) pre[c][0] = 0;
    int x = 0;
#if defined(__AVX512F__)
    const __m512 s4096 = _mm512_set1_ps(4096.0f);
    const __m512i zero = _mm512_setzero_si512(), lane15 = _mm512_set1_epi32(15);
    // The three planes in one loop: the carry from vector to vector is a chain of dependent
    // instructions, and three independent chains overlap.
    __m512i carry[3] = {zero, zero, zero};
    for (; x < width; x += 16) {
        const __mmask16 m = width - x >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (width - x)) - 1u);
        for (int c = 0; c < 3; ++c) {
            __m512i v = _mm512_cvttps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, rows[c] + x), s4096));
            // In-register inclusive scan: add the vector shifted up by 1, 2, 4, 8 lanes.
            v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 15));
            v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 14));
            v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 12));
            v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 8));
            v = _mm512_add_epi32(v, carry[c]);
            _mm512_storeu_si512(pre[c] + 1 + x, v);
            carry[c] = _mm512_permutexvar_epi32(lane15, v);
        }
    }
#elif defined(__AVX2__)
    const __m256 s4096 = _mm256_set1_ps(4096.0f);
    const __m256i zero = _mm256_setzero_si256(), lane7 = _mm256_set1_epi32(7);
    const __m256i low_last = _mm256_setr_epi32(0, 0, 0, 0, 3, 3, 3, 3);
    __m256i carry[3] = {zero, zero, zero};
    for (; x + 8 <= width; x += 8) {
        for (int c = 0; c < 3; ++c) {
            __m256i v = _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_loadu_ps(rows[c] + x), s4096));
            // Scan inside each 128-bit half, then add the low half's total to the high half.
            v = _mm256_add_epi32(v, _mm256_slli_si256(v, 4));
            v = _mm256_add_epi32(v, _mm256_slli_si256(v, 8));
            v = _mm256_add_epi32(v, _mm256_blend_epi32(zero, _mm256_permutevar8x32_epi32(v, low_last), 0xF0));
            v = _mm256_add_epi32(v, carry[c]);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(pre[c] + 1 + x), v);
            carry[c] = _mm256_permutevar8x32_epi32(v, lane7);
        }
    }
#endif
    for (int c = 0; c < 3; ++c) {
        std::uint32_t s = pre[c][x];
        for (int i = x; i < width; ++i) {
            s += static_cast<std::uint32_t>(static_cast<std::int32_t>(rows[c][i] * 4096.0f));
            pre[c][i + 1] = s;
        }
    }
}

// Exact sum of pixels [a, b) from prefix sums; longer runs than 4096 px in pieces.
CPT_INLINE double run_sum(const std::uint32_t* pc, int a, int b) {
    if (b - a <= 4096) return static_cast<double>(static_cast<std::int32_t>(pc[b] - pc[a]));
    double t = 0.0;
    for (int c0 = a; c0 < b; c0 += 4096)
        t += static_cast<std::int32_t>(pc[std::min(b, c0 + 4096)] - pc[c0]);
    return t;
}

}  // namespace

// Inputs are multiples of 2^-12 with |v| < 2^7 (L <= 100, |a|, |b| < 110), so v * 4096 is an
// exact integer and sums over at most 4096 pixels fit int32: sums are exact, longer runs are
// summed in 4096-pixel pieces. Exact sums make the centres independent of how rows are split
// and of the SIMD width. Prefix sums give each run's sums with one subtraction, instead of a
// horizontal reduction per run.
void accumulate_row(const Planes& im, int y, const std::int32_t* lab, double* acc,
                    RowScratch& scratch) {
    const int width = im.width;
    const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(y) * width;
    const float* const rows[3] = {im.L + off, im.A + off, im.B + off};
    const std::size_t stride = static_cast<std::size_t>(width) + 17;
    scratch.prefix.resize(3 * stride);
    std::uint32_t* const pre[3] = {scratch.prefix.data(), scratch.prefix.data() + stride,
                                   scratch.prefix.data() + 2 * stride};
    prefix_sums(rows, width, pre);
    int start = 0;
    auto end_run = [&](int end) {
        add_run(acc, lab[start], y, start, end, run_sum(pre[0], start, end),
                run_sum(pre[1], start, end), run_sum(pre[2], start, end));
        start = end;
    };
#if defined(__AVX512F__)
    // Run ends 16 labels at a time, as bits.
    for (int x = 0; x < width; x += 16) {
        const int left = width - x;  // pixels from x to the row's end
        const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
        const __mmask16 mr = left - 1 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (left - 1)) - 1u);
        const __m512i here = _mm512_maskz_loadu_epi32(m, lab + x);
        const __m512i right = _mm512_maskz_loadu_epi32(mr, lab + x + 1);
        unsigned ends = _mm512_mask_cmpneq_epi32_mask(mr, here, right);
        if (left <= 16) ends |= 1u << (left - 1);  // the row's last pixel ends a run
        while (ends) {
            const int end = x + __builtin_ctz(ends) + 1;
            ends &= ends - 1;
            end_run(end);
        }
    }
#else
    // Run ends collected branch-free (where labels change is unpredictable), then processed.
    scratch.ends.resize(static_cast<std::size_t>(width));
    std::int32_t* ends = scratch.ends.data();
    int n = 0;
    int x = 0;
#if defined(__AVX2__)
    // 8 labels at a time as a bit mask; the compare reads lab[x + 8], so stop one vector early.
    for (; x + 9 <= width; x += 8) {
        const __m256i here = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lab + x));
        const __m256i right = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lab + x + 1));
        unsigned bits = ~static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(here, right)))) & 0xFFu;
        while (bits) {
            ends[n++] = x + __builtin_ctz(bits) + 1;
            bits &= bits - 1;
        }
    }
#endif
    for (; x + 1 < width; ++x) {
        ends[n] = x + 1;
        n += lab[x] != lab[x + 1];
    }
    ends[n++] = width;
    for (int i = 0; i < n; ++i) end_run(ends[i]);
#endif
}

}  // namespace clothparse::slic::detail
