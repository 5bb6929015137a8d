#include "kernels/q8-vadd/q8-vadd.h"

#include <algorithm>
#include <cmath>

#include "isa.h"

namespace edgert {

Q8AddParams q8_vadd_params(float x_scale, int32_t x_zp, float s_scale, int32_t s_zp,
                           float y_scale, int32_t y_zp, int32_t qmin, int32_t qmax) {
  Q8AddParams p;
  p.rx = x_scale / y_scale;
  p.rs = s_scale / y_scale;
  p.fixed = static_cast<float>(y_zp) -
            std::fma(p.rx, static_cast<float>(x_zp), p.rs * static_cast<float>(s_zp));
  p.qmin = qmin;
  p.qmax = qmax;
  return p;
}

int32_t q8_vadd_fp32(int32_t x, int32_t s, const Q8AddParams& p) {
  float v = std::fma(static_cast<float>(x), p.rx,
                     std::fma(static_cast<float>(s), p.rs, p.fixed));
  // Clamp before converting: the int conversion of a huge or NaN value is undefined.
  const float lo = static_cast<float>(p.qmin), hi = static_cast<float>(p.qmax);
  v = v > lo ? v : lo;
  v = v < hi ? v : hi;
  // v is within [qmin, qmax] (|v| < 2^22): adding and removing 1.5 * 2^23 rounds it to an
  // integer half to even, as nearbyint does in the default mode, without a libm call.
  return static_cast<int32_t>((v + 12582912.0f) - 12582912.0f);
}

void q8_vadd_fp32_table(const Q8AddParams& p, bool x_signed, bool s_signed, bool row_is_x,
                        uint8_t* table) {
  auto value = [](unsigned byte, bool is_signed) {
    return is_signed ? int32_t(int8_t(uint8_t(byte))) : int32_t(byte);
  };
  for (unsigned r = 0; r < 256; ++r) {
    for (unsigned c = 0; c < 256; ++c) {
      const int32_t x = row_is_x ? value(r, x_signed) : value(c, x_signed);
      const int32_t s = row_is_x ? value(c, s_signed) : value(r, s_signed);
      table[r * 256 + c] = static_cast<uint8_t>(q8_vadd_fp32(x, s, p));
    }
  }
}

Q8VaddDirectFn q8_vadd_direct() {
#if defined(__x86_64__)
  if (isa_runs_avx512vnni()) return q8_vadd_direct__avx512vnni;
  if (isa_runs_avx2()) return q8_vadd_direct__avx2;
#endif
  return nullptr;
}

}  // namespace edgert
