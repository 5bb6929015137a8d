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
// File-local in each kernel file that includes it (avx512vnni.cc, amx.cc, compiled with different
// flags): no inline copy of these is shared between the two, nor with any other file.
namespace {

// The output stage's constants, made once per call: in registers for every row (read through
// the Q8Requant reference, they were reloaded after each byte store that might alias them).
struct OutStage {
  __m512 lo, hi;
  __m512i zp;
  // store_rows4's: y_zp as int16 lanes, qmin and qmax as bytes (u8 or i8 by the output type).
  __m512i zp16, qmin8, qmax8;
  bool guard;
  // [qmin, qmax] is all of u8 / all of i8: the saturating packs clamp already (ReLU6 and plain
  // layers as onnxruntime quantizes them).
  bool full_u8, full_i8;
  explicit OutStage(const Q8Requant& rq)
      : lo(_mm512_set1_ps(rq.lo)), hi(_mm512_set1_ps(rq.hi)), zp(_mm512_set1_epi32(rq.y_zp)),
        zp16(_mm512_set1_epi16(static_cast<int16_t>(rq.y_zp))),
        qmin8(_mm512_set1_epi8(static_cast<char>(int(rq.lo) + rq.y_zp))),
        qmax8(_mm512_set1_epi8(static_cast<char>(int(rq.hi) + rq.y_zp))),
        guard(rq.guard),
        full_u8(int(rq.lo) + rq.y_zp == 0 && int(rq.hi) + rq.y_zp == 255),
        full_i8(int(rq.lo) + rq.y_zp == -128 && int(rq.hi) + rq.y_zp == 127) {}
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

// Four rows of one 16-column block, u8 or i8 output, for layers whose products provably stay
// below 2^31 (rq.guard false, see q8-gemm.h), where cvtps2dq cannot overflow: each row rounded
// (half to even) before it is clamped, which is the same since qmin − y_zp and qmax − y_zp are
// whole numbers; the saturating packs to int16 (+ y_zp, saturating) and to bytes clamp to the
// type's range, and a byte max/min to [qmin, qmax] (Clamp false: none, for a [qmin, qmax] that
// is the type's whole range). Per 64 outputs that is about 23 vector ops
// against store_row's 32. The packs work within 128-bit lanes: lane L ends up holding columns
// 4L..4L+3 of rows 0, 1, 2, 3 as its four dwords, which one vpermd gathers row by row.
template <class Out, bool Clamp = true>
__attribute__((always_inline)) inline void store_rows4(__m512i a0, __m512i a1, __m512i a2,
                                                      __m512i a3, const float* scale, __mmask16 m,
                                                      Out* c, size_t c_stride, const OutStage& os) {
  static_assert(sizeof(Out) == 1, "byte outputs only");
  const __m512 s = _mm512_loadu_ps(scale);
  auto q = [&](__m512i a) { return _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(a), s)); };
  const __m512i p01 = _mm512_adds_epi16(_mm512_packs_epi32(q(a0), q(a1)), os.zp16);
  const __m512i p23 = _mm512_adds_epi16(_mm512_packs_epi32(q(a2), q(a3)), os.zp16);
  const __m512i rows = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  __m512i b;
  if constexpr (std::is_same<Out, uint8_t>::value) {
    b = _mm512_permutexvar_epi32(rows, _mm512_packus_epi16(p01, p23));
    if constexpr (Clamp) b = _mm512_min_epu8(_mm512_max_epu8(b, os.qmin8), os.qmax8);
  } else {
    b = _mm512_permutexvar_epi32(rows, _mm512_packs_epi16(p01, p23));
    if constexpr (Clamp) b = _mm512_min_epi8(_mm512_max_epi8(b, os.qmin8), os.qmax8);
  }
  _mm_mask_storeu_epi8(c, m, _mm512_castsi512_si128(b));
  _mm_mask_storeu_epi8(c + c_stride, m, _mm512_extracti32x4_epi32(b, 1));
  _mm_mask_storeu_epi8(c + 2 * c_stride, m, _mm512_extracti32x4_epi32(b, 2));
  _mm_mask_storeu_epi8(c + 3 * c_stride, m, _mm512_extracti32x4_epi32(b, 3));
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

}  // namespace
}  // namespace avx512
}  // namespace edgert
