// SLIC k-means: grid seeds, windowed assignment fused with the centre accumulation, connectivity.
//
// Distance (skimage's, multiplied through by compactness^2 so colour stays unscaled):
//   d = |Lab - Lab_k|^2 + (compactness / step)^2 * |(y, x) - (y_k, x_k)|^2
// Each centre searches a (2*step+1)^2 window (Achanta's 2S x 2S region; skimage searches 4S x 4S).
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
#include <stdexcept>
#include <vector>

#include "clothparse/slic.hpp"
#include "internal.hpp"

namespace clothparse::slic {
namespace {

struct Centre {
    float y, x, L, A, B;
};

constexpr int kAcc = 6;  // per-centre sums: count, y, x, L, a, b

struct Planes {
    const float* L;
    const float* A;
    const float* B;
    int height, width;
};

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

// One row against every centre whose window covers it.
void assign_row(const Planes& im, int y, const std::int32_t* cand, int ncand,
                const Centre* centres, const int* x_lo, const int* x_hi, float weight, float* dist,
                std::int32_t* lab) {
    const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(y) * im.width;
    for (int x = 0; x < im.width; ++x) dist[x] = std::numeric_limits<float>::infinity();
    for (int c = 0; c < ncand; ++c) {
        const std::int32_t k = cand[c];
        const Centre& ck = centres[k];
        const float dy = static_cast<float>(y) - ck.y;
        scan_window(im.L + off, im.A + off, im.B + off, x_lo[k], x_hi[k], ck, k, weight * dy * dy,
                    weight, dist, lab);
    }
}


// Adds one row's pixels to their centres' sums, one flush per run of equal labels.
void accumulate_row(const Planes& im, int y, const std::int32_t* lab, double* acc) {
    const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(y) * im.width;
    const float* Lr = im.L + off;
    const float* Ar = im.A + off;
    const float* Br = im.B + off;
    int x = 0;
    while (x < im.width) {
        const std::int32_t k = lab[x];
        const int start = x;
        while (x < im.width && lab[x] == k) ++x;
        // Inputs are multiples of 2^-12 below 2^7, so v * 4096 is an exact integer and the
        // integer sums are exact (runs are at most a row; rows under 2^12 px never overflow
        // int32, longer ones are split).
        double sl = 0.0, sa = 0.0, sb = 0.0;
        for (int i0 = start; i0 < x; i0 += 4096) {
            const int i1 = std::min(x, i0 + 4096);
            std::int32_t il = 0, ia = 0, ib = 0;
#if defined(__AVX512F__)
            // Runs are short (about a superpixel's width): masked vectors, no scalar epilogue.
            // Integer lanes wrap modulo 2^32, so the reduced sum is exact whenever the true
            // sum fits int32 (it does, see above).
            {
                const __m512 s4096 = _mm512_set1_ps(4096.0f);
                __m512i vl = _mm512_setzero_si512(), va = vl, vb = vl;
                for (int i = i0; i < i1; i += 16) {
                    const __mmask16 m = i1 - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (i1 - i)) - 1u);
                    vl = _mm512_add_epi32(vl, _mm512_cvttps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, Lr + i), s4096)));
                    va = _mm512_add_epi32(va, _mm512_cvttps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, Ar + i), s4096)));
                    vb = _mm512_add_epi32(vb, _mm512_cvttps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, Br + i), s4096)));
                }
                il = _mm512_reduce_add_epi32(vl);
                ia = _mm512_reduce_add_epi32(va);
                ib = _mm512_reduce_add_epi32(vb);
            }
#else
            for (int i = i0; i < i1; ++i) {
                il += static_cast<std::int32_t>(Lr[i] * 4096.0f);
                ia += static_cast<std::int32_t>(Ar[i] * 4096.0f);
                ib += static_cast<std::int32_t>(Br[i] * 4096.0f);
            }
#endif
            sl += il;
            sa += ia;
            sb += ib;
        }
        sl *= 1.0 / 4096.0;
        sa *= 1.0 / 4096.0;
        sb *= 1.0 / 4096.0;
        const double count = x - start;
        double* a = acc + static_cast<std::ptrdiff_t>(k) * kAcc;
        a[0] += count;
        a[1] += count * y;
        a[2] += count * (start + x - 1) * 0.5;
        a[3] += sl;
        a[4] += sa;
        a[5] += sb;
    }
}

void check_params(int height, int width, std::ptrdiff_t row_stride, const Params& p) {
    if (height < 1 || width < 1) throw std::invalid_argument("slic: image must be at least 1x1");
    if (row_stride < 3LL * width) throw std::invalid_argument("slic: row stride too small");
    if (p.n_segments < 1) throw std::invalid_argument("slic: n_segments must be >= 1");
    if (!(p.compactness > 0.0) || !std::isfinite(p.compactness))
        throw std::invalid_argument("slic: compactness must be finite and > 0");
    if (!(p.sigma >= 0.0) || !std::isfinite(p.sigma))
        throw std::invalid_argument("slic: sigma must be finite and >= 0");
    if (p.max_iter < 1) throw std::invalid_argument("slic: max_iter must be >= 1");
    if (!(p.min_size_factor >= 0.0) || !(p.max_size_factor >= p.min_size_factor) ||
        !std::isfinite(p.max_size_factor))
        throw std::invalid_argument("slic: need 0 <= min_size_factor <= max_size_factor");
    if (p.num_threads < 0) throw std::invalid_argument("slic: num_threads must be >= 0");
}

}  // namespace

int default_threads() { return detail::resolve_threads(0); }

int segment(const std::uint8_t* rgb, int height, int width, std::ptrdiff_t row_stride,
            const Params& p, std::int32_t* labels) {
    check_params(height, width, row_stride, p);
    // num_threads 0: the OpenMP default (all cores, or OMP_NUM_THREADS), so timings are
    // predictable; callers on an oversubscribed machine pass an explicit count.
    const int nt = detail::resolve_threads(p.num_threads);
    const std::size_t npix = static_cast<std::size_t>(height) * width;

    // Large buffers live per calling thread and are reused: fresh pages cost more than the work.
    // Buffers for images over ~2 Mpx (about 60 MB) are released again on return.
    thread_local std::vector<float> lab_planes, blur_scratch;
    thread_local std::vector<std::int32_t> raw, queue_y, queue_x;
    struct ReleaseIfLarge {
        bool large;
        ~ReleaseIfLarge() {
            if (!large) return;
            lab_planes = {};
            blur_scratch = {};
            raw = {};
            queue_y = {};
            queue_x = {};
        }
    } release{npix > (std::size_t{1} << 21)};
    lab_planes.resize(3 * npix);
    raw.resize(npix);
    // OpenMP workers see their own (empty) thread_locals: only plain pointers go into regions.
    std::int32_t* const raw_labels = raw.data();
    float* L = lab_planes.data();
    float* A = L + npix;
    float* B = A + npix;
    rgb8_to_lab(rgb, height, width, row_stride, L, A, B, nt);
    if (p.sigma > 0.0) {
        blur_scratch.resize(npix);
        for (float* plane : {L, A, B})
            detail::gaussian_blur(plane, height, width, p.sigma, nt, blur_scratch.data());
    }
    const Planes im{L, A, B, height, width};

    const GridSpec grid = regular_grid(height, width, p.n_segments);
    const int K = static_cast<int>(grid.count());
    // skimage: spatial scale from the requested grid, search window from the grid of K seeds.
    const double step = std::max({1.0, static_cast<double>(grid.step_y), static_cast<double>(grid.step_x)});
    const GridSpec wgrid = regular_grid(height, width, K);
    const int rad_y = std::max(1, wgrid.step_y), rad_x = std::max(1, wgrid.step_x);
    const float weight = static_cast<float>((p.compactness / step) * (p.compactness / step));

    std::vector<Centre> centres(K);
    for (int i = 0; i < grid.ny; ++i)
        for (int j = 0; j < grid.nx; ++j) {
            const int y = grid.start_y + i * grid.step_y, x = grid.start_x + j * grid.step_x;
            const std::size_t at = static_cast<std::size_t>(y) * width + x;
            centres[i * grid.nx + j] = {static_cast<float>(y), static_cast<float>(x), L[at], A[at], B[at]};
        }

    // Labels of pixels no window reaches stay those of the nearest seed cell.
    {
        std::vector<std::int32_t> cell_x(width);
        for (int x = 0; x < width; ++x)
            cell_x[x] = std::clamp(static_cast<int>(std::floor((x - grid.start_x) / double(grid.step_x) + 0.5)), 0, grid.nx - 1);
        for (int y = 0; y < height; ++y) {
            const int iy = std::clamp(static_cast<int>(std::floor((y - grid.start_y) / double(grid.step_y) + 0.5)), 0, grid.ny - 1);
            std::int32_t* row = raw_labels + static_cast<std::size_t>(y) * width;
            for (int x = 0; x < width; ++x) row[x] = iy * grid.nx + cell_x[x];
        }
    }

    std::vector<int> x_lo(K), x_hi(K), y_lo(K), y_hi(K);
    // Rows covered by any window of a seed row's centres: each image row then finds its
    // candidates (in index order) by checking only the seed rows whose band covers it, inside
    // the parallel loop, instead of building per-row lists serially.
    std::vector<int> band_lo(grid.ny), band_hi(grid.ny);
    std::vector<std::int32_t> cand(static_cast<std::size_t>(nt) * K);
    std::vector<double> acc(static_cast<std::size_t>(nt) * K * kAcc);
    std::vector<float> dist(static_cast<std::size_t>(nt) * width);

    for (int iter = 0; iter < p.max_iter; ++iter) {
        const bool update = iter + 1 < p.max_iter;  // the last pass only labels
        for (int i = 0; i < grid.ny; ++i) {
            band_lo[i] = height;
            band_hi[i] = 0;
            for (int k = i * grid.nx; k < (i + 1) * grid.nx; ++k) {
                const Centre& c = centres[k];
                y_lo[k] = static_cast<int>(std::max(c.y - rad_y, 0.0f));
                y_hi[k] = static_cast<int>(std::min(c.y + rad_y + 1.0f, static_cast<float>(height)));
                x_lo[k] = static_cast<int>(std::max(c.x - rad_x, 0.0f));
                x_hi[k] = static_cast<int>(std::min(c.x + rad_x + 1.0f, static_cast<float>(width)));
                band_lo[i] = std::min(band_lo[i], y_lo[k]);
                band_hi[i] = std::max(band_hi[i], y_hi[k]);
            }
        }
        std::fill(acc.begin(), acc.end(), 0.0);

        // Dynamic chunks of rows: on a busy machine a descheduled thread then holds up at most
        // one chunk instead of half the image.
#pragma omp parallel num_threads(nt)
        {
            const int tid = detail::thread_id();
            double* my_acc = acc.data() + static_cast<std::size_t>(tid) * K * kAcc;
            float* my_dist = dist.data() + static_cast<std::size_t>(tid) * width;
            std::int32_t* my_cand = cand.data() + static_cast<std::size_t>(tid) * K;
#pragma omp for schedule(dynamic, 16)
            for (int y = 0; y < height; ++y) {
                int ncand = 0;
                for (int i = 0; i < grid.ny; ++i) {
                    if (y < band_lo[i] || y >= band_hi[i]) continue;
                    // Branch-free append: which centres qualify changes unpredictably.
                    for (int k = i * grid.nx; k < (i + 1) * grid.nx; ++k) {
                        my_cand[ncand] = k;
                        ncand += (y >= y_lo[k]) & (y < y_hi[k]);
                    }
                }
                std::int32_t* lab_row = raw_labels + static_cast<std::size_t>(y) * width;
                assign_row(im, y, my_cand, ncand, centres.data(), x_lo.data(), x_hi.data(), weight,
                           my_dist, lab_row);
                if (update) accumulate_row(im, y, lab_row, my_acc);
            }
        }
        if (!update) break;
        // Sums are exact (quantized inputs), so reducing in thread order is order-independent.
        for (int t = 1; t < nt; ++t)
            for (std::size_t i = 0; i < static_cast<std::size_t>(K) * kAcc; ++i)
                acc[i] += acc[static_cast<std::size_t>(t) * K * kAcc + i];
        for (int k = 0; k < K; ++k) {
            const double* a = acc.data() + static_cast<std::size_t>(k) * kAcc;
            if (a[0] <= 0.0) continue;  // an emptied centre keeps its place and may win pixels back
            const double inv = 1.0 / a[0];
            centres[k] = {static_cast<float>(a[1] * inv), static_cast<float>(a[2] * inv),
                          static_cast<float>(a[3] * inv), static_cast<float>(a[4] * inv),
                          static_cast<float>(a[5] * inv)};
        }
    }

    if (p.enforce_connectivity) {
        const double segment_size = static_cast<double>(npix) / K;
        queue_y.resize(npix);
        queue_x.resize(npix);
        return detail::enforce_connectivity(
            raw.data(), height, width, static_cast<long long>(p.min_size_factor * segment_size),
            static_cast<long long>(p.max_size_factor * segment_size), labels, queue_y.data(),
            queue_x.data());
    }
    // Without connectivity enforcement, still hand out contiguous labels (unused centres dropped).
    std::vector<std::int32_t> remap(K, -1);
    for (std::size_t i = 0; i < npix; ++i) remap[raw[i]] = 0;
    std::int32_t next = 0;
    for (int k = 0; k < K; ++k)
        if (remap[k] == 0) remap[k] = next++;
    for (std::size_t i = 0; i < npix; ++i) labels[i] = remap[raw[i]];
    return next;
}

}  // namespace clothparse::slic
