#include "kernels/f32-q8-vcvt/f32-q8-vcvt.h"

#include <limits>

#include "isa.h"

namespace edgert {

template <class T>
void f32_q8_vcvt_ukernel__scalar(size_t n, const float* x, float scale, int32_t zp, T* y) {
  const float lo = static_cast<float>(int32_t(std::numeric_limits<T>::min()) - zp);
  const float hi = static_cast<float>(int32_t(std::numeric_limits<T>::max()) - zp);
  // After the clamp |v| <= 510, where adding 1.5 * 2^23 rounds half to even exactly.
  const float magic = 12582912.0f;
  for (size_t i = 0; i < n; ++i) {
    float v = x[i] / scale;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    y[i] = static_cast<T>(static_cast<int32_t>((v + magic) - magic) + zp);
  }
}

template void f32_q8_vcvt_ukernel__scalar<uint8_t>(size_t, const float*, float, int32_t,
                                                   uint8_t*);
template void f32_q8_vcvt_ukernel__scalar<int8_t>(size_t, const float*, float, int32_t, int8_t*);

const F32Q8VCvtUKernel f32_q8_vcvt_ukernel_x1__scalar = {
    "f32_q8_vcvt_ukernel_x1__scalar", f32_q8_vcvt_ukernel__scalar<uint8_t>,
    f32_q8_vcvt_ukernel__scalar<int8_t>};

const F32Q8VCvtUKernel& f32_q8_vcvt_ukernel() {
#if defined(__aarch64__)
  if (active_isa() == Isa::neon) return f32_q8_vcvt_ukernel_x16__neon;
#endif
#if defined(__x86_64__) || defined(_M_X64)
  if (isa_runs_avx512vnni()) return f32_q8_vcvt_ukernel_x64__avx512vnni;
  if (isa_runs_avx2()) return f32_q8_vcvt_ukernel_x32__avx2;
#endif
  return f32_q8_vcvt_ukernel_x1__scalar;
}

}  // namespace edgert
