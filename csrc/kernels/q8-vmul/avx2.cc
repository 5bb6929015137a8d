// AVX2 q8-vmul, direct form: exact int32 products, then the same two fp32 roundings as
// q8_vmul_fp32 (multiply, then add; never fused: the build keeps -ffp-contract=off), 16 bytes at
// a time. Bit-identical to the scalar table.
#include <immintrin.h>

#include <cstring>

#include "kernels/binary_dispatch.h"
#include "kernels/q8-vmul/q8-vmul.h"

namespace edgert {

namespace {

template <bool Signed>
inline __m256i load8(const uint8_t* p) {
  __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return Signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
}

inline void store16(__m256i v0, __m256i v1, uint8_t* y) {
  const __m256i ff = _mm256_set1_epi32(0xff);
  __m256i p = _mm256_packus_epi32(_mm256_and_si256(v0, ff), _mm256_and_si256(v1, ff));
  p = _mm256_permute4x64_epi64(p, 0xD8);
  __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(y), b);
}

template <bool AS, bool BS, bool Scalar>
void vmul(size_t n, const uint8_t* a, const uint8_t* b, const Q8MulParams& p, uint8_t* y) {
  const __m256i az = _mm256_set1_epi32(p.a_zp), bz = _mm256_set1_epi32(p.b_zp);
  const __m256 scale = _mm256_set1_ps(p.scale), yzp = _mm256_set1_ps(p.y_zp);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(p.qmin));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(p.qmax));
  __m256i bconst = _mm256_setzero_si256();
  if (Scalar) bconst = _mm256_set1_epi32((BS ? int32_t(int8_t(b[0])) : int32_t(b[0])) - p.b_zp);
  auto one8 = [&](const uint8_t* ap, const uint8_t* bp) {
    __m256i da = _mm256_sub_epi32(load8<AS>(ap), az);
    __m256i db = Scalar ? bconst : _mm256_sub_epi32(load8<BS>(bp), bz);
    __m256 v = _mm256_cvtepi32_ps(_mm256_mullo_epi32(da, db));  // |product| < 2^24: exact
    v = _mm256_add_ps(_mm256_mul_ps(v, scale), yzp);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    return _mm256_cvtps_epi32(v);
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    store16(one8(a + i, Scalar ? b : b + i), one8(a + i + 8, Scalar ? b : b + i + 8), y + i);
  }
  if (i < n) {
    uint8_t ab[16] = {}, bb[16] = {}, yb[16];
    const size_t r = n - i;
    std::memcpy(ab, a + i, r);
    if (!Scalar) std::memcpy(bb, b + i, r);
    store16(one8(ab, Scalar ? b : bb), one8(ab + 8, Scalar ? b : bb + 8), yb);
    std::memcpy(y + i, yb, r);
  }
}

struct Kernel {  // for q8_binary_dispatch
  template <bool XS, bool SS, bool Scalar, class... A>
  static void run(const A&... a) { vmul<XS, SS, Scalar>(a...); }
};

}  // namespace

void q8_vmul_direct__avx2(size_t n, const uint8_t* a, const uint8_t* b, bool b_scalar,
                          bool a_signed, bool b_signed, const Q8MulParams& p, uint8_t* y) {
  q8_binary_dispatch<Kernel>(a_signed, b_signed, b_scalar, n, a, b, p, y);
}

}  // namespace edgert
