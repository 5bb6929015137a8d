// AVX2+FMA q8-vadd, direct form: the fused multiply-adds of q8_vadd_fp32, 16 bytes at a time.
// Bit-identical to the scalar table: the same fp32 operations, each rounded once, and
// cvtps2dq rounds half to even under the default MXCSR like nearbyint.
#include <immintrin.h>

#include <cstring>

#include "kernels/binary_dispatch.h"
#include "kernels/q8-vadd/q8-vadd.h"

namespace edgert {

namespace {

// 8 bytes at p as fp32 values (int8 when Signed).
template <bool Signed>
inline __m256 load8(const uint8_t* p) {
  __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  __m256i w = Signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
  return _mm256_cvtepi32_ps(w);
}

// Low bytes of 16 clamped int32 results (v0: elements 0-7, v1: 8-15) stored to y.
inline void store16(__m256i v0, __m256i v1, uint8_t* y) {
  const __m256i ff = _mm256_set1_epi32(0xff);
  __m256i p = _mm256_packus_epi32(_mm256_and_si256(v0, ff), _mm256_and_si256(v1, ff));
  p = _mm256_permute4x64_epi64(p, 0xD8);  // undo the per-lane interleave of packus
  __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(y), b);
}

template <bool XS, bool SS, bool Scalar>
void vadd(size_t n, const uint8_t* x, const uint8_t* s, const Q8AddParams& p, uint8_t* y) {
  const __m256 rx = _mm256_set1_ps(p.rx), rs = _mm256_set1_ps(p.rs);
  const __m256 fixed = _mm256_set1_ps(p.fixed);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(p.qmin));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(p.qmax));
  __m256 base = fixed;
  if (Scalar) {
    const float sv = SS ? float(int8_t(s[0])) : float(s[0]);
    base = _mm256_fmadd_ps(_mm256_set1_ps(sv), rs, fixed);
  }
  auto one8 = [&](const uint8_t* xp, const uint8_t* sp) {
    __m256 inner = Scalar ? base : _mm256_fmadd_ps(load8<SS>(sp), rs, fixed);
    __m256 v = _mm256_fmadd_ps(load8<XS>(xp), rx, inner);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);  // max/min order: NaN becomes lo, as in scalar
    return _mm256_cvtps_epi32(v);
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i v0 = one8(x + i, Scalar ? s : s + i);
    __m256i v1 = one8(x + i + 8, Scalar ? s : s + i + 8);
    store16(v0, v1, y + i);
  }
  if (i < n) {  // the tail through a padded copy: never reads or writes past the arrays
    uint8_t xb[16] = {}, sb[16] = {}, yb[16];
    const size_t r = n - i;
    std::memcpy(xb, x + i, r);
    if (!Scalar) std::memcpy(sb, s + i, r);
    store16(one8(xb, Scalar ? s : sb), one8(xb + 8, Scalar ? s : sb + 8), yb);
    std::memcpy(y + i, yb, r);
  }
}

struct Kernel {  // for q8_binary_dispatch
  template <bool XS, bool SS, bool Scalar, class... A>
  static void run(const A&... a) { vadd<XS, SS, Scalar>(a...); }
};

}  // namespace

void q8_vadd_direct__avx2(size_t n, const uint8_t* x, const uint8_t* s, bool s_scalar,
                          bool x_signed, bool s_signed, const Q8AddParams& p, uint8_t* y) {
  q8_binary_dispatch<Kernel>(x_signed, s_signed, s_scalar, n, x, s, p, y);
}

}  // namespace edgert
