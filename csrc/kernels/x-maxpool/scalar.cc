#include "kernels/x-maxpool/x-maxpool.h"

#include "isa.h"

namespace edgert {
namespace {

template <class T>
void maxpool(size_t pixels, size_t rows, size_t cols, size_t row_step, size_t col_step,
             size_t pixel_step, size_t channels, const T* x, T* y) {
  for (size_t p = 0; p < pixels; ++p, x += pixel_step, y += channels) {
    for (size_t c = 0; c < channels; ++c) y[c] = x[c];
    for (size_t r = 0; r < rows; ++r) {
      for (size_t s = (r == 0 ? 1 : 0); s < cols; ++s) {
        const T* px = x + r * row_step + s * col_step;
        for (size_t c = 0; c < channels; ++c) y[c] = px[c] > y[c] ? px[c] : y[c];
      }
    }
  }
}

}  // namespace

const XMaxPoolUKernel x_maxpool_ukernel__scalar = {
    "x_maxpool_ukernel__scalar", maxpool<uint8_t>, maxpool<int8_t>, maxpool<float>};

const XMaxPoolUKernel& x_maxpool_ukernel() {
#if defined(__aarch64__)
  if (active_isa() == Isa::neon) return x_maxpool_ukernel_c16__neon;
#endif
#if defined(__x86_64__) || defined(_M_X64)
  if (isa_runs_avx2()) return x_maxpool_ukernel_c32__avx2;
#endif
  return x_maxpool_ukernel__scalar;
}

}  // namespace edgert
