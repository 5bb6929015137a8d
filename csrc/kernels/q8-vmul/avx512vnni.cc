// AVX-512 q8-vmul, direct form (runs under the avx512vnni and amx ISAs; uses AVX-512 F/BW only):
// q8_vmul_fp32 on 16 int32/fp32 lanes, 64 bytes a step in four independent chains. Bit-identical
// to the scalar table as the AVX2 kernel is: exact int32 products (|product| < 2^24, so the
// conversion is exact), then a multiply and an add each rounded once (never fused: the build keeps
// -ffp-contract=off, and no fmadd is written here), cvtps2dq rounding half to even under the
// default MXCSR; the clamped values lie in [qmin, qmax], so vpmovdb's truncation keeps the byte.
// The last n % 16 bytes go through masked loads and stores: nothing is read or written past the
// arrays.
// GCC 12's AVX-512 headers start some intrinsics from an "undefined" vector and -Wall flags that
// (GCC bug 105593); nothing here reads an uninitialized value.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/binary_dispatch.h"
#include "kernels/q8-vmul/q8-vmul.h"

namespace edgert {

namespace {

// 16 bytes at p (mask m) as int32 values (int8 when Signed).
template <bool Signed>
inline __m512i load16(const uint8_t* p, __mmask16 m) {
  const __m128i b = _mm_maskz_loadu_epi8(m, p);
  return Signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
}

template <bool AS, bool BS, bool Scalar>
void vmul(size_t n, const uint8_t* a, const uint8_t* b, const Q8MulParams& p, uint8_t* y) {
  const __m512i az = _mm512_set1_epi32(p.a_zp), bz = _mm512_set1_epi32(p.b_zp);
  const __m512 scale = _mm512_set1_ps(p.scale), yzp = _mm512_set1_ps(p.y_zp);
  const __m512 lo = _mm512_set1_ps(static_cast<float>(p.qmin));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(p.qmax));
  __m512i bconst = _mm512_setzero_si512();
  if (Scalar) bconst = _mm512_set1_epi32((BS ? int32_t(int8_t(b[0])) : int32_t(b[0])) - p.b_zp);
  // Elements [i, i + 16) under mask m.
  auto one16 = [&](size_t i, __mmask16 m) {
    const __m512i da = _mm512_sub_epi32(load16<AS>(a + i, m), az);
    const __m512i db = Scalar ? bconst : _mm512_sub_epi32(load16<BS>(b + i, m), bz);
    __m512 v = _mm512_cvtepi32_ps(_mm512_mullo_epi32(da, db));
    v = _mm512_add_ps(_mm512_mul_ps(v, scale), yzp);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);  // max/min order: as the AVX2 kernel
    _mm_mask_storeu_epi8(y + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  };
  q8_binary_steps16<__mmask16>(n, one16);
}

struct Kernel {  // for q8_binary_dispatch
  template <bool XS, bool SS, bool Scalar, class... A>
  static void run(const A&... a) { vmul<XS, SS, Scalar>(a...); }
};

}  // namespace

void q8_vmul_direct__avx512vnni(size_t n, const uint8_t* a, const uint8_t* b, bool b_scalar,
                                bool a_signed, bool b_signed, const Q8MulParams& p, uint8_t* y) {
  q8_binary_dispatch<Kernel>(a_signed, b_signed, b_scalar, n, a, b, p, y);
}

}  // namespace edgert
