// nanobind glue: clothparse._slic.slic(image uint8 [H, W, 3] C-contiguous RGB) -> int32 [H, W].
// Argument checking with friendly messages happens in clothparse/parse/slic_native.py; the C++
// core re-checks and raises ValueError (std::invalid_argument) for anything it cannot handle.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>

#include "clothparse/slic.hpp"

namespace nb = nanobind;
namespace cs = clothparse::slic;

using ImageIn = nb::ndarray<const std::uint8_t, nb::shape<-1, -1, 3>, nb::c_contig, nb::device::cpu>;
using LabelsOut = nb::ndarray<nb::numpy, std::int32_t, nb::ndim<2>>;
using PlanesOut = nb::ndarray<nb::numpy, float, nb::ndim<3>>;

static void check_size(std::size_t h, std::size_t w) {
    if (h == 0 || w == 0 || h > (std::size_t{1} << 30) / w)
        throw nb::value_error("image must be non-empty and under 2^30 pixels");
}

static LabelsOut slic(ImageIn image, long long n_segments, double compactness, double sigma,
                      bool enforce_connectivity, double min_size_factor, double max_size_factor,
                      int max_iter, int num_threads) {
    const std::size_t h = image.shape(0), w = image.shape(1);
    check_size(h, w);
    auto* out = new std::int32_t[h * w];
    nb::capsule owner(out, [](void* p) noexcept { delete[] static_cast<std::int32_t*>(p); });
    cs::Params p;
    p.n_segments = n_segments;
    p.compactness = compactness;
    p.sigma = sigma;
    p.enforce_connectivity = enforce_connectivity;
    p.min_size_factor = min_size_factor;
    p.max_size_factor = max_size_factor;
    p.max_iter = max_iter;
    p.num_threads = num_threads;
    {
        nb::gil_scoped_release release;
        cs::segment(image.data(), static_cast<int>(h), static_cast<int>(w),
                    static_cast<std::ptrdiff_t>(3 * w), p, out);
    }
    return LabelsOut(out, {h, w}, owner);
}

// The Lab planes SLIC clusters on (after the optional blur): float32 [3, H, W] = L, a, b.
static PlanesOut lab_planes(ImageIn image, double sigma, int num_threads) {
    const std::size_t h = image.shape(0), w = image.shape(1);
    check_size(h, w);
    auto* out = new float[3 * h * w];
    nb::capsule owner(out, [](void* p) noexcept { delete[] static_cast<float*>(p); });
    {
        nb::gil_scoped_release release;
        const int H = static_cast<int>(h), W = static_cast<int>(w);
        cs::rgb8_to_lab(image.data(), H, W, static_cast<std::ptrdiff_t>(3 * w), out, out + h * w,
                        out + 2 * h * w, num_threads);
        for (int c = 0; c < 3; ++c) cs::gaussian_blur(out + c * h * w, H, W, sigma, num_threads);
    }
    return PlanesOut(out, {3, h, w}, owner);
}

NB_MODULE(_slic, m) {
    m.doc() = "Native SLIC superpixels (C++17, OpenMP); see clothparse.parse.slic_native.";
    const cs::Params d{};
    m.def("slic", &slic, nb::arg("image"), nb::arg("n_segments") = d.n_segments,
          nb::arg("compactness") = d.compactness, nb::arg("sigma") = d.sigma,
          nb::arg("enforce_connectivity") = d.enforce_connectivity,
          nb::arg("min_size_factor") = d.min_size_factor, nb::arg("max_size_factor") = d.max_size_factor,
          nb::arg("max_iter") = d.max_iter, nb::arg("num_threads") = d.num_threads,
          "Label an RGB uint8 [H, W, 3] C-contiguous image; returns int32 [H, W] labels "
          "0..S-1. Releases the GIL.");
    m.def("lab_planes", &lab_planes, nb::arg("image"), nb::arg("sigma"), nb::arg("num_threads") = 0,
          "float32 [3, H, W] L, a, b planes of the stretched, optionally blurred image.");
    nb::dict defaults;
    defaults["n_segments"] = d.n_segments;
    defaults["compactness"] = d.compactness;
    defaults["sigma"] = d.sigma;
    defaults["enforce_connectivity"] = d.enforce_connectivity;
    defaults["min_size_factor"] = d.min_size_factor;
    defaults["max_size_factor"] = d.max_size_factor;
    defaults["max_iter"] = d.max_iter;
    defaults["num_threads"] = d.num_threads;
    m.attr("DEFAULT_PARAMS") = defaults;
    m.def("default_threads", &cs::default_threads,
          "Threads used when num_threads is 0 (the OpenMP default: all cores or OMP_NUM_THREADS).");
}
