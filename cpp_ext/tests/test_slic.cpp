// C++ unit tests for the native SLIC, run by ctest. A tiny harness: CHECK records failures and
// main() returns non-zero if any check failed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "clothparse/slic.hpp"
#include "../src/internal.hpp"

namespace cs = clothparse::slic;

static int g_failures = 0;
#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ++g_failures;                                                       \
        }                                                                       \
    } while (0)

using Image = std::vector<std::uint8_t>;
using Labels = std::vector<std::int32_t>;

static Image random_blocks(int h, int w, int block, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    const int by = (h + block - 1) / block, bx = (w + block - 1) / block;
    std::vector<std::uint8_t> colours(static_cast<std::size_t>(by) * bx * 3);
    for (auto& c : colours) c = static_cast<std::uint8_t>(byte(rng));
    Image img(static_cast<std::size_t>(h) * w * 3);
    std::normal_distribution<double> noise(0.0, 6.0);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int c = 0; c < 3; ++c) {
                const double v = colours[((y / block) * bx + x / block) * 3 + c] + noise(rng);
                img[(static_cast<std::size_t>(y) * w + x) * 3 + c] =
                    static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
            }
    return img;
}

static Labels run(const Image& img, int h, int w, cs::Params p) {
    Labels out(static_cast<std::size_t>(h) * w, -7);
    const int n = cs::segment(img.data(), h, w, 3LL * w, p, out.data());
    CHECK(n >= 1);
    return out;
}

// Labels are 0..n-1, each used at least once.
static bool contiguous(const Labels& lab) {
    const int mx = *std::max_element(lab.begin(), lab.end());
    if (*std::min_element(lab.begin(), lab.end()) != 0) return false;
    std::vector<char> seen(mx + 1, 0);
    for (auto v : lab) seen[v] = 1;
    return std::all_of(seen.begin(), seen.end(), [](char s) { return s != 0; });
}

// Every label forms exactly one 4-connected component (plain flood fill).
static bool each_label_connected(const Labels& lab, int h, int w) {
    const int n = *std::max_element(lab.begin(), lab.end()) + 1;
    std::vector<int> components(n, 0);
    std::vector<char> seen(lab.size(), 0);
    std::vector<int> stack;
    for (int s = 0; s < h * w; ++s) {
        if (seen[s]) continue;
        ++components[lab[s]];
        seen[s] = 1;
        stack.assign(1, s);
        while (!stack.empty()) {
            const int q = stack.back();
            stack.pop_back();
            const int y = q / w, x = q % w;
            const int nb[4][2] = {{y, x + 1}, {y, x - 1}, {y + 1, x}, {y - 1, x}};
            for (auto& c : nb) {
                if (c[0] < 0 || c[0] >= h || c[1] < 0 || c[1] >= w) continue;
                const int m = c[0] * w + c[1];
                if (!seen[m] && lab[m] == lab[q]) {
                    seen[m] = 1;
                    stack.push_back(m);
                }
            }
        }
    }
    return std::all_of(components.begin(), components.end(), [](int c) { return c == 1; });
}

static void test_regular_grid_matches_skimage() {
    // Expected values from skimage.util.regular_grid((1, H, W), n).
    struct Case { int h, w; long long n; int sy, ss_y, sx, ss_x, ny, nx; };
    const Case cases[] = {
        {400, 600, 900, 8, 16, 8, 16, 25, 37}, {768, 1024, 900, 14, 30, 14, 30, 26, 34},
        {5, 200, 10, 2, 5, 10, 20, 1, 10},     {200, 5, 10, 10, 20, 2, 5, 10, 1},
        {3, 3, 100, 0, 1, 0, 1, 3, 3},         {1, 1, 1, 0, 1, 0, 1, 1, 1},
        {10, 10, 1, 5, 10, 5, 10, 1, 1},       {7, 13, 4, 2, 5, 2, 5, 1, 3},
        {1, 50, 5, 0, 1, 5, 10, 1, 5},         {100, 100, 2, 35, 71, 35, 71, 1, 1},
    };
    for (const auto& c : cases) {
        const cs::GridSpec g = cs::regular_grid(c.h, c.w, c.n);
        CHECK(g.start_y == c.sy && g.step_y == c.ss_y && g.start_x == c.sx && g.step_x == c.ss_x);
        CHECK(g.ny == c.ny && g.nx == c.nx);
    }
}

static void test_lab_reference_colours() {
    // Pure red/green/blue/white/black: the stretch is the identity since 0 and 255 occur.
    const Image img = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0};
    std::vector<float> L(5), A(5), B(5);
    cs::rgb8_to_lab(img.data(), 1, 5, 15, L.data(), A.data(), B.data(), 1);
    // skimage.color.rgb2lab values.
    const double want[5][3] = {{53.2406, 80.0923, 67.2028},  {87.7351, -86.1830, 83.1797},
                               {32.2957, 79.1856, -107.8573}, {100.0, -0.0025, 0.0047},
                               {0.0, 0.0, 0.0}};
    for (int i = 0; i < 5; ++i) {
        CHECK(std::fabs(L[i] - want[i][0]) < 2e-3);
        CHECK(std::fabs(A[i] - want[i][1]) < 2e-3);
        CHECK(std::fabs(B[i] - want[i][2]) < 2e-3);
    }
}

static void test_gaussian_constant_and_mass() {
    const int h = 9, w = 11;
    std::vector<float> plane(h * w, 3.25f);
    cs::gaussian_blur(plane.data(), h, w, 2.0, 1);
    for (float v : plane) CHECK(std::fabs(v - 3.25f) < 1e-3f);
    // An impulse far from the borders keeps its mass (kernel sums to one).
    const int H = 41, W = 41;
    std::vector<float> imp(H * W, 0.0f);
    imp[20 * W + 20] = 100.0f;
    cs::gaussian_blur(imp.data(), H, W, 2.0, 2);
    double total = 0.0;
    for (float v : imp) total += v;
    CHECK(std::fabs(total - 100.0) < 0.05);
    CHECK(imp[20 * W + 20] > imp[20 * W + 22] && imp[20 * W + 22] > imp[20 * W + 25]);
    CHECK(std::fabs(imp[18 * W + 20] - imp[22 * W + 20]) < 1e-4f);
}

static void test_contiguous_cover_connected() {
    for (unsigned seed = 0; seed < 4; ++seed) {
        const int h = 61 + 17 * seed, w = 83 - 9 * seed;
        const Image img = random_blocks(h, w, 7 + seed, seed);
        cs::Params p;
        p.n_segments = 40 + 30 * seed;
        p.compactness = seed % 2 ? 1.0 : 20.0;
        p.sigma = seed * 0.7;
        const Labels lab = run(img, h, w, p);
        CHECK(std::none_of(lab.begin(), lab.end(), [](int v) { return v < 0; }));
        CHECK(contiguous(lab));
        CHECK(each_label_connected(lab, h, w));
    }
}

static void test_uniform_image_is_grid() {
    const int h = 60, w = 90;
    const Image img(static_cast<std::size_t>(h) * w * 3, 128);
    cs::Params p;
    p.n_segments = 54;  // 10x10 cells: 6 x 9
    const Labels lab = run(img, h, w, p);
    const cs::GridSpec g = cs::regular_grid(h, w, p.n_segments);
    CHECK(g.ny == 6 && g.nx == 9);
    CHECK(*std::max_element(lab.begin(), lab.end()) + 1 == g.ny * g.nx);
    // With no colour the clusters stay near the 10x10 grid cells (ties shift borders by a pixel).
    const int n = g.ny * g.nx;
    std::vector<int> count(n, 0), y0(n, h), y1(n, -1), x0(n, w), x1(n, -1);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const int k = lab[y * w + x];
            ++count[k];
            y0[k] = std::min(y0[k], y), y1[k] = std::max(y1[k], y);
            x0[k] = std::min(x0[k], x), x1[k] = std::max(x1[k], x);
        }
    for (int k = 0; k < n; ++k) {
        CHECK(count[k] >= 80 && count[k] <= 125);
        CHECK(y1[k] - y0[k] + 1 >= 9 && y1[k] - y0[k] + 1 <= 12);
        CHECK(x1[k] - x0[k] + 1 >= 9 && x1[k] - x0[k] + 1 <= 12);
    }
}

static void test_deterministic_and_thread_independent() {
    const int h = 97, w = 131;
    const Image img = random_blocks(h, w, 9, 42);
    cs::Params p;
    p.n_segments = 120;
    p.sigma = 1.0;
    p.num_threads = 1;
    const Labels a = run(img, h, w, p);
    const Labels b = run(img, h, w, p);
    p.num_threads = 2;
    const Labels c = run(img, h, w, p);
    p.num_threads = 3;
    const Labels d = run(img, h, w, p);
    CHECK(a == b);
    CHECK(a == c);
    CHECK(a == d);
}

static void test_large_image_buffers_released_and_reused() {
    // Over 2 Mpx the per-thread buffers are freed on return; a second call must not care.
    const int h = 1500, w = 1450;
    const Image big = random_blocks(h, w, 40, 5);
    const Image small = random_blocks(50, 60, 8, 6);
    cs::Params p;
    p.n_segments = 300;
    p.max_iter = 3;
    const Labels a = run(big, h, w, p);
    const Labels s1 = run(small, 50, 60, p);
    const Labels b = run(big, h, w, p);
    const Labels s2 = run(small, 50, 60, p);
    CHECK(a == b);
    CHECK(s1 == s2);
    CHECK(contiguous(a));
}

static void test_tiny_images_and_many_segments() {
    const int shapes[][2] = {{1, 1}, {1, 2}, {2, 1}, {1, 37}, {37, 1}, {2, 2}, {3, 5}, {8, 8}};
    for (const auto& s : shapes) {
        const int h = s[0], w = s[1];
        const Image img = random_blocks(h, w, 2, h * 100 + w);
        for (long long n : {1LL, 4LL, 1000LL}) {
            for (bool conn : {true, false}) {
                cs::Params p;
                p.n_segments = n;
                p.sigma = 2.0;
                p.enforce_connectivity = conn;
                const Labels lab = run(img, h, w, p);
                CHECK(contiguous(lab));
                if (conn) CHECK(each_label_connected(lab, h, w));
                const int count = *std::max_element(lab.begin(), lab.end()) + 1;
                CHECK(count <= h * w);
            }
        }
    }
    // n_segments > pixels: every pixel is a seed; without merging each pixel stays its own label
    // when all colours differ strongly.
    const Image img = {0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 255};
    cs::Params p;
    p.n_segments = 50;
    p.enforce_connectivity = false;
    const Labels lab = run(img, 2, 2, p);
    CHECK((std::set<int>(lab.begin(), lab.end()).size() == 4));
}

static void test_enforce_connectivity_cases() {
    // Label 1 appears in two separate pieces; the 1-pixel piece of label 2 is below min_size.
    const int h = 4, w = 6;
    const Labels in = {0, 0, 1, 1, 0, 0,
                       0, 0, 1, 1, 0, 0,
                       3, 3, 3, 3, 3, 3,
                       1, 1, 3, 2, 3, 1};
    Labels out(h * w);
    const int n = cs::enforce_connectivity(in.data(), h, w, 2, 100, out.data());
    // Components in raster order: {0 left}, {1 top}, {0 right}, {3}, {1 bottom-left},
    // and the 1-pixel pieces {2} and {1 bottom-right} merged into their neighbour 3.
    const Labels want = {0, 0, 1, 1, 2, 2,
                         0, 0, 1, 1, 2, 2,
                         3, 3, 3, 3, 3, 3,
                         4, 4, 3, 3, 3, 3};
    CHECK(n == 5);
    CHECK(out == want);
    // max_size cuts a large component into pieces, each still connected.
    const Labels flat(h * w, 7);
    const int m = cs::enforce_connectivity(flat.data(), h, w, 0, 5, out.data());
    CHECK(m >= 5);
    CHECK(contiguous(out) && each_label_connected(out, h, w));
    std::vector<int> sizes(m, 0);
    for (auto v : out) ++sizes[v];
    CHECK(*std::max_element(sizes.begin(), sizes.end()) <= 5);
}

// The run-based connectivity pass against the flood fill it replaced, on random label images
// (blocky, so components of many shapes and sizes) with and without the max_size cut, which
// sends the fast path to the flood fill.
static void test_connectivity_fast_path_matches_flood_fill() {
    std::mt19937 rng(12345);
    for (int trial = 0; trial < 300; ++trial) {
        const int h = 1 + static_cast<int>(rng() % 70), w = 1 + static_cast<int>(rng() % 70);
        const int n_labels = 1 + static_cast<int>(rng() % 12);
        const int block = 1 + static_cast<int>(rng() % 6);
        Labels in(static_cast<std::size_t>(h) * w);
        const int by = (h + block - 1) / block, bx = (w + block - 1) / block;
        std::vector<int> cell(static_cast<std::size_t>(by) * bx);
        for (auto& c : cell) c = static_cast<int>(rng() % n_labels);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                in[static_cast<std::size_t>(y) * w + x] =
                    rng() % 10 == 0 ? static_cast<int>(rng() % n_labels) : cell[(y / block) * bx + x / block];
        const long long min_size = static_cast<long long>(rng() % 20);
        const long long max_size = trial % 3 == 0 ? 1 + static_cast<long long>(rng() % 40)
                                                  : static_cast<long long>(h) * w;
        const std::size_t n = in.size();
        Labels fast(n, -5), ref(n, -5), a(n), b(n), c(n), d(n);
        const int threads = 1 + trial % 3;
        const int nf = cs::detail::enforce_connectivity(in.data(), h, w, min_size, max_size,
                                                        fast.data(), a.data(), b.data(), threads);
        const int nr = cs::detail::flood_fill_components(in.data(), h, w, min_size, max_size,
                                                         ref.data(), c.data(), d.data());
        CHECK(nf == nr);
        CHECK(fast == ref);
    }
}

static void test_bad_arguments_throw() {
    const Image img(12, 0);
    Labels out(4);
    auto throws = [&](cs::Params p) {
        try {
            cs::segment(img.data(), 2, 2, 6, p, out.data());
        } catch (const std::invalid_argument&) {
            return true;
        }
        return false;
    };
    cs::Params p;
    p.n_segments = 0;
    CHECK(throws(p));
    p = {};
    p.compactness = 0.0;
    CHECK(throws(p));
    p = {};
    p.sigma = -1.0;
    CHECK(throws(p));
    p = {};
    p.max_iter = 0;
    CHECK(throws(p));
    p = {};
    p.min_size_factor = 4.0;
    CHECK(throws(p));
    p = {};
    CHECK(!throws(p));
}

int main() {
    test_regular_grid_matches_skimage();
    test_lab_reference_colours();
    test_gaussian_constant_and_mass();
    test_contiguous_cover_connected();
    test_uniform_image_is_grid();
    test_deterministic_and_thread_independent();
    test_tiny_images_and_many_segments();
    test_large_image_buffers_released_and_reused();
    test_enforce_connectivity_cases();
    test_connectivity_fast_path_matches_flood_fill();
    test_bad_arguments_throw();
    if (g_failures) {
        std::fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    std::printf("all SLIC unit tests passed\n");
    return 0;
}
