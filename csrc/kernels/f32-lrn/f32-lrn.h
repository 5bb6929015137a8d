// f32-lrn: ONNX LocalResponseNormalization across a channel axis.
#pragma once

#include <cstddef>

namespace edgert {

// x, y are [c, inner] (channel stride `inner`). For channel i the window is
// [i - (size-1)/2, i + size/2] clipped to [0, c); y = x / (bias + alpha/size * sum x^2)^beta.
// `sq` holds inner floats (squared-sum accumulator).
void f32_lrn__scalar(size_t c, size_t inner, const float* x, float* y, size_t size, float alpha,
                     float beta, float bias, float* sq);

}  // namespace edgert
