// f32-dwconv: depthwise NHWC convolution with depth multiplier 1 (group == C == M).
#pragma once

#include <cstddef>

#include "kernels/f32-im2col/f32-im2col.h"

namespace edgert {

// One output row y[OW, C] of image n, output row oy: y = clamp(sum over taps inside X of
// x·w (in (kh, kw) order, from 0) + bias, lo, hi). w is [KH*KW, C], bias [C].
void f32_dwconv_minmax_row__scalar(const F32ConvGeometry& g, size_t n, size_t oy, const float* x,
                                   const float* w, const float* bias, float* y, float lo,
                                   float hi);

}  // namespace edgert
