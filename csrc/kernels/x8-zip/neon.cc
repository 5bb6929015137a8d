// NEON x8-zip for AArch64: 16 pixels per step, one ST2/ST3/ST4 of the planes' vectors. The
// last < 16 pixels are one step ending at the last pixel; under 16 pixels run scalar.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "kernels/x8-zip/x8-zip.h"

namespace edgert {
namespace {

void step2(size_t s, const uint8_t* x, uint8_t* y) {
  uint8x16x2_t v;
  v.val[0] = vld1q_u8(x), v.val[1] = vld1q_u8(x + s);
  vst2q_u8(y, v);
}
void step3(size_t s, const uint8_t* x, uint8_t* y) {
  uint8x16x3_t v;
  v.val[0] = vld1q_u8(x), v.val[1] = vld1q_u8(x + s), v.val[2] = vld1q_u8(x + 2 * s);
  vst3q_u8(y, v);
}
void step4(size_t s, const uint8_t* x, uint8_t* y) {
  uint8x16x4_t v;
  v.val[0] = vld1q_u8(x), v.val[1] = vld1q_u8(x + s);
  v.val[2] = vld1q_u8(x + 2 * s), v.val[3] = vld1q_u8(x + 3 * s);
  vst4q_u8(y, v);
}

template <size_t N, void (*Step)(size_t, const uint8_t*, uint8_t*)>
void zip(size_t pixels, size_t x_stride, const uint8_t* x, uint8_t* y) {
  if (pixels < 16) {
    const X8ZipFn scalar[] = {x8_zip_ukernel__scalar.x2, x8_zip_ukernel__scalar.x3,
                              x8_zip_ukernel__scalar.x4};
    return scalar[N - 2](pixels, x_stride, x, y);
  }
  size_t p = 0;
  for (; p + 16 <= pixels; p += 16) Step(x_stride, x + p, y + p * N);
  if (p < pixels) Step(x_stride, x + pixels - 16, y + (pixels - 16) * N);
}

}  // namespace

const X8ZipUKernel x8_zip_ukernel_x16__neon = {"x8_zip_ukernel_x16__neon", zip<2, step2>,
                                               zip<3, step3>, zip<4, step4>};

}  // namespace edgert
#endif  // __aarch64__
