#include "kernels/q8-vmul/q8-vmul.h"

#include <cmath>

#include "isa.h"

namespace edgert {

Q8MulParams q8_vmul_params(float a_scale, int32_t a_zp, float b_scale, int32_t b_zp,
                           float y_scale, int32_t y_zp, int32_t qmin, int32_t qmax) {
  Q8MulParams p;
  p.scale = a_scale * b_scale / y_scale;
  p.y_zp = static_cast<float>(y_zp);
  p.a_zp = a_zp;
  p.b_zp = b_zp;
  p.qmin = qmin;
  p.qmax = qmax;
  return p;
}

int32_t q8_vmul_fp32(int32_t a, int32_t b, const Q8MulParams& p) {
  const int32_t prod = (a - p.a_zp) * (b - p.b_zp);  // |prod| <= 255 * 255: exact in fp32
  float v = static_cast<float>(prod) * p.scale + p.y_zp;
  const float lo = static_cast<float>(p.qmin), hi = static_cast<float>(p.qmax);
  v = v > lo ? v : lo;
  v = v < hi ? v : hi;
  // v is within [qmin, qmax] (|v| < 2^22): adding and removing 1.5 * 2^23 rounds it to an
  // integer half to even, as nearbyint does in the default mode, without a libm call.
  return static_cast<int32_t>((v + 12582912.0f) - 12582912.0f);
}

void q8_vmul_fp32_table(const Q8MulParams& p, bool a_signed, bool b_signed, bool row_is_a,
                        uint8_t* table) {
  auto value = [](unsigned byte, bool is_signed) {
    return is_signed ? int32_t(int8_t(uint8_t(byte))) : int32_t(byte);
  };
  for (unsigned r = 0; r < 256; ++r) {
    for (unsigned c = 0; c < 256; ++c) {
      const int32_t a = row_is_a ? value(r, a_signed) : value(c, a_signed);
      const int32_t b = row_is_a ? value(c, b_signed) : value(r, b_signed);
      table[r * 256 + c] = static_cast<uint8_t>(q8_vmul_fp32(a, b, p));
    }
  }
}

Q8VmulDirectFn q8_vmul_direct() {
#if defined(__x86_64__)
  if (isa_runs_avx512vnni()) return q8_vmul_direct__avx512vnni;
  if (isa_runs_avx2()) return q8_vmul_direct__avx2;
#endif
  return nullptr;
}

}  // namespace edgert
