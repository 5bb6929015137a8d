// q8-f32-vcvt: DequantizeLinear as onnxruntime computes it: y = float(x - zp) * scale, the
// subtraction exact in integers, one fp32 rounding for the conversion (exact for 8-bit inputs)
// and one for the product.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgert {

// y[i] = float(x[i] - zp) * scale for i < n; T is uint8_t, int8_t or int32_t (int32 inputs are
// subtracted in 64 bits, so no wrap-around).
template <class T>
void q8_f32_vcvt_ukernel__scalar(size_t n, const T* x, float scale, int32_t zp, float* y);

}  // namespace edgert
