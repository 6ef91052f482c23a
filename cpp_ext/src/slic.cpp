// SLIC driver: Lab and blur, grid seeds, k-means passes over rows (kmeans_rows.cpp), connectivity.
#include <cmath>
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <vector>

#include "clothparse/slic.hpp"
#include "internal.hpp"

namespace clothparse::slic {
namespace {

using detail::Centre;
using detail::Planes;
using detail::kAcc;

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

    for (int iter = 0; iter < p.max_iter; ++iter) {
        const bool update = iter + 1 < p.max_iter;  // the last pass only labels
        for (int i = 0; i < grid.ny; ++i) {
            band_lo[i] = height;
            band_hi[i] = 0;
            for (int k = i * grid.nx; k < (i + 1) * grid.nx; ++k) {
                const Centre& c = centres[k];
                y_lo[k] = static_cast<int>(std::max(c.y - rad_y, 0.0f));
                y_hi[k] = static_cast<int>(std::min(c.y + rad_y, static_cast<float>(height)));
                x_lo[k] = static_cast<int>(std::max(c.x - rad_x, 0.0f));
                x_hi[k] = static_cast<int>(std::min(c.x + rad_x, static_cast<float>(width)));
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
            detail::RowScratch scratch;
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
                detail::assign_row(im, y, my_cand, ncand, centres.data(), x_lo.data(), x_hi.data(),
                                   weight, scratch, lab_row);
                if (update) detail::accumulate_row(im, y, lab_row, my_acc, scratch);
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
            queue_x.data(), nt);
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
