// AVX-512 q8-vadd, direct form (runs under the avx512vnni and amx ISAs; uses AVX-512 F/BW only):
// the fused multiply-adds of q8_vadd_fp32 on 16 fp32 lanes, 64 bytes a step in four independent
// chains. Bit-identical to the scalar table as the AVX2 kernel is: the same fp32 operations, each
// rounded once, cvtps2dq rounding half to even under the default MXCSR; the clamped values lie in
// [qmin, qmax], so vpmovdb's truncation keeps the byte. The last n % 16 bytes go through masked
// loads and stores: nothing is read or written past the arrays.
// GCC 12's AVX-512 headers start some intrinsics from an "undefined" vector and -Wall flags that
// (GCC bug 105593); nothing here reads an uninitialized value.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/binary_dispatch.h"
#include "kernels/q8-vadd/q8-vadd.h"

namespace edgert {

namespace {

// 16 bytes at p (mask m) as fp32 values (int8 when Signed).
template <bool Signed>
inline __m512 load16(const uint8_t* p, __mmask16 m) {
  const __m128i b = _mm_maskz_loadu_epi8(m, p);
  return _mm512_cvtepi32_ps(Signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b));
}

template <bool XS, bool SS, bool Scalar>
void vadd(size_t n, const uint8_t* x, const uint8_t* s, const Q8AddParams& p, uint8_t* y) {
  const __m512 rx = _mm512_set1_ps(p.rx), rs = _mm512_set1_ps(p.rs);
  const __m512 fixed = _mm512_set1_ps(p.fixed);
  const __m512 lo = _mm512_set1_ps(static_cast<float>(p.qmin));
  const __m512 hi = _mm512_set1_ps(static_cast<float>(p.qmax));
  __m512 base = fixed;
  if (Scalar) {
    const float sv = SS ? float(int8_t(s[0])) : float(s[0]);
    base = _mm512_fmadd_ps(_mm512_set1_ps(sv), rs, fixed);
  }
  // Elements [i, i + 16) under mask m.
  auto one16 = [&](size_t i, __mmask16 m) {
    const __m512 inner = Scalar ? base : _mm512_fmadd_ps(load16<SS>(s + i, m), rs, fixed);
    __m512 v = _mm512_fmadd_ps(load16<XS>(x + i, m), rx, inner);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);  // max/min order: NaN becomes lo, as in scalar
    _mm_mask_storeu_epi8(y + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  };
  q8_binary_steps16<__mmask16>(n, one16);
}

struct Kernel {  // for q8_binary_dispatch
  template <bool XS, bool SS, bool Scalar, class... A>
  static void run(const A&... a) { vadd<XS, SS, Scalar>(a...); }
};

}  // namespace

void q8_vadd_direct__avx512vnni(size_t n, const uint8_t* x, const uint8_t* s, bool s_scalar,
                                bool x_signed, bool s_signed, const Q8AddParams& p, uint8_t* y) {
  q8_binary_dispatch<Kernel>(x_signed, s_signed, s_scalar, n, x, s, p, y);
}

}  // namespace edgert
