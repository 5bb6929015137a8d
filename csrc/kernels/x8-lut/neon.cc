// x8-lut for AArch64: see x8-lut.h.
#include <arm_neon.h>

#include <cstring>

#include "kernels/x8-lut/x8-lut.h"

namespace edgert {

namespace {

inline uint8x16_t lookup16(uint8x16_t v, const uint8x16x4_t* q) {
  // TBL gives 0 for an index past 63; each TBX then fills the lanes its quarter covers.
  const uint8x16_t k64 = vdupq_n_u8(64);
  uint8x16_t r = vqtbl4q_u8(q[0], v);
  v = vsubq_u8(v, k64);
  r = vqtbx4q_u8(r, q[1], v);
  v = vsubq_u8(v, k64);
  r = vqtbx4q_u8(r, q[2], v);
  v = vsubq_u8(v, k64);
  return vqtbx4q_u8(r, q[3], v);
}

void lut_rows_neon(size_t rows, size_t n, const uint8_t* x, size_t x_stride,
                   const uint8_t* table, uint8_t* y, size_t y_stride) {
  uint8x16x4_t q[4];
  for (int k = 0; k < 4; ++k) q[k] = vld1q_u8_x4(table + 64 * k);
  for (size_t r = 0; r < rows; ++r, x += x_stride, y += y_stride) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) vst1q_u8(y + i, lookup16(vld1q_u8(x + i), q));
    if (i < n) {  // the tail through a 16-byte buffer (x and y may be the same)
      uint8_t buf[16] = {};
      std::memcpy(buf, x + i, n - i);
      vst1q_u8(buf, lookup16(vld1q_u8(buf), q));
      std::memcpy(y + i, buf, n - i);
    }
  }
}

void lut_neon(size_t n, const uint8_t* x, const uint8_t* table, uint8_t* y) {
  lut_rows_neon(1, n, x, 0, table, y, 0);
}

}  // namespace

const X8LutUKernel x8_lut__neon = {"x8_lut__neon", lut_neon, lut_rows_neon};

}  // namespace edgert
