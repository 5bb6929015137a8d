// x8-lut for AVX2: see x8-lut.h.
#include <immintrin.h>

#include <cstring>

#include "kernels/x8-lut/x8-lut.h"

namespace edgert {

namespace {

// y = table[x] for 32 bytes: rows[h] holds entries 16h..16h+15 in both lanes.
inline __m256i lookup32(__m256i x, const __m256i* rows) {
  const __m256i lo = _mm256_and_si256(x, _mm256_set1_epi8(0x0F));
  // Level 1: pairs of rows told apart by bit 4 (moved to each byte's sign bit for vpblendvb).
  const __m256i b4 = _mm256_slli_epi16(x, 3), b5 = _mm256_slli_epi16(x, 2);
  const __m256i b6 = _mm256_slli_epi16(x, 1);
  __m256i l1[8];
  for (int k = 0; k < 8; ++k)
    l1[k] = _mm256_blendv_epi8(_mm256_shuffle_epi8(rows[2 * k], lo),
                               _mm256_shuffle_epi8(rows[2 * k + 1], lo), b4);
  __m256i l2[4];
  for (int k = 0; k < 4; ++k) l2[k] = _mm256_blendv_epi8(l1[2 * k], l1[2 * k + 1], b5);
  const __m256i l3a = _mm256_blendv_epi8(l2[0], l2[1], b6);
  const __m256i l3b = _mm256_blendv_epi8(l2[2], l2[3], b6);
  return _mm256_blendv_epi8(l3a, l3b, x);  // bit 7
}

void lut_rows_avx2(size_t nrows, size_t n, const uint8_t* x, size_t x_stride,
                   const uint8_t* table, uint8_t* y, size_t y_stride) {
  __m256i rows[16];
  for (int h = 0; h < 16; ++h)
    rows[h] = _mm256_broadcastsi128_si256(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * h)));
  for (size_t r = 0; r < nrows; ++r, x += x_stride, y += y_stride) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), lookup32(v, rows));
    }
    if (i < n) {  // the tail through a 32-byte buffer (x and y may be the same)
      alignas(32) uint8_t buf[32] = {};
      std::memcpy(buf, x + i, n - i);
      const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(buf));
      _mm256_store_si256(reinterpret_cast<__m256i*>(buf), lookup32(v, rows));
      std::memcpy(y + i, buf, n - i);
    }
  }
}

void lut_avx2(size_t n, const uint8_t* x, const uint8_t* table, uint8_t* y) {
  lut_rows_avx2(1, n, x, 0, table, y, 0);
}

}  // namespace

const X8LutUKernel x8_lut__avx2 = {"x8_lut__avx2", lut_avx2, lut_rows_avx2};

}  // namespace edgert
