// q8-im2col: builds int16 A rows for q8-gemm from NHWC u8/i8 activations, one tile of output
// pixels at a time (the caller bounds the tile so the buffer stays in cache).
//
// Row p (pixel p = (n·OH + oh)·OW + ow of the output) holds, for tap (kh, kw) in row-major order,
// channels [c0, c0 + cg) of input pixel (oh·sh − pt + kh·dh, ow·sw − pl + kw·dw), or cg copies of
// x_zp where that pixel is outside the image; so K = KH·KW·cg, matching weights [M,KH,KW,C/group].
// Columns [K, kp) are zero. Rows are kp int16 apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace edgert {

// n bytes, no library call: im2col (and the conv engine's staging) copies a few channels at a
// time (3 for an RGB first layer), where a memcpy call costs more than the copy. Overlapping
// head/tail moves for n >= 4.
inline void q8_copy_small(uint8_t* dst, const uint8_t* src, size_t n) {
  if (n > 64) {
    std::memcpy(dst, src, n);
  } else if (n >= 16) {  // 16-byte moves, the last one overlapping (21 bytes for a 7x7 RGB stem)
    uint8_t last[16];
    std::memcpy(last, src + n - 16, 16);
    for (size_t i = 0; i + 16 < n; i += 16) std::memcpy(dst + i, src + i, 16);
    std::memcpy(dst + n - 16, last, 16);
  } else if (n >= 8) {
    uint64_t a, b;
    std::memcpy(&a, src, 8), std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8), std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, src, 4), std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4), std::memcpy(dst + n - 4, &b, 4);
  } else if (n >= 2) {
    uint16_t a, b;
    std::memcpy(&a, src, 2), std::memcpy(&b, src + n - 2, 2);
    std::memcpy(dst, &a, 2), std::memcpy(dst + n - 2, &b, 2);
  } else if (n == 1) {
    dst[0] = src[0];
  }
}

struct Q8ConvGeom {
  size_t h, w, c;        // input H, W, channels (the NHWC pixel stride)
  size_t oh, ow;         // output H, W
  size_t kh, kw;
  size_t sh, sw, dh, dw;
  size_t pt, pl;         // top, left padding (bottom/right only shape OH/OW)
};

// x is the whole NHWC input; rows [p0, p0 + rows) of the group whose channels start at c0.
void q8_im2col_u8(const Q8ConvGeom& g, const uint8_t* x, int32_t x_zp, size_t c0, size_t cg,
                  size_t p0, size_t rows, int16_t* a, size_t kp);
void q8_im2col_i8(const Q8ConvGeom& g, const int8_t* x, int32_t x_zp, size_t c0, size_t cg,
                  size_t p0, size_t rows, int16_t* a, size_t kp);

// Byte rows for q8-gemm-x8: the same row contents as above, kept 8-bit (u8 or i8 alike; pad is
// x_zp's byte), k = KH·KW·cg bytes per row, rows lda bytes apart, nothing written past k.
void q8_im2col_x8(const Q8ConvGeom& g, const uint8_t* x, uint8_t pad, size_t c0, size_t cg,
                  size_t p0, size_t rows, uint8_t* a, size_t lda);

}  // namespace edgert
