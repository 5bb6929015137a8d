// Creation-time helpers shared by the 8-bit quantized op wrappers (qadd, qmul, qavgpool,
// qconcat, qlut, qsoftmax, quantize, dequantize): dtype checks, scale / zero-point / clamp
// attributes, pooling window arithmetic.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "runtime/op.h"

namespace edgert {

inline bool is_q8(DType t) { return t == DType::u8 || t == DType::i8; }
inline int32_t q8_min(DType t) { return t == DType::i8 ? -128 : 0; }
inline int32_t q8_max(DType t) { return t == DType::i8 ? 127 : 255; }

inline void expect_q8(const OpSpec& spec, const TensorDesc& t, const char* what) {
  EDGERT_EXPECT(spec, is_q8(t.dtype), std::string(what) + " must be u8 or i8, got " +
                                  dtype_name(t.dtype));
}

// A positive, finite fp32 scale (stored as fp32 exactly as the model holds it).
inline float q8_scale(const OpSpec& spec, const std::string& name) {
  const double v = spec.attrs.f(name);
  const float f = static_cast<float>(v);
  EDGERT_EXPECT(spec, std::isfinite(f) && f > 0.0f, name + " must be a positive finite float");
  return f;
}
inline float q8_scale_value(const OpSpec& spec, const std::string& name, double v) {
  const float f = static_cast<float>(v);
  EDGERT_EXPECT(spec, std::isfinite(f) && f > 0.0f, name + " must be a positive finite float");
  return f;
}

// A zero point within the range of the tensor type it belongs to (default 0).
inline int32_t q8_zp_value(const OpSpec& spec, const std::string& name, int64_t v, DType t) {
  EDGERT_EXPECT(spec, v >= q8_min(t) && v <= q8_max(t),
              name + " = " + std::to_string(v) + " is outside the range of " + dtype_name(t));
  return static_cast<int32_t>(v);
}
inline int32_t q8_zp(const OpSpec& spec, const std::string& name, DType t) {
  return q8_zp_value(spec, name, spec.attrs.i(name, 0), t);
}

// Output clamp [qmin, qmax], default the whole range of the output type.
struct Q8Clamp {
  int32_t lo, hi;
};
inline Q8Clamp q8_clamp(const OpSpec& spec, DType t) {
  const int64_t lo = spec.attrs.i("qmin", q8_min(t)), hi = spec.attrs.i("qmax", q8_max(t));
  EDGERT_EXPECT(spec, lo >= q8_min(t) && hi <= q8_max(t) && lo <= hi,
              "qmin/qmax [" + std::to_string(lo) + ", " + std::to_string(hi) +
                  "] must be an ordered range within " + dtype_name(t));
  return {static_cast<int32_t>(lo), static_cast<int32_t>(hi)};
}

// Input positions o * stride - pad + k * dilation (k < kernel) that fall inside [0, size):
// k in [k0, k1). Empty when k0 >= k1.
inline void pool_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t dilation,
                        int64_t size, int64_t* k0, int64_t* k1) {
  const int64_t base = o * stride - pad;
  int64_t lo = 0, hi = kernel;
  if (base < 0) lo = (-base + dilation - 1) / dilation;
  const int64_t past = size - base;  // first k with base + k * dilation >= size
  if (past <= 0) {
    hi = 0;
  } else {
    hi = std::min<int64_t>(kernel, (past + dilation - 1) / dilation);
  }
  *k0 = lo;
  *k1 = hi;
}

}  // namespace edgert
