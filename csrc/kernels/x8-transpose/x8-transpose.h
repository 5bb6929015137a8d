// x8-transpose: 2-d transpose of bytes, y[i * y_stride + j] = x[j * x_stride + i] for i < rows,
// j < cols: output row i gathers column i of x's cols rows (NHWC <-> NCHW of 8-bit tensors).
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

using X8TransposeFn = void (*)(size_t rows, size_t cols, size_t x_stride, size_t y_stride,
                               const uint8_t* x, uint8_t* y);

struct X8TransposeUKernel {
  const char* name;
  X8TransposeFn fn;
};

extern const X8TransposeUKernel x8_transpose_ukernel__scalar;
// AVX2 file, 128-bit unpacks: 16x16 tiles (16 loads, 32 unpacks, 16 stores); the last tile of
// a dimension overlaps the one before it (rewriting a few outputs with the same bytes); a
// dimension under 16 runs the scalar kernel.
extern const X8TransposeUKernel x8_transpose_ukernel_16x16__avx2;
const X8TransposeUKernel& x8_transpose_ukernel();  // the variant for the active ISA

}  // namespace edgert
