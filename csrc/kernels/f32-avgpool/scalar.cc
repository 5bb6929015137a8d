#include "kernels/f32-avgpool/f32-avgpool.h"

#include <algorithm>

namespace edgert {

void f32_avgpool_row__scalar(const F32ConvGeometry& g, int64_t pb, int64_t pr,
                             bool count_include_pad, size_t n, size_t oy, const float* x,
                             float* y) {
  const size_t c = static_cast<size_t>(g.c);
  const float* xn = x + n * static_cast<size_t>(g.h * g.w) * c;
  const int64_t h0 = static_cast<int64_t>(oy) * g.sh - g.pt;
  const int64_t h1 = std::min(h0 + g.kh * g.dh, g.h + pb);
  for (int64_t ox = 0; ox < g.ow; ++ox, y += c) {
    const int64_t w0 = ox * g.sw - g.pl;
    const int64_t w1 = std::min(w0 + g.kw * g.dw, g.w + pr);
    std::fill(y, y + c, 0.0f);
    int64_t taps = 0;
    for (int64_t iy = h0; iy < h1; iy += g.dh) {
      if (iy < 0 || iy >= g.h) continue;
      for (int64_t ix = w0; ix < w1; ix += g.dw) {
        if (ix < 0 || ix >= g.w) continue;
        const float* xp = xn + static_cast<size_t>(iy * g.w + ix) * c;
        for (size_t j = 0; j < c; ++j) y[j] += xp[j];
        ++taps;
      }
    }
    if (taps == 0) continue;
    const int64_t count = count_include_pad
                              ? (1 + (h1 - h0 - 1) / g.dh) * (1 + (w1 - w0 - 1) / g.dw)
                              : taps;
    const float d = static_cast<float>(count);
    for (size_t j = 0; j < c; ++j) y[j] /= d;
  }
}

}  // namespace edgert
