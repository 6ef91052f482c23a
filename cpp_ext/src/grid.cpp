// Seed lattice: the 2-D case of skimage.util.regular_grid on shape (1, height, width).
#include <cmath>
#include <stdexcept>

#include "clothparse/slic.hpp"

namespace clothparse::slic {
namespace {

int count_on_axis(int start, int step, int extent) {
    return start >= extent ? 0 : (extent - start + step - 1) / step;
}

}  // namespace

GridSpec regular_grid(int height, int width, long long n_points) {
    if (height < 1 || width < 1) throw std::invalid_argument("regular_grid: empty image");
    if (n_points < 1) throw std::invalid_argument("regular_grid: n_points must be >= 1");
    GridSpec g;
    const double area = static_cast<double>(height) * width;
    if (area <= static_cast<double>(n_points)) {  // every pixel is a seed
        g.ny = height;
        g.nx = width;
        return g;
    }
    // Square cells of side sqrt(area/n); if the short side is shorter than that, one line of
    // seeds runs along the long side (what regular_grid does when a dimension is too small).
    const double side = std::sqrt(area / static_cast<double>(n_points));
    const int short_side = std::min(height, width);
    double step_short = side, step_long = side;
    if (short_side < side) {
        step_short = short_side;
        step_long = static_cast<double>(std::max(height, width)) / static_cast<double>(n_points);
    }
    const double sy = height <= width ? step_short : step_long;
    const double sx = height <= width ? step_long : step_short;
    // numpy: starts from the unrounded step (floor division), steps rounded half to even.
    g.start_y = static_cast<int>(std::floor(sy / 2.0));
    g.start_x = static_cast<int>(std::floor(sx / 2.0));
    g.step_y = std::max(1, static_cast<int>(std::nearbyint(sy)));
    g.step_x = std::max(1, static_cast<int>(std::nearbyint(sx)));
    g.ny = count_on_axis(g.start_y, g.step_y, height);
    g.nx = count_on_axis(g.start_x, g.step_x, width);
    return g;
}

}  // namespace clothparse::slic
