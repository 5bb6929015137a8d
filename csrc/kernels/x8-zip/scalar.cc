#include "kernels/x8-zip/x8-zip.h"

#include "isa.h"

namespace edgert {
namespace {

template <size_t N>
void zip(size_t pixels, size_t x_stride, const uint8_t* x, uint8_t* y) {
  for (size_t p = 0; p < pixels; ++p, y += N) {
    for (size_t c = 0; c < N; ++c) y[c] = x[c * x_stride + p];
  }
}

}  // namespace

const X8ZipUKernel x8_zip_ukernel__scalar = {"x8_zip_ukernel__scalar", zip<2>, zip<3>, zip<4>};

const X8ZipUKernel& x8_zip_ukernel() {
#if defined(__aarch64__)
  if (active_isa() == Isa::neon) return x8_zip_ukernel_x16__neon;
#endif
#if defined(__x86_64__) || defined(_M_X64)
  if (isa_runs_avx2()) return x8_zip_ukernel_x32__avx2;
#endif
  return x8_zip_ukernel__scalar;
}

}  // namespace edgert
