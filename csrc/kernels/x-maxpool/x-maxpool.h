// x-maxpool: max pooling of NHWC data for any element type x (u8, i8, f32): one output pixel
// is the elementwise max over the window's input pixels (windows are clipped to the input by
// the caller, never padded). f32 compares with `>` in window order (rows, then columns), so a
// NaN input is skipped unless it comes first.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

// For p < pixels, c < channels:
//     y[p * channels + c] = max over r < rows, s < cols of
//                           x[p * pixel_step + r * row_step + s * col_step + c]
// (steps in elements; a row of outputs whose windows all have the same shape is one call).
// rows, cols, pixels >= 1. Reads only window elements, writes only y[0, pixels * channels).
template <class T>
using XMaxPoolFn = void (*)(size_t pixels, size_t rows, size_t cols, size_t row_step,
                            size_t col_step, size_t pixel_step, size_t channels, const T* x, T* y);

struct XMaxPoolUKernel {
  const char* name;
  XMaxPoolFn<uint8_t> u8;
  XMaxPoolFn<int8_t> i8;
  XMaxPoolFn<float> f32;
};

extern const XMaxPoolUKernel x_maxpool_ukernel__scalar;
// AVX2: 32 bytes of channels per vector (32 u8/i8 or 8 f32), two vectors per pass over the
// window; a channel count that is not a multiple of the vector ends with a vector overlapping
// the previous one (16-byte vectors when the row is 16-31 bytes); rows under 16 bytes run the
// scalar kernel.
extern const XMaxPoolUKernel x_maxpool_ukernel_c32__avx2;
// AArch64: the same blocking with 16-byte vectors (16 u8/i8 or 4 f32, FMAX replaced by
// compare-and-select to keep scalar's NaN order); rows under 16 bytes run the scalar kernel.
extern const XMaxPoolUKernel x_maxpool_ukernel_c16__neon;
const XMaxPoolUKernel& x_maxpool_ukernel();  // the variant for the active ISA

}  // namespace edgert
