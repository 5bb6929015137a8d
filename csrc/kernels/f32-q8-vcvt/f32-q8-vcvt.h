// f32-q8-vcvt: QuantizeLinear as onnxruntime's MLAS computes it (division, not multiplication
// by a reciprocal):
//     v = x / scale;  v = min(max(v, qmin - zp), qmax - zp)  (NaN becomes qmin - zp)
//     y = round_half_even(v) + zp
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

// y[i] = quantize(x[i]) for i < n with one scale and zero point; T is uint8_t or int8_t.
template <class T>
void f32_q8_vcvt_ukernel__scalar(size_t n, const float* x, float scale, int32_t zp, T* y);

}  // namespace edgert
