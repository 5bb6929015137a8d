#include "kernels/f32-im2col/f32-im2col.h"

#include <cstring>

namespace edgert {

void f32_im2col_nhwc__scalar(const F32ConvGeometry& g, size_t p0, size_t p1, size_t c0,
                             size_t cg, const float* x, float* rows) {
  const size_t plane = static_cast<size_t>(g.oh * g.ow);
  for (size_t p = p0; p < p1; ++p) {
    const int64_t n = static_cast<int64_t>(p / plane);
    const int64_t rem = static_cast<int64_t>(p % plane);
    const int64_t oy = rem / g.ow, ox = rem % g.ow;
    const float* xn = x + static_cast<size_t>(n * g.h * g.w * g.c) + c0;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t iy = oy * g.sh - g.pt + ky * g.dh;
      for (int64_t kx = 0; kx < g.kw; ++kx, rows += cg) {
        const int64_t ix = ox * g.sw - g.pl + kx * g.dw;
        if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) {
          std::memset(rows, 0, cg * sizeof(float));
        } else {
          std::memcpy(rows, xn + static_cast<size_t>((iy * g.w + ix) * g.c), cg * sizeof(float));
        }
      }
    }
  }
}

}  // namespace edgert
