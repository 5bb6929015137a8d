#include "kernels/q8-avgpool/q8-avgpool.h"

#include <cmath>
#include <type_traits>

#include "isa.h"

namespace edgert {
namespace {

// round_half_even for |v| <= 2^22: adding 1.5 * 2^23 leaves no fraction bits, so the fp32 add
// itself rounds half to even (default rounding mode), and the subtraction is exact. Equal to
// nearbyintf on that range, and cheap where nearbyintf is a library call.
inline float round_small(float v) {
  const float magic = 12582912.0f;
  return (v + magic) - magic;
}

}  // namespace

Q8GAvgPoolParams q8_gavgpool_params(size_t pixels, float x_scale, int32_t x_zp, float y_scale,
                                    int32_t y_zp, int32_t qmin, int32_t qmax) {
  Q8GAvgPoolParams p;
  p.bias = -x_zp * static_cast<int32_t>(pixels);
  p.scale = x_scale / (y_scale * static_cast<float>(pixels));
  p.vmin = static_cast<float>(qmin - y_zp);
  p.vmax = static_cast<float>(qmax - y_zp);
  p.y_zp = y_zp;
  return p;
}

template <class T>
void q8_gavgpool_ukernel__scalar(size_t pixels, size_t channels, size_t pixel_stride,
                                 const T* x, int32_t* acc, const Q8GAvgPoolParams& p, T* y) {
  for (size_t c = 0; c < channels; ++c) acc[c] = p.bias;
  for (size_t i = 0; i < pixels; ++i, x += pixel_stride) {
    for (size_t c = 0; c < channels; ++c) acc[c] += x[c];
  }
  for (size_t c = 0; c < channels; ++c) {
    float v = static_cast<float>(acc[c]) * p.scale;
    v = v > p.vmin ? v : p.vmin;  // vmin/vmax are within 510 of 0: round_small applies
    v = v < p.vmax ? v : p.vmax;
    y[c] = static_cast<T>(static_cast<int32_t>(round_small(v)) + p.y_zp);
  }
}

void q8_avgpool_params(float x_scale, int32_t x_zp, bool x_signed, float y_scale, int32_t y_zp,
                       int32_t qmin, int32_t qmax, Q8AvgPoolParams* p) {
  for (int b = 0; b < 256; ++b) {
    const int32_t x = x_signed ? int32_t(int8_t(uint8_t(b))) : b;
    p->dq[b] = x_scale * static_cast<float>(x - x_zp);
  }
  p->x_scale = x_scale;
  p->x_zp = x_zp;
  p->y_scale = y_scale;
  p->y_zp = static_cast<float>(y_zp);
  p->qmin = qmin;
  p->qmax = qmax;
}

template <class T>
void q8_avgpool_f32acc_ukernel__scalar(size_t rows, size_t cols, size_t row_stride,
                                       size_t channels, const T* x, float divisor,
                                       const Q8AvgPoolParams& p, float* acc, T* y) {
  for (size_t c = 0; c < channels; ++c) acc[c] = 0.0f;
  for (size_t r = 0; r < rows; ++r) {
    const T* px = x + r * row_stride;
    for (size_t s = 0; s < cols; ++s, px += channels) {
      for (size_t c = 0; c < channels; ++c) acc[c] += p.dq[static_cast<uint8_t>(px[c])];
    }
  }
  // Clamping to +-2^22 before rounding changes nothing after the final clamp to [qmin, qmax]
  // and keeps round_small exact and the int conversion defined (NaN ends at the low bound).
  const float lo = -4194304.0f, hi = 4194304.0f;
  for (size_t c = 0; c < channels; ++c) {
    float v = acc[c] / divisor / p.y_scale + p.y_zp;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    int32_t q = static_cast<int32_t>(round_small(v));
    q = q < p.qmin ? p.qmin : (q > p.qmax ? p.qmax : q);
    y[c] = static_cast<T>(q);
  }
}

template void q8_gavgpool_ukernel__scalar<uint8_t>(size_t, size_t, size_t, const uint8_t*,
                                                   int32_t*, const Q8GAvgPoolParams&, uint8_t*);
template void q8_gavgpool_ukernel__scalar<int8_t>(size_t, size_t, size_t, const int8_t*,
                                                  int32_t*, const Q8GAvgPoolParams&, int8_t*);
template void q8_avgpool_f32acc_ukernel__scalar<uint8_t>(size_t, size_t, size_t, size_t,
                                                         const uint8_t*, float,
                                                         const Q8AvgPoolParams&, float*,
                                                         uint8_t*);
template void q8_avgpool_f32acc_ukernel__scalar<int8_t>(size_t, size_t, size_t, size_t,
                                                        const int8_t*, float,
                                                        const Q8AvgPoolParams&, float*, int8_t*);

const Q8AvgPoolUKernel q8_avgpool_ukernel__scalar = {
    "q8_avgpool_ukernel__scalar", q8_gavgpool_ukernel__scalar<uint8_t>,
    q8_gavgpool_ukernel__scalar<int8_t>, q8_avgpool_f32acc_ukernel__scalar<uint8_t>,
    q8_avgpool_f32acc_ukernel__scalar<int8_t>};

const Q8AvgPoolUKernel& q8_avgpool_ukernel() {
#if defined(__x86_64__)
  if (isa_runs_avx2()) return q8_avgpool_ukernel__avx2;
#endif
  return q8_avgpool_ukernel__scalar;
}

template <class T>
Q8AvgPoolF32AccFn<T> q8_avgpool_f32acc_ukernel() {
  if constexpr (std::is_same<T, uint8_t>::value) return q8_avgpool_ukernel().window_u8;
  else return q8_avgpool_ukernel().window_i8;
}
template Q8AvgPoolF32AccFn<uint8_t> q8_avgpool_f32acc_ukernel<uint8_t>();
template Q8AvgPoolF32AccFn<int8_t> q8_avgpool_f32acc_ukernel<int8_t>();

}  // namespace edgert
