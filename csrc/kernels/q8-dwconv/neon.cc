// NEON q8-dwconv for AArch64: 16 channels per block (four int32x4 accumulators held across all
// taps), inputs widened to int16 and multiplied by SMLAL into int32 lanes, so sums are exact.
// The last < 16 channels go through a zero-padded copy, so no input row, weight, bias or scale
// is read past `channels` and nothing past y[channels) is written. The output stage is the
// scalar one in vector form (float convert, multiply without FMA, clamp, FCVTNS, + y_zp).
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>
#include <type_traits>

#include "kernels/q8-dwconv/q8-dwconv.h"

namespace edgert {
namespace {

constexpr size_t kBlock = 16;

inline int16x8_t widen_lo(uint8x16_t v) { return vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))); }
inline int16x8_t widen_hi(uint8x16_t v) { return vreinterpretq_s16_u16(vmovl_high_u8(v)); }
inline int16x8_t widen_lo(int8x16_t v) { return vmovl_s8(vget_low_s8(v)); }
inline int16x8_t widen_hi(int8x16_t v) { return vmovl_high_s8(v); }
inline uint8x16_t load16(const uint8_t* p) { return vld1q_u8(p); }
inline int8x16_t load16(const int8_t* p) { return vld1q_s8(p); }

// Requantizes 16 sums with their bias/scale and stores them as Out (16 values).
template <class Out>
inline void store16(const int32x4_t acc[4], const int32_t* bias, const float* scale, Out* y,
                    const Q8Requant& rq) {
  float32x4_t v[4];
  for (int i = 0; i < 4; ++i)  // the add wraps like the scalar q8_add_wrap
    v[i] = vmulq_f32(vcvtq_f32_s32(vaddq_s32(acc[i], vld1q_s32(bias + 4 * i))),
                     vld1q_f32(scale + 4 * i));
  if constexpr (sizeof(Out) == 4) {
    for (int i = 0; i < 4; ++i) vst1q_f32(reinterpret_cast<float*>(y) + 4 * i, v[i]);
    return;
  } else {
    const float32x4_t lo = vdupq_n_f32(rq.lo), hi = vdupq_n_f32(rq.hi);
    const int32x4_t zp = vdupq_n_s32(rq.y_zp);
    int16x8_t h[2];
    for (int i = 0; i < 2; ++i) {
      const int32x4_t q0 = vaddq_s32(vcvtnq_s32_f32(vminq_f32(vmaxq_f32(v[2 * i], lo), hi)), zp);
      const int32x4_t q1 = vaddq_s32(vcvtnq_s32_f32(vminq_f32(vmaxq_f32(v[2 * i + 1], lo), hi)), zp);
      h[i] = vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1));  // clamped: the narrowing is exact
    }
    if constexpr (std::is_same_v<Out, uint8_t>)
      vst1q_u8(y, vcombine_u8(vqmovun_s16(h[0]), vqmovun_s16(h[1])));
    else
      vst1q_s8(y, vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1])));
  }
}

// One block of 16 channels. x(t) gives tap t's 16 inputs, wt(t) its 16 weights.
template <class In, class X, class W>
inline void accumulate(size_t taps, X x, W wt, int32x4_t acc[4]) {
  for (int i = 0; i < 4; ++i) acc[i] = vdupq_n_s32(0);
  for (size_t t = 0; t < taps; ++t) {
    const auto xv = load16(x(t));
    const int16x8_t xl = widen_lo(xv), xh = widen_hi(xv);
    const int16_t* w = wt(t);
    const int16x8_t wl = vld1q_s16(w), wh = vld1q_s16(w + 8);
    acc[0] = vmlal_s16(acc[0], vget_low_s16(xl), vget_low_s16(wl));
    acc[1] = vmlal_high_s16(acc[1], xl, wl);
    acc[2] = vmlal_s16(acc[2], vget_low_s16(xh), vget_low_s16(wh));
    acc[3] = vmlal_high_s16(acc[3], xh, wh);
  }
}

template <class In, class Out>
void dwconv(size_t channels, size_t taps, const void* const* in, const int16_t* w,
            const int32_t* bias, const float* scale, void* y_out, const Q8Requant& rq) {
  Out* y = static_cast<Out*>(y_out);
  int32x4_t acc[4];
  size_t c0 = 0;
  for (; c0 + kBlock <= channels; c0 += kBlock) {
    accumulate<In>(
        taps, [&](size_t t) { return static_cast<const In*>(in[t]) + c0; },
        [&](size_t t) { return w + t * channels + c0; }, acc);
    store16<Out>(acc, bias + c0, scale + c0, y + c0, rq);
  }
  if (c0 == channels) return;
  const size_t nb = channels - c0;
  In xb[kBlock] = {};
  int16_t wb[kBlock] = {};
  accumulate<In>(
      taps,
      [&](size_t t) {
        std::memcpy(xb, static_cast<const In*>(in[t]) + c0, nb * sizeof(In));
        return static_cast<const In*>(xb);
      },
      [&](size_t t) {
        std::memcpy(wb, w + t * channels + c0, nb * sizeof(int16_t));
        return static_cast<const int16_t*>(wb);
      },
      acc);
  int32_t bb[kBlock] = {};
  float sb[kBlock] = {};
  Out yb[kBlock];
  std::memcpy(bb, bias + c0, nb * sizeof(int32_t));
  std::memcpy(sb, scale + c0, nb * sizeof(float));
  store16<Out>(acc, bb, sb, yb, rq);
  std::memcpy(y + c0, yb, nb * sizeof(Out));
}

}  // namespace

const Q8DwConvUKernel q8_dwconv_minmax_fp32_ukernel__neon = {
    "q8_dwconv_minmax_fp32_ukernel__neon",
    {{dwconv<uint8_t, uint8_t>, dwconv<uint8_t, int8_t>, dwconv<uint8_t, float>},
     {dwconv<int8_t, uint8_t>, dwconv<int8_t, int8_t>, dwconv<int8_t, float>}}};

}  // namespace edgert
#endif  // __aarch64__
