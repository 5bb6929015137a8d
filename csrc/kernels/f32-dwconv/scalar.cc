#include "kernels/f32-dwconv/f32-dwconv.h"

#include <algorithm>
#include <cstdint>

namespace edgert {

void f32_dwconv_minmax_row__scalar(const F32ConvGeometry& g, size_t n, size_t oy, const float* x,
                                   const float* w, const float* bias, float* y, float lo,
                                   float hi) {
  const size_t c = static_cast<size_t>(g.c);
  const float* xn = x + n * static_cast<size_t>(g.h * g.w) * c;
  for (int64_t ox = 0; ox < g.ow; ++ox, y += c) {
    std::fill(y, y + c, 0.0f);  // the output row doubles as the accumulator
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t iy = static_cast<int64_t>(oy) * g.sh - g.pt + ky * g.dh;
      if (iy < 0 || iy >= g.h) continue;
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        const int64_t ix = ox * g.sw - g.pl + kx * g.dw;
        if (ix < 0 || ix >= g.w) continue;
        const float* __restrict xp = xn + static_cast<size_t>(iy * g.w + ix) * c;
        const float* __restrict wp = w + static_cast<size_t>(ky * g.kw + kx) * c;
        for (size_t j = 0; j < c; ++j) y[j] += xp[j] * wp[j];
      }
    }
    for (size_t j = 0; j < c; ++j) y[j] = std::min(std::max(y[j] + bias[j], lo), hi);
  }
}

}  // namespace edgert
