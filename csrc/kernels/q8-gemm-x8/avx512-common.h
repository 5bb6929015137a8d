// The AVX-512 output stage and column correction shared by the avx512vnni and amx byte-form
// kernels (q8-gemm-x8.h). Included only by files compiled with AVX-512 F/BW/VL/VNNI enabled.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/q8-gemm/q8-gemm.h"

namespace edgert {
namespace avx512 {

// The output stage's constants, made once per call: in registers for every row (read through
// the Q8Requant reference, they were reloaded after each byte store that might alias them).
struct OutStage {
  __m512 lo, hi;
  __m512i zp;
  explicit OutStage(const Q8Requant& rq)
      : lo(_mm512_set1_ps(rq.lo)), hi(_mm512_set1_ps(rq.hi)), zp(_mm512_set1_epi32(rq.y_zp)) {}
};

template <class Out>
inline void store_row(__m512i acc, const float* scale, __mmask16 m, Out* c, const OutStage& os) {
  // acc holds bias already; the float multiply is rounded once, as in the scalar code.
  const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(scale));
  if constexpr (std::is_same<Out, float>::value) {
    _mm512_mask_storeu_ps(c, m, v);
  } else {
    // lo and hi are whole numbers (qmin − y_zp, qmax − y_zp) and max_ps returns lo for a NaN, so
    // the rounded value plus y_zp lies in [qmin, qmax]: the byte conversion just truncates.
    const __m512 cl = _mm512_min_ps(_mm512_max_ps(v, os.lo), os.hi);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(cl), os.zp);
    _mm_mask_storeu_epi8(c, m, _mm512_cvtepi32_epi8(q));
  }
}

// 128·Σw' of a block's columns (what form 1 subtracts), four chains.
inline __m512i column_corr(const int8_t* wb, size_t kq) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i c[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                  _mm512_setzero_si512()};
  for (size_t q = 0; q < kq; ++q)
    c[q % 4] = _mm512_dpbusd_epi32(c[q % 4], flip, _mm512_loadu_si512(wb + q * 64));
  return _mm512_add_epi32(_mm512_add_epi32(c[0], c[1]), _mm512_add_epi32(c[2], c[3]));
}

}  // namespace avx512
}  // namespace edgert
