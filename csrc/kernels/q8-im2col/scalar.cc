// Scalar q8-im2col. Pointwise convs take the same path: each row is one input pixel's channels.
#include <algorithm>
#include <cstring>

#include "kernels/q8-im2col/q8-im2col.h"

namespace edgert {
namespace {

template <class T>
void im2col_x8(const Q8ConvGeom& g, const T* x, T pad, size_t c0, size_t cg, size_t p0,
               size_t rows, T* a, size_t lda) {
  size_t ow = p0 % g.ow, oh = (p0 / g.ow) % g.oh, n = p0 / (g.ow * g.oh);
  for (size_t r = 0; r < rows; ++r) {
    T* dst = a + r * lda;
    const T* img = x + n * g.h * g.w * g.c + c0;
    const ptrdiff_t ih0 = static_cast<ptrdiff_t>(oh * g.sh) - static_cast<ptrdiff_t>(g.pt);
    const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * g.sw) - static_cast<ptrdiff_t>(g.pl);
    for (size_t ky = 0; ky < g.kh; ++ky) {
      const ptrdiff_t ih = ih0 + static_cast<ptrdiff_t>(ky * g.dh);
      const bool row_in = ih >= 0 && ih < static_cast<ptrdiff_t>(g.h);
      for (size_t kx = 0; kx < g.kw; ++kx, dst += cg) {
        const ptrdiff_t iw = iw0 + static_cast<ptrdiff_t>(kx * g.dw);
        if (!row_in || iw < 0 || iw >= static_cast<ptrdiff_t>(g.w)) {
          std::memset(dst, pad, cg);
          continue;
        }
        std::memcpy(dst, img + (static_cast<size_t>(ih) * g.w + static_cast<size_t>(iw)) * g.c,
                    cg);
      }
    }
    if (++ow == g.ow) {
      ow = 0;
      if (++oh == g.oh) oh = 0, ++n;
    }
  }
}

template <class T>
void im2col(const Q8ConvGeom& g, const T* x, int32_t x_zp, size_t c0, size_t cg, size_t p0,
            size_t rows, int16_t* a, size_t kp) {
  const int16_t pad = static_cast<int16_t>(x_zp);
  const size_t k = g.kh * g.kw * cg;
  size_t ow = p0 % g.ow, oh = (p0 / g.ow) % g.oh, n = p0 / (g.ow * g.oh);
  for (size_t r = 0; r < rows; ++r) {
    int16_t* dst = a + r * kp;
    const T* img = x + n * g.h * g.w * g.c + c0;
    // Signed so taps above/left of the image compare below zero.
    const ptrdiff_t ih0 = static_cast<ptrdiff_t>(oh * g.sh) - static_cast<ptrdiff_t>(g.pt);
    const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * g.sw) - static_cast<ptrdiff_t>(g.pl);
    for (size_t ky = 0; ky < g.kh; ++ky) {
      const ptrdiff_t ih = ih0 + static_cast<ptrdiff_t>(ky * g.dh);
      const bool row_in = ih >= 0 && ih < static_cast<ptrdiff_t>(g.h);
      for (size_t kx = 0; kx < g.kw; ++kx, dst += cg) {
        const ptrdiff_t iw = iw0 + static_cast<ptrdiff_t>(kx * g.dw);
        if (!row_in || iw < 0 || iw >= static_cast<ptrdiff_t>(g.w)) {
          std::fill(dst, dst + cg, pad);
          continue;
        }
        const T* src = img + (static_cast<size_t>(ih) * g.w + static_cast<size_t>(iw)) * g.c;
        for (size_t ch = 0; ch < cg; ++ch) dst[ch] = src[ch];
      }
    }
    std::memset(a + r * kp + k, 0, (kp - k) * sizeof(int16_t));
    if (++ow == g.ow) {
      ow = 0;
      if (++oh == g.oh) oh = 0, ++n;
    }
  }
}

}  // namespace

void q8_im2col_x8(const Q8ConvGeom& g, const uint8_t* x, uint8_t pad, size_t c0, size_t cg,
                  size_t p0, size_t rows, uint8_t* a, size_t lda) {
  im2col_x8(g, x, pad, c0, cg, p0, rows, a, lda);
}
void q8_im2col_u8(const Q8ConvGeom& g, const uint8_t* x, int32_t x_zp, size_t c0, size_t cg,
                  size_t p0, size_t rows, int16_t* a, size_t kp) {
  im2col(g, x, x_zp, c0, cg, p0, rows, a, kp);
}
void q8_im2col_i8(const Q8ConvGeom& g, const int8_t* x, int32_t x_zp, size_t c0, size_t cg,
                  size_t p0, size_t rows, int16_t* a, size_t kp) {
  im2col(g, x, x_zp, c0, cg, p0, rows, a, kp);
}

}  // namespace edgert
