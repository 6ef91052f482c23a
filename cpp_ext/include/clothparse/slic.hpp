// Native SLIC superpixels (Achanta et al. 2012) with scikit-image's parameter semantics.
//
// Images are RGB uint8, interleaved, row-major [height, width, 3] with a row stride in bytes.
// Labels are int32, row-major [height, width], values 0..count-1 with every value used.
// All functions throw std::invalid_argument for arguments outside their documented range.
#pragma once

#include <cstddef>
#include <cstdint>

namespace clothparse::slic {

// Defaults: the seed's SLIC settings, whose home is clothparse.parse.superpixels.SlicParams
// (the binding exposes these as clothparse._slic.DEFAULT_PARAMS; tests/test_slic_native.py
// checks that the two agree).
struct Params {
    long long n_segments = 900;      // requested number of superpixels (>= 1)
    double compactness = 20.0;       // colour/space balance (> 0), as in skimage.segmentation.slic
    double sigma = 2.0;              // Gaussian pre-filter width in pixels (>= 0), on the Lab image
    int max_iter = 10;               // k-means assignment passes (>= 1)
    bool enforce_connectivity = true;
    double min_size_factor = 0.5;    // segments smaller than this * (H*W/S) are merged into a neighbour
    double max_size_factor = 3.0;    // connected components are cut at this * (H*W/S) pixels
    int num_threads = 0;             // OpenMP threads; 0 = OpenMP default, fewer when busy
};

// Seed lattice of skimage.util.regular_grid((1, height, width), n): centres at
// (start_y + i*step_y, start_x + j*step_x) for i < ny, j < nx.
struct GridSpec {
    int start_y = 0, start_x = 0;
    int step_y = 1, step_x = 1;
    int ny = 0, nx = 0;
    long long count() const { return static_cast<long long>(ny) * nx; }
};

GridSpec regular_grid(int height, int width, long long n_points);

// sRGB (D65, 2° observer) -> CIE Lab after stretching the image's [min, max] byte range to [0, 1],
// as skimage's slic does. Writes three float32 planes [height*width]: L in [0, 100], a and b in
// about [-128, 128].
void rgb8_to_lab(const std::uint8_t* rgb, int height, int width, std::ptrdiff_t row_stride,
                 float* L, float* A, float* B, int num_threads);

// In-place separable Gaussian of one float32 plane [height*width]; scipy.ndimage 'reflect'
// boundary, kernel radius int(4*sigma + 0.5). sigma <= 0 leaves the plane unchanged.
void gaussian_blur(float* plane, int height, int width, double sigma, int num_threads);

// Relabels 4-connected components of `labels` in raster order; a component smaller than
// min_size joins the label of an adjacent, earlier component; a component is cut after
// max_size pixels. Writes contiguous labels to `out` and returns how many there are. Runs on
// the OpenMP default thread count; the result does not depend on it.
int enforce_connectivity(const std::int32_t* labels, int height, int width, long long min_size,
                         long long max_size, std::int32_t* out);

// Full pipeline: Lab, blur, SLIC k-means, connectivity. Writes `labels` [height*width] and returns
// the number of superpixels. Deterministic: the result does not depend on num_threads.
int segment(const std::uint8_t* rgb, int height, int width, std::ptrdiff_t row_stride,
            const Params& params, std::int32_t* labels);

// Threads segment() uses when Params::num_threads is 0 (1 when built without OpenMP).
int default_threads();

}  // namespace clothparse::slic
