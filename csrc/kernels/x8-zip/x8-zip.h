// x8-zip: interleave n byte planes (n = 2, 3 or 4): y[p * n + c] = x[c * x_stride + p] for
// p < pixels, c < n. The NCHW -> NHWC transpose of an image's few channels (RGB input of conv
// nets) is one call per image, or per range of pixels.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

using X8ZipFn = void (*)(size_t pixels, size_t x_stride, const uint8_t* x, uint8_t* y);

struct X8ZipUKernel {
  const char* name;
  X8ZipFn x2, x3, x4;  // n = 2, 3, 4
};

extern const X8ZipUKernel x8_zip_ukernel__scalar;
// AVX2: 32 pixels per step (byte unpacks for n = 2 and 4, pshufb for n = 3); the last < 32
// pixels are one step ending at the last pixel (rewriting a few outputs with the same bytes),
// or the scalar kernel when there are fewer than 32.
extern const X8ZipUKernel x8_zip_ukernel_x32__avx2;
// AArch64: 16 pixels per step with ST2/ST3/ST4, the tail as in AVX2.
extern const X8ZipUKernel x8_zip_ukernel_x16__neon;
const X8ZipUKernel& x8_zip_ukernel();  // the variant for the active ISA

}  // namespace edgert
