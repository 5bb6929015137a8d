#include "kernels/x8-lut/x8-lut.h"

#include "isa.h"

namespace edgert {

void x8_lut_ukernel__scalar(size_t n, const uint8_t* x, const uint8_t* table, uint8_t* y) {
  // Four independent loads per iteration keep several table reads in flight.
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint8_t v0 = table[x[i]], v1 = table[x[i + 1]];
    const uint8_t v2 = table[x[i + 2]], v3 = table[x[i + 3]];
    y[i] = v0;
    y[i + 1] = v1;
    y[i + 2] = v2;
    y[i + 3] = v3;
  }
  for (; i < n; ++i) y[i] = table[x[i]];
}

namespace {

void lut_rows_scalar(size_t rows, size_t n, const uint8_t* x, size_t x_stride,
                     const uint8_t* table, uint8_t* y, size_t y_stride) {
  for (size_t r = 0; r < rows; ++r)
    x8_lut_ukernel__scalar(n, x + r * x_stride, table, y + r * y_stride);
}

}  // namespace

const X8LutUKernel x8_lut__scalar = {"x8_lut__scalar", x8_lut_ukernel__scalar, lut_rows_scalar};

namespace {

const X8LutUKernel& active_variant() {
#if defined(__x86_64__)
  if (isa_runs_avx512vnni()) return x8_lut__avx512vnni;
  if (isa_runs_avx2()) return x8_lut__avx2;
#elif defined(__aarch64__)
  if (active_isa() == Isa::neon) return x8_lut__neon;
#endif
  return x8_lut__scalar;
}

}  // namespace

X8LutFn x8_lut_ukernel() { return active_variant().fn; }
X8LutRowsFn x8_lut_rows_ukernel() { return active_variant().rows; }

void x8_lut2_ukernel__scalar(size_t n, const uint8_t* a, const uint8_t* b, const uint8_t* table,
                             uint8_t* y) {
  for (size_t i = 0; i < n; ++i) y[i] = table[(size_t(a[i]) << 8) | b[i]];
}

}  // namespace edgert
