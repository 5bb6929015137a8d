// NEON x-maxpool for AArch64: NHWC max pooling, 16 bytes of channels per vector, two vectors
// per pass over the window, bit-identical to scalar (integer max is exact; f32 selects px where
// px > acc, the scalar compare, in the scalar window order, where FMAX would return NaN).
// Channel remainders take a vector ending at the last channel; rows narrower than 16 bytes run
// the scalar kernel.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "kernels/x-maxpool/x-maxpool.h"

namespace edgert {
namespace {

// One 16-byte vector of channels, chosen by the element type. vmax(px, acc) is the scalar
// kernel's px > acc ? px : acc.
uint8x16_t vload(const uint8_t* p) { return vld1q_u8(p); }
int8x16_t vload(const int8_t* p) { return vld1q_s8(p); }
float32x4_t vload(const float* p) { return vld1q_f32(p); }
void vstore(uint8_t* p, uint8x16_t v) { vst1q_u8(p, v); }
void vstore(int8_t* p, int8x16_t v) { vst1q_s8(p, v); }
void vstore(float* p, float32x4_t v) { vst1q_f32(p, v); }
uint8x16_t vmax(uint8x16_t px, uint8x16_t acc) { return vmaxq_u8(px, acc); }
int8x16_t vmax(int8x16_t px, int8x16_t acc) { return vmaxq_s8(px, acc); }
float32x4_t vmax(float32x4_t px, float32x4_t acc) { return vbslq_f32(vcgtq_f32(px, acc), px, acc); }

// y[0, N vectors) = max over the window at x, in scalar order: (0, 0) first, then rows, columns.
template <class T, int N>
void window(size_t rows, size_t cols, size_t row_step, size_t col_step, const T* x, T* y) {
  constexpr size_t lanes = 16 / sizeof(T);
  decltype(vload(x)) acc[N];
  for (int j = 0; j < N; ++j) acc[j] = vload(x + j * lanes);
  for (size_t r = 0; r < rows; ++r) {
    const T* row = x + r * row_step;
    for (size_t s = r == 0 ? 1 : 0; s < cols; ++s) {
      const T* px = row + s * col_step;
      for (int j = 0; j < N; ++j) acc[j] = vmax(vload(px + j * lanes), acc[j]);
    }
  }
  for (int j = 0; j < N; ++j) vstore(y + j * lanes, acc[j]);
}

XMaxPoolFn<uint8_t> scalar_fn(const uint8_t*) { return x_maxpool_ukernel__scalar.u8; }
XMaxPoolFn<int8_t> scalar_fn(const int8_t*) { return x_maxpool_ukernel__scalar.i8; }
XMaxPoolFn<float> scalar_fn(const float*) { return x_maxpool_ukernel__scalar.f32; }

template <class T>
void maxpool(size_t pixels, size_t rows, size_t cols, size_t row_step, size_t col_step,
             size_t pixel_step, size_t channels, const T* x, T* y) {
  constexpr size_t L = 16 / sizeof(T);
  if (channels < L) {
    return scalar_fn(x)(pixels, rows, cols, row_step, col_step, pixel_step, channels, x, y);
  }
  for (size_t p = 0; p < pixels; ++p, x += pixel_step, y += channels) {
    size_t c = 0;
    for (; c + 2 * L <= channels; c += 2 * L) window<T, 2>(rows, cols, row_step, col_step, x + c, y + c);
    if (c + L <= channels) {
      window<T, 1>(rows, cols, row_step, col_step, x + c, y + c);
      c += L;
    }
    if (c < channels) {
      window<T, 1>(rows, cols, row_step, col_step, x + channels - L, y + channels - L);
    }
  }
}

}  // namespace

const XMaxPoolUKernel x_maxpool_ukernel_c16__neon = {
    "x_maxpool_ukernel_c16__neon", maxpool<uint8_t>, maxpool<int8_t>, maxpool<float>};

}  // namespace edgert
#endif  // __aarch64__
