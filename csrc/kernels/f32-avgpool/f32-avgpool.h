// f32-avgpool: NHWC average pooling with onnxruntime's divisor.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/f32-im2col/f32-im2col.h"

namespace edgert {

// One output row y[OW, C] of image n, output row oy. A window starts at oy*sh - pt and ends at
// min(start + kh*dh, H + pb) (same for w with pl/pr). Taps inside X are summed in fp32 in
// (h, w) order, then divided by: the number of window taps (pads included, overhang beyond the
// bottom/right pads excluded) if count_include_pad, else the taps inside X; no tap gives 0.
// This is onnxruntime's AveragePool (CPU, float) formula.
void f32_avgpool_row__scalar(const F32ConvGeometry& g, int64_t pb, int64_t pr,
                             bool count_include_pad, size_t n, size_t oy, const float* x,
                             float* y);

}  // namespace edgert
