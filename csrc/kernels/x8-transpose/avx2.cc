// AVX2-file x8-transpose: 16x16 byte tiles through four rounds of 128-bit unpacks (bytes,
// words, dwords, qwords). Tiles cover rows and cols in steps of 16, the last one in each
// dimension ending at the edge (overlapping its neighbour); under 16 rows or cols run scalar.
#include <immintrin.h>

#include "kernels/x8-transpose/x8-transpose.h"

namespace edgert {
namespace {

// y rows i0..i0+15, bytes j0..j0+15, from x rows j0..j0+15, bytes i0..i0+15.
void tile16(size_t x_stride, size_t y_stride, const uint8_t* x, uint8_t* y) {
  __m128i r[16], t[16];
  for (int k = 0; k < 16; ++k) r[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + k * x_stride));
  // Each round interleaves pairs of rows at twice the previous element size; after the four,
  // r[u] holds column u (row 0's byte first).
  for (int k = 0; k < 8; ++k) {
    t[k] = _mm_unpacklo_epi8(r[2 * k], r[2 * k + 1]);      // columns 0-7
    t[k + 8] = _mm_unpackhi_epi8(r[2 * k], r[2 * k + 1]);  // columns 8-15
  }
  for (int h = 0; h < 16; h += 8)
    for (int k = 0; k < 4; ++k) {
      r[h + k] = _mm_unpacklo_epi16(t[h + 2 * k], t[h + 2 * k + 1]);      // columns h+0..3
      r[h + k + 4] = _mm_unpackhi_epi16(t[h + 2 * k], t[h + 2 * k + 1]);  // columns h+4..7
    }
  for (int g = 0; g < 16; g += 4) {
    t[g] = _mm_unpacklo_epi32(r[g], r[g + 1]);      // columns g, g+1: rows 0-7
    t[g + 1] = _mm_unpackhi_epi32(r[g], r[g + 1]);  // columns g+2, g+3: rows 0-7
    t[g + 2] = _mm_unpacklo_epi32(r[g + 2], r[g + 3]);  // columns g, g+1: rows 8-15
    t[g + 3] = _mm_unpackhi_epi32(r[g + 2], r[g + 3]);  // columns g+2, g+3: rows 8-15
  }
  for (int g = 0; g < 16; g += 4) {
    r[g] = _mm_unpacklo_epi64(t[g], t[g + 2]);
    r[g + 1] = _mm_unpackhi_epi64(t[g], t[g + 2]);
    r[g + 2] = _mm_unpacklo_epi64(t[g + 1], t[g + 3]);
    r[g + 3] = _mm_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  for (int u = 0; u < 16; ++u) _mm_storeu_si128(reinterpret_cast<__m128i*>(y + u * y_stride), r[u]);
}

void transpose(size_t rows, size_t cols, size_t x_stride, size_t y_stride, const uint8_t* x,
               uint8_t* y) {
  if (rows < 16 || cols < 16) {
    return x8_transpose_ukernel__scalar.fn(rows, cols, x_stride, y_stride, x, y);
  }
  for (size_t i = 0;; i += 16) {
    i = i + 16 > rows ? rows - 16 : i;
    for (size_t j = 0;; j += 16) {
      j = j + 16 > cols ? cols - 16 : j;
      tile16(x_stride, y_stride, x + j * x_stride + i, y + i * y_stride + j);
      if (j + 16 == cols) break;
    }
    if (i + 16 == rows) break;
  }
}

}  // namespace

const X8TransposeUKernel x8_transpose_ukernel_16x16__avx2 = {"x8_transpose_ukernel_16x16__avx2",
                                                             transpose};

}  // namespace edgert
