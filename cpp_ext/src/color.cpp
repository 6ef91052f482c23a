// sRGB -> Lab conversion and the separable Gaussian pre-filter.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "clothparse/slic.hpp"
#include "internal.hpp"

namespace clothparse::slic {
namespace {

using detail::quantize;

// Halley iterations from a bit-trick guess; exact to float precision on [0.008856, 1.1] and
// vectorisable, unlike std::cbrt.
CPT_INLINE float cbrt_fast(float t) {
    // Exponent/3 guess through float arithmetic (integer division does not vectorise on SSE2).
    const float bits = static_cast<float>(__builtin_bit_cast(std::int32_t, t));
    float y = __builtin_bit_cast(float, static_cast<std::int32_t>(bits * (1.0f / 3.0f)) + 709921077);
    float y3 = y * y * y;
    y = y * (y3 + 2.0f * t) / (2.0f * y3 + t);
    y3 = y * y * y;
    return y * (y3 + 2.0f * t) / (2.0f * y3 + t);
}

CPT_INLINE float lab_f(float t) {
    const float c = cbrt_fast(t > 0.008856f ? t : 0.008856f);  // clamp keeps unused lanes finite
    return t > 0.008856f ? c : 7.787f * t + 16.0f / 116.0f;
}

// Linear RGB row (three planes) -> L, a, b row.
void linear_to_lab_row(const float* r, const float* g, const float* b, float* L, float* A,
                               float* B, int n) {
    // skimage's xyz_from_rgb rows divided by the D65 white point (0.95047, 1, 1.08883).
    const float m00 = 0.412453f / 0.95047f, m01 = 0.357580f / 0.95047f, m02 = 0.180423f / 0.95047f;
    const float m10 = 0.212671f, m11 = 0.715160f, m12 = 0.072169f;
    const float m20 = 0.019334f / 1.08883f, m21 = 0.119193f / 1.08883f, m22 = 0.950227f / 1.08883f;
    for (int i = 0; i < n; ++i) {
        const float fx = lab_f(m00 * r[i] + m01 * g[i] + m02 * b[i]);
        const float fy = lab_f(m10 * r[i] + m11 * g[i] + m12 * b[i]);
        const float fz = lab_f(m20 * r[i] + m21 * g[i] + m22 * b[i]);
        L[i] = quantize(116.0f * fy - 16.0f);
        A[i] = quantize(500.0f * (fx - fy));
        B[i] = quantize(200.0f * (fy - fz));
    }
}

void blur_rows_vertical(const float* in, float* out, int height, int width, int y,
                        const float* w, int radius) {
    // Taps in pairs over the whole row (not all taps over a register block: that reads
    // 2 * radius rows at once, which at 1024 px widths, rows 4 KiB apart, alias in L1 and ran
    // slower). Pairs halve the output's round trips; per pixel the operations and their order
    // are those of one tap at a time, so results are bit-identical.
    float* o = out + static_cast<std::ptrdiff_t>(y) * width;
    const float* c = in + static_cast<std::ptrdiff_t>(y) * width;
    auto row = [&](int k) {
        return in + static_cast<std::ptrdiff_t>(detail::reflect_index(y + k, height)) * width;
    };
    for (int x = 0; x < width; ++x) o[x] = w[0] * c[x];
    int k = 1;
    for (; k + 1 <= radius; k += 2) {
        const float* u1 = row(-k);
        const float* d1 = row(k);
        const float* u2 = row(-k - 1);
        const float* d2 = row(k + 1);
        const float w1 = w[k], w2 = w[k + 1];
        for (int x = 0; x < width; ++x) {
            const float t = o[x] + w1 * (u1[x] + d1[x]);
            o[x] = t + w2 * (u2[x] + d2[x]);
        }
    }
    for (; k <= radius; ++k) {
        const float* up = row(-k);
        const float* dn = row(k);
        const float wk = w[k];
        for (int x = 0; x < width; ++x) o[x] += wk * (up[x] + dn[x]);
    }
}

void blur_row_horizontal(const float* padded, float* out, int width, const float* w, int radius) {
    const float* c = padded + radius;
    // All taps over a 32-pixel register block, then one store: per pixel the same operations
    // in the same order as the tap-by-tap loop below (separate multiply and add, no FMA, as
    // the scalar code compiles without contraction), so results are bit-identical.
    int x0 = 0;
#if defined(__AVX512F__)
    const __m512 w0 = _mm512_set1_ps(w[0]);
    const __m512 scale = _mm512_set1_ps(4096.0f), inv = _mm512_set1_ps(1.0f / 4096.0f);
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    for (; x0 + 32 <= width; x0 += 32) {
        const float* cb = c + x0;
        __m512 a0 = _mm512_mul_ps(w0, _mm512_loadu_ps(cb));
        __m512 a1 = _mm512_mul_ps(w0, _mm512_loadu_ps(cb + 16));
        for (int k = 1; k <= radius; ++k) {
            const __m512 wk = _mm512_set1_ps(w[k]);
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(wk, _mm512_add_ps(_mm512_loadu_ps(cb - k),
                                                                   _mm512_loadu_ps(cb + k))));
            a1 = _mm512_add_ps(a1, _mm512_mul_ps(wk, _mm512_add_ps(_mm512_loadu_ps(cb + 16 - k),
                                                                   _mm512_loadu_ps(cb + 16 + k))));
        }
        // quantize(): ((v * 4096 + magic) - magic) / 4096, step by step.
        a0 = _mm512_mul_ps(_mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(a0, scale), magic), magic), inv);
        a1 = _mm512_mul_ps(_mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(a1, scale), magic), magic), inv);
        _mm512_storeu_ps(out + x0, a0);
        _mm512_storeu_ps(out + x0 + 16, a1);
    }
#elif defined(__AVX2__)
    const __m256 w0 = _mm256_set1_ps(w[0]);
    const __m256 scale = _mm256_set1_ps(4096.0f), inv = _mm256_set1_ps(1.0f / 4096.0f);
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    for (; x0 + 32 <= width; x0 += 32) {
        const float* cb = c + x0;
        __m256 a[4];
        for (int j = 0; j < 4; ++j) a[j] = _mm256_mul_ps(w0, _mm256_loadu_ps(cb + 8 * j));
        for (int k = 1; k <= radius; ++k) {
            const __m256 wk = _mm256_set1_ps(w[k]);
            for (int j = 0; j < 4; ++j)
                a[j] = _mm256_add_ps(a[j], _mm256_mul_ps(wk, _mm256_add_ps(_mm256_loadu_ps(cb + 8 * j - k),
                                                                           _mm256_loadu_ps(cb + 8 * j + k))));
        }
        for (int j = 0; j < 4; ++j)
            _mm256_storeu_ps(out + x0 + 8 * j,
                             _mm256_mul_ps(_mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(a[j], scale), magic), magic), inv));
    }
#endif
    for (int x = x0; x < width; ++x) out[x] = w[0] * c[x];
    for (int k = 1; k <= radius; ++k) {
        const float wk = w[k];
        for (int x = x0; x < width; ++x) out[x] += wk * (c[x - k] + c[x + k]);
    }
    for (int x = x0; x < width; ++x) out[x] = quantize(out[x]);
}

}  // namespace

void rgb8_to_lab(const std::uint8_t* rgb, int height, int width, std::ptrdiff_t row_stride,
                 float* L, float* A, float* B, int num_threads) {
    if (height < 1 || width < 1 || row_stride < 3LL * width)
        throw std::invalid_argument("rgb8_to_lab: bad image shape or stride");
    const int nt = detail::resolve_threads(num_threads);

    // skimage stretches [min, max] of all bytes to [0, 1] before the colour conversion.
    int lo = 255, hi = 0;
#pragma omp parallel for num_threads(nt) reduction(min : lo) reduction(max : hi) schedule(dynamic, 16)
    for (int y = 0; y < height; ++y) {
        const std::uint8_t* row = rgb + static_cast<std::ptrdiff_t>(y) * row_stride;
        int rlo = 255, rhi = 0;
        for (int i = 0; i < 3 * width; ++i) {
            rlo = std::min(rlo, static_cast<int>(row[i]));
            rhi = std::max(rhi, static_cast<int>(row[i]));
        }
        lo = std::min(lo, rlo);
        hi = std::max(hi, rhi);
    }
    float lut[256];
    for (int v = 0; v < 256; ++v) {
        double c = hi > lo ? (static_cast<double>(v) - lo) / (hi - lo) : 0.0;
        c = std::clamp(c, 0.0, 1.0);
        c = c > 0.04045 ? std::pow((c + 0.055) / 1.055, 2.4) : c / 12.92;
        lut[v] = static_cast<float>(c);
    }

#pragma omp parallel num_threads(nt)
    {
        std::vector<float> r(width), g(width), b(width);
#pragma omp for schedule(dynamic, 16)
        for (int y = 0; y < height; ++y) {
            const std::uint8_t* row = rgb + static_cast<std::ptrdiff_t>(y) * row_stride;
            for (int x = 0; x < width; ++x) {
                r[x] = lut[row[3 * x]];
                g[x] = lut[row[3 * x + 1]];
                b[x] = lut[row[3 * x + 2]];
            }
            const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(y) * width;
            linear_to_lab_row(r.data(), g.data(), b.data(), L + off, A + off, B + off, width);
        }
    }
}

void gaussian_blur(float* plane, int height, int width, double sigma, int num_threads) {
    std::vector<float> scratch(static_cast<std::size_t>(std::max(height, 0)) * std::max(width, 0));
    detail::gaussian_blur(plane, height, width, sigma, num_threads, scratch.data());
}

void detail::gaussian_blur(float* plane, int height, int width, double sigma, int num_threads,
                           float* tmp) {
    if (height < 1 || width < 1) throw std::invalid_argument("gaussian_blur: empty plane");
    if (!(sigma >= 0.0) || !std::isfinite(sigma))
        throw std::invalid_argument("gaussian_blur: sigma must be finite and >= 0");
    if (sigma == 0.0) return;
    const int radius = static_cast<int>(4.0 * sigma + 0.5);
    std::vector<float> w(radius + 1);
    double total = 0.0;
    std::vector<double> wd(radius + 1);
    for (int k = 0; k <= radius; ++k) {
        wd[k] = std::exp(-0.5 * k * k / (sigma * sigma));
        total += k == 0 ? wd[k] : 2.0 * wd[k];
    }
    for (int k = 0; k <= radius; ++k) w[k] = static_cast<float>(wd[k] / total);

    const int nt = detail::resolve_threads(num_threads);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(dynamic, 16)
        for (int y = 0; y < height; ++y)
            blur_rows_vertical(plane, tmp, height, width, y, w.data(), radius);
        std::vector<float> padded(static_cast<std::size_t>(width) + 2 * radius);
#pragma omp for schedule(dynamic, 16)
        for (int y = 0; y < height; ++y) {
            const float* src = tmp + static_cast<std::ptrdiff_t>(y) * width;
            // Only the margins need the (slow, modulo-based) reflection.
            std::copy(src, src + width, padded.begin() + radius);
            for (int i = 1; i <= radius; ++i) {
                padded[radius - i] = src[detail::reflect_index(-i, width)];
                padded[radius + width - 1 + i] = src[detail::reflect_index(width - 1 + i, width)];
            }
            blur_row_horizontal(padded.data(), plane + static_cast<std::ptrdiff_t>(y) * width,
                                width, w.data(), radius);
        }
    }
}

}  // namespace clothparse::slic
