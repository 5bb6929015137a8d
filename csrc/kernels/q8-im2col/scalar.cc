// Scalar q8-im2col. Pointwise convs take the same path: each row is one input pixel's channels.
#include <algorithm>
#include <cstring>

#include "kernels/q8-im2col/q8-im2col.h"

namespace edgert {
namespace {

// n bytes of value v, no library call for the few bytes a tap row of a narrow kernel holds (a
// memset call per padded tap row was a tenth of DS-CNN's 10x4 single-channel stem).
inline void fill_small(uint8_t* dst, uint8_t v, size_t n) {
  if (n > 16) {
    std::memset(dst, v, n);
    return;
  }
  const uint64_t pattern = 0x0101010101010101ull * v;
  if (n >= 8) {
    std::memcpy(dst, &pattern, 8), std::memcpy(dst + n - 8, &pattern, 8);
  } else if (n >= 4) {
    std::memcpy(dst, &pattern, 4), std::memcpy(dst + n - 4, &pattern, 4);
  } else {
    for (size_t i = 0; i < n; ++i) dst[i] = v;
  }
}


// One row of im2col_x8 for a pixel whose taps may fall in the padding.
void im2col_row(const Q8ConvGeom& g, const uint8_t* img, uint8_t pad, size_t cg, ptrdiff_t ih0,
                ptrdiff_t iw0, bool runs, uint8_t* dst) {
  const ptrdiff_t w = static_cast<ptrdiff_t>(g.w);
  for (size_t ky = 0; ky < g.kh; ++ky) {
    const ptrdiff_t ih = ih0 + static_cast<ptrdiff_t>(ky * g.dh);
    if (ih < 0 || ih >= static_cast<ptrdiff_t>(g.h)) {
      fill_small(dst, pad, g.kw * cg);
      dst += g.kw * cg;
      continue;
    }
    const uint8_t* src_row = img + static_cast<size_t>(ih) * g.w * g.c;
    if (runs) {  // taps [lo, hi) are inside the image
      const ptrdiff_t lo = std::max<ptrdiff_t>(0, -iw0);
      const ptrdiff_t hi = std::min<ptrdiff_t>(static_cast<ptrdiff_t>(g.kw), w - iw0);
      const size_t nlo = static_cast<size_t>(std::min<ptrdiff_t>(lo, g.kw)) * cg;
      fill_small(dst, pad, nlo);
      if (hi > lo)
        q8_copy_small(dst + nlo, src_row + static_cast<size_t>(iw0 + lo) * g.c,
                   static_cast<size_t>(hi - lo) * cg);
      const size_t done = hi > lo ? static_cast<size_t>(hi) * cg : nlo;
      fill_small(dst + done, pad, g.kw * cg - done);
      dst += g.kw * cg;
      continue;
    }
    for (size_t kx = 0; kx < g.kw; ++kx, dst += cg) {
      const ptrdiff_t iw = iw0 + static_cast<ptrdiff_t>(kx * g.dw);
      if (iw < 0 || iw >= w) {
        fill_small(dst, pad, cg);
        continue;
      }
      q8_copy_small(dst, src_row + static_cast<size_t>(iw) * g.c, cg);
    }
  }
}

// Tap rows of 8 to 16 bytes (3x3 or 5x5 over RGB): two overlapping 8-byte moves.
inline void copy_8_16(uint8_t* dst, const uint8_t* src, size_t n) {
  uint64_t a, b;
  std::memcpy(&a, src, 8), std::memcpy(&b, src + n - 8, 8);
  std::memcpy(dst, &a, 8), std::memcpy(dst + n - 8, &b, 8);
}

// With one group and no dilation, a tap row's in-image taps are consecutive input pixels: one
// copy of run·c bytes instead of one per tap. Pixels whose taps are all inside the image (most)
// go in runs along the output row: pointers step by a pixel, no per-pixel bounds or index math
// (a 224x224 RGB stem, 3x3 stride 2: 105 -> 41 us).
void im2col_x8(const Q8ConvGeom& geom, const uint8_t* x, uint8_t pad, size_t c0, size_t cg,
               size_t p0, size_t rows, uint8_t* a, size_t lda) {
  const Q8ConvGeom g = geom;  // a local copy: byte stores cannot alias it, so no reloads
  const bool runs = cg == g.c && g.dw == 1;
  size_t ow = p0 % g.ow, oh = (p0 / g.ow) % g.oh, n = p0 / (g.ow * g.oh);
  const ptrdiff_t w = static_cast<ptrdiff_t>(g.w);
  const size_t run = g.kw * cg, step = g.dh * g.w * g.c, pix = g.sw * g.c;
  for (size_t r = 0; r < rows;) {
    uint8_t* dst = a + r * lda;
    const uint8_t* img = x + n * g.h * g.w * g.c + c0;
    const ptrdiff_t ih0 = static_cast<ptrdiff_t>(oh * g.sh) - static_cast<ptrdiff_t>(g.pt);
    const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * g.sw) - static_cast<ptrdiff_t>(g.pl);
    const ptrdiff_t ih_last = ih0 + static_cast<ptrdiff_t>((g.kh - 1) * g.dh);
    size_t cnt = 1;
    if (runs && ih0 >= 0 && ih_last < static_cast<ptrdiff_t>(g.h) && iw0 >= 0 &&
        iw0 + static_cast<ptrdiff_t>(g.kw) <= w) {
      // This pixel and the next ones of its output row whose taps stay inside the image.
      const size_t inside = static_cast<size_t>(w - iw0 - static_cast<ptrdiff_t>(g.kw)) / g.sw + 1;
      cnt = std::min({rows - r, g.ow - ow, inside});
      const uint8_t* src = img + (static_cast<size_t>(ih0) * g.w + static_cast<size_t>(iw0)) * g.c;
      if (run >= 8 && run <= 16) {
        for (size_t j = 0; j < cnt; ++j, src += pix, dst += lda)
          for (size_t ky = 0; ky < g.kh; ++ky) copy_8_16(dst + ky * run, src + ky * step, run);
      } else if (run == 4) {  // 4 taps of one channel (DS-CNN's 10x4 stem), 2x2 over 1 channel..
        for (size_t j = 0; j < cnt; ++j, src += pix, dst += lda)
          for (size_t ky = 0; ky < g.kh; ++ky) {
            uint32_t v;
            std::memcpy(&v, src + ky * step, 4);
            std::memcpy(dst + ky * 4, &v, 4);
          }
      } else {
        for (size_t j = 0; j < cnt; ++j, src += pix, dst += lda)
          for (size_t ky = 0; ky < g.kh; ++ky) q8_copy_small(dst + ky * run, src + ky * step, run);
      }
    } else {
      im2col_row(g, img, pad, cg, ih0, iw0, runs, dst);
    }
    r += cnt, ow += cnt;
    if (ow == g.ow) {
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
