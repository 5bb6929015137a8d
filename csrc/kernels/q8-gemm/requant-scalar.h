// The op catalog's requantization for scalar kernels (not for -mavx2 files: see STYLE.md).
#pragma once

#include <cstdint>

#include "kernels/q8-gemm/q8-gemm.h"

namespace edgert {

// Adds bias with two's-complement wraparound (an int32 accumulator's behaviour, without UB).
inline int32_t q8_add_wrap(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}

// clamp(float(acc)·scale, lo, hi), rounded half to even, + y_zp. After the clamp |v| < 2^22, where
// adding and subtracting 1.5·2^23 rounds exactly as nearbyintf in the default rounding mode, and
// compiles to two adds instead of a libm call on baseline x86-64.
inline int32_t q8_requant(int32_t acc, float scale, const Q8Requant& rq) {
  float v = static_cast<float>(acc) * scale;
  v = v < rq.lo ? rq.lo : v;
  v = v > rq.hi ? rq.hi : v;
  constexpr float kMagic = 12582912.0f;
  return static_cast<int32_t>((v + kMagic) - kMagic) + rq.y_zp;
}

template <class Out>
inline Out q8_output(int32_t acc, float scale, const Q8Requant& rq) {
  return static_cast<Out>(q8_requant(acc, scale, rq));
}
template <>
inline float q8_output<float>(int32_t acc, float scale, const Q8Requant&) {
  return static_cast<float>(acc) * scale;
}

}  // namespace edgert
