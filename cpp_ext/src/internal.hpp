// Helpers shared by the SLIC translation units; not part of the public header.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif


// Helpers called from the per-row loops must be inlined, or the loop keeps a call and does not
// vectorise.
#if defined(__GNUC__)
#define CPT_INLINE inline __attribute__((always_inline))
#else
#define CPT_INLINE inline
#endif

namespace clothparse::slic::detail {

inline int resolve_threads(int requested) {
#ifdef _OPENMP
    return requested > 0 ? requested : omp_get_max_threads();
#else
    (void)requested;
    return 1;
#endif
}

inline int thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// scipy.ndimage 'reflect' (half-sample symmetric) index into [0, n), any overshoot.
inline int reflect_index(int i, int n) {
    const int period = 2 * n;
    int m = i % period;
    if (m < 0) m += period;
    return m < n ? m : period - 1 - m;
}

// Rounds to a multiple of 2^-12: sums of such floats are exact in double, so per-thread partial
// sums add up to the same centre whatever the thread count.
CPT_INLINE float quantize(float v) {
    const float magic = 12582912.0f;  // 1.5 * 2^23 forces rounding to an integer
    return ((v * 4096.0f + magic) - magic) * (1.0f / 4096.0f);
}

// One SLIC centre: position (row, column) and mean Lab colour.
struct Centre {
    float y, x, L, A, B;
};

constexpr int kAcc = 6;  // per-centre sums: count, y, x, L, a, b

// The Lab image as three float32 planes [height*width], row-major.
struct Planes {
    const float* L;
    const float* A;
    const float* B;
    int height, width;
};

// Per-thread buffers of assign_row, kept across rows so they are allocated once per pass.
struct RowScratch {
    std::vector<float> dist;
    std::vector<std::uint32_t> prefix;
    std::vector<std::int32_t> ends;
};

// Labels row y [width] with the nearest of the candidate centres `cand` (ncand indices in
// increasing order), each searched in columns [x_lo[k], x_hi[k]); ties keep the earlier centre,
// pixels no window covers keep their label.
void assign_row(const Planes& im, int y, const std::int32_t* cand, int ncand,
                const Centre* centres, const int* x_lo, const int* x_hi, float weight,
                RowScratch& scratch, std::int32_t* lab);

// Adds row y's pixels to their centres' sums: acc[k * kAcc + {count, y, x, L, a, b}].
void accumulate_row(const Planes& im, int y, const std::int32_t* lab, double* acc,
                    RowScratch& scratch);

// Variants of the public functions that work in caller-owned scratch memory, so segment() can
// reuse buffers between calls instead of faulting in fresh pages for every image.
void gaussian_blur(float* plane, int height, int width, double sigma, int num_threads,
                   float* scratch /* [height*width] */);
int enforce_connectivity(const std::int32_t* labels, int height, int width, long long min_size,
                         long long max_size, std::int32_t* out, std::int32_t* scratch_a,
                         std::int32_t* scratch_b /* each [height*width] */, int num_threads);

// The reference labelling: a span flood fill from each unvisited pixel in raster order. Same
// contract as enforce_connectivity (max_size >= 1); enforce_connectivity falls back to it
// when a component must be cut. Scratch arrays [height*width] each.
int flood_fill_components(const std::int32_t* labels, int height, int width, long long min_size,
                          long long max_size, std::int32_t* out, std::int32_t* span_y,
                          std::int32_t* span_x0);

}  // namespace clothparse::slic::detail
