// NEON f32-q8-vcvt for AArch64, 16 floats per step: the AVX2 kernel's scheme (see avx2.cc for
// why it is exact): s = clamp(fma(x, 1/scale, M)) with M = 2^9 + 256 + zp + 1/2 puts the output
// byte in bits 14-21 of s's encoding and the fraction in bits 0-13; any 16 floats with a zero
// fraction (a possible tie) or a scale whose reciprocal is not normal take the division.
// The clamps are compare-and-select (FMAX would turn NaN into NaN, not the low bound). The tail
// goes through a zero-padded copy: nothing is read or written past n.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "kernels/f32-q8-vcvt/f32-q8-vcvt.h"

namespace edgert {
namespace {

struct Consts {
  float32x4_t recip, magic, smin, smax, scale, lo, hi;
  int32x4_t zp;
  bool always_divide;
};

Consts consts(float scale, int32_t zp, int32_t tmin, int32_t tmax) {
  const float magic = 512.0f + 256.0f + static_cast<float>(zp) + 0.5f;  // exact
  Consts k;
  k.recip = vdupq_n_f32(1.0f / scale);
  k.magic = vdupq_n_f32(magic);
  k.smin = vdupq_n_f32(magic + static_cast<float>(tmin - zp));
  k.smax = vdupq_n_f32(magic + static_cast<float>(tmax - zp));
  k.scale = vdupq_n_f32(scale);
  k.lo = vdupq_n_f32(static_cast<float>(tmin - zp));
  k.hi = vdupq_n_f32(static_cast<float>(tmax - zp));
  k.zp = vdupq_n_s32(zp);
  k.always_divide = !(scale >= 0x1p-100f && scale <= 0x1p100f);
  return k;
}

// v > lo ? v : lo, then v < hi ? v : hi: the scalar kernel's clamp, NaN giving lo.
inline float32x4_t clamp(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  v = vbslq_f32(vcgtq_f32(v, lo), v, lo);
  return vbslq_f32(vcltq_f32(v, hi), v, hi);
}

inline void store16(uint8_t* y, int16x8_t a, int16x8_t b) {
  vst1q_u8(y, vcombine_u8(vqmovun_s16(a), vqmovun_s16(b)));
}
inline void store16(int8_t* y, int16x8_t a, int16x8_t b) {
  vst1q_s8(y, vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)));
}

// The scalar steps (FCVTNS rounds half to even); the values fit T, so narrowing is exact.
template <class T>
void divide16(const float* x, const Consts& k, T* y) {
  int16x4_t h[4];
  for (int j = 0; j < 4; ++j) {
    const float32x4_t v = clamp(vdivq_f32(vld1q_f32(x + 4 * j), k.scale), k.lo, k.hi);
    h[j] = vqmovn_s32(vaddq_s32(vcvtnq_s32_f32(v), k.zp));
  }
  store16(y, vcombine_s16(h[0], h[1]), vcombine_s16(h[2], h[3]));
}

template <class T>
void block16(const float* x, const Consts& k, T* y) {
  uint32x4_t s[4];
  uint32x4_t frac_zero = vdupq_n_u32(0);
  const uint32x4_t frac_bits = vdupq_n_u32(0x3FFF);
  for (int j = 0; j < 4; ++j) {
    const float32x4_t v = vfmaq_f32(k.magic, vld1q_f32(x + 4 * j), k.recip);
    s[j] = vreinterpretq_u32_f32(clamp(v, k.smin, k.smax));
    frac_zero = vorrq_u32(frac_zero, vceqq_u32(vandq_u32(s[j], frac_bits), vdupq_n_u32(0)));
  }
  if (k.always_divide || vmaxvq_u32(frac_zero) != 0) return divide16(x, k, y);
  // Bits 14-29 narrowed to 16, then their low byte: the output byte.
  const uint16x8_t a = vcombine_u16(vshrn_n_u32(s[0], 14), vshrn_n_u32(s[1], 14));
  const uint16x8_t b = vcombine_u16(vshrn_n_u32(s[2], 14), vshrn_n_u32(s[3], 14));
  vst1q_u8(reinterpret_cast<uint8_t*>(y), vcombine_u8(vmovn_u16(a), vmovn_u16(b)));
}

template <class T>
void vcvt(size_t n, const float* x, float scale, int32_t zp, T* y) {
  const Consts k = T(-1) < T(0) ? consts(scale, zp, -128, 127) : consts(scale, zp, 0, 255);
  for (; n >= 16; n -= 16, x += 16, y += 16) block16(x, k, y);
  if (n) {
    float in[16] = {};
    T out[16];
    std::memcpy(in, x, n * sizeof(float));
    block16(in, k, out);
    std::memcpy(y, out, n * sizeof(T));
  }
}

}  // namespace

const F32Q8VCvtUKernel f32_q8_vcvt_ukernel_x16__neon = {
    "f32_q8_vcvt_ukernel_x16__neon", vcvt<uint8_t>, vcvt<int8_t>};

}  // namespace edgert
#endif  // __aarch64__
