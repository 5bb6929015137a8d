#include "kernels/x8-transpose/x8-transpose.h"

#include "isa.h"

namespace edgert {
namespace {

// Output rows in blocks of 16, so each source row is read 16 bytes at a time.
void transpose(size_t rows, size_t cols, size_t x_stride, size_t y_stride, const uint8_t* x,
               uint8_t* y) {
  for (size_t i0 = 0; i0 < rows; i0 += 16) {
    const size_t i1 = rows - i0 < 16 ? rows : i0 + 16;
    for (size_t j = 0; j < cols; ++j) {
      const uint8_t* s = x + j * x_stride;
      for (size_t i = i0; i < i1; ++i) y[i * y_stride + j] = s[i];
    }
  }
}

}  // namespace

const X8TransposeUKernel x8_transpose_ukernel__scalar = {"x8_transpose_ukernel__scalar",
                                                         transpose};

const X8TransposeUKernel& x8_transpose_ukernel() {
#if defined(__x86_64__) || defined(_M_X64)
  if (isa_runs_avx2()) return x8_transpose_ukernel_16x16__avx2;
#endif
  return x8_transpose_ukernel__scalar;
}

}  // namespace edgert
