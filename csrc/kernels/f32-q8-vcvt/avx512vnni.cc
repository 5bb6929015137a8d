// AVX-512 f32-q8-vcvt (runs under the avx512vnni and amx ISAs; uses AVX-512 F/BW only), 64
// floats per step, bit-identical to the scalar kernel: the AVX2 kernel's scheme on 16 lanes.
// Each lane computes s = clamp(fma(x, 1/scale, M), M + lo, M + hi), M = 2^9 + 256 + zp + 1/2, whose
// encoding holds floor(quotient + zp + 1/2) mod 256 in bits 14-21 and the fraction (on a 2^-14
// grid) in bits 0-13; a zero fraction marks a quotient within 2^-14 of a half-integer, where the
// product may round differently from the quotient, and any 64 floats with one are redone by the
// division itself (avx2.cc gives the error bound). NaN clamps to M + lo, as in scalar. A scale
// whose reciprocal is not a normal float always divides. Never reads x or writes y past n.
// GCC 12's AVX-512 headers start some intrinsics from an "undefined" vector and -Wall flags that
// (GCC bug 105593); nothing here reads an uninitialized value.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/f32-q8-vcvt/f32-q8-vcvt.h"

namespace edgert {
namespace {

struct Consts {
  __m512 recip, magic, smin, smax;  // the fast path
  __m512 scale, lo, hi;             // the division path
  __m512i zp;
  bool always_divide;
};

Consts consts(float scale, int32_t zp, int32_t tmin, int32_t tmax) {
  Consts k;
  const float magic = 512.0f + 256.0f + static_cast<float>(zp) + 0.5f;  // exact
  k.recip = _mm512_set1_ps(1.0f / scale);
  k.magic = _mm512_set1_ps(magic);
  k.smin = _mm512_set1_ps(magic + static_cast<float>(tmin - zp));
  k.smax = _mm512_set1_ps(magic + static_cast<float>(tmax - zp));
  k.scale = _mm512_set1_ps(scale);
  k.lo = _mm512_set1_ps(static_cast<float>(tmin - zp));
  k.hi = _mm512_set1_ps(static_cast<float>(tmax - zp));
  k.zp = _mm512_set1_epi32(zp);
  k.always_divide = !(scale >= 0x1p-100f && scale <= 0x1p100f);
  return k;
}

// max_ps(v, lo) is v > lo ? v : lo (NaN gives lo), min_ps(v, hi) is v < hi ? v : hi: the
// scalar kernel's clamp.
inline __m512 clamp(__m512 v, __m512 lo, __m512 hi) {
  return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
}

// The scalar steps, 16 lanes at a time (cvtps2dq rounds half to even); the values lie in T's
// range, so vpmovdb's truncation keeps the byte.
void divide64(const float* x, const Consts& k, uint8_t* y) {
  for (int j = 0; j < 4; ++j) {
    const __m512 v = clamp(_mm512_div_ps(_mm512_loadu_ps(x + 16 * j), k.scale), k.lo, k.hi);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), k.zp);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 16 * j), _mm512_cvtepi32_epi8(q));
  }
}

void block64(const float* x, const Consts& k, uint8_t* y) {
  __m512i s[4];
  for (int j = 0; j < 4; ++j) {
    const __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16 * j), k.recip, k.magic);
    s[j] = _mm512_castps_si512(clamp(v, k.smin, k.smax));
  }
  // Shifted left by 2, each dword holds the fraction in its low 16 bits (zero: a tie) and the
  // output byte in byte 2.
  for (int j = 0; j < 4; ++j) s[j] = _mm512_slli_epi32(s[j], 2);
  const __m512i low =
      _mm512_min_epu16(_mm512_min_epu16(s[0], s[1]), _mm512_min_epu16(s[2], s[3]));
  const __mmask32 zero_words = _mm512_cmpeq_epi16_mask(low, _mm512_setzero_si512());
  if (k.always_divide || (zero_words & 0x55555555u) != 0) return divide64(x, k, y);
  for (int j = 0; j < 4; ++j)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 16 * j),
                     _mm512_cvtepi32_epi8(_mm512_srli_epi32(s[j], 16)));
}

template <class T>
void vcvt(size_t n, const float* x, float scale, int32_t zp, T* y_out) {
  // No std::numeric_limits here: an inline function emitted from this file could be the copy
  // the linker keeps for the generic code.
  const Consts k = T(-1) < T(0) ? consts(scale, zp, -128, 127) : consts(scale, zp, 0, 255);
  uint8_t* y = reinterpret_cast<uint8_t*>(y_out);
  for (; n >= 64; n -= 64, x += 64, y += 64) block64(x, k, y);
  if (n) {  // the tail through a zero-padded copy
    float in[64] = {};
    uint8_t out[64];
    std::memcpy(in, x, n * sizeof(float));
    block64(in, k, out);
    std::memcpy(y, out, n);
  }
}

}  // namespace

const F32Q8VCvtUKernel f32_q8_vcvt_ukernel_x64__avx512vnni = {
    "f32_q8_vcvt_ukernel_x64__avx512vnni", vcvt<uint8_t>, vcvt<int8_t>};

}  // namespace edgert
