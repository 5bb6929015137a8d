// AVX-512 VNNI byte-form q8-gemm, up to 8x16 tile, K in quads (c4): one vpdpbusd (zmm) per row
// and quad adds the four u8 × s8 products of each of 16 columns into its int32 lane, with no int16
// step, so the pair_u8 operand is exact for any w' in [−128, 127]. pair_u8 (fn[0]) reads raw rows
// as the AVX2 kernel does; sign_s8 (fn[1]) reads raw rows too (exact_pairs, see q8-gemm-x8.h):
// it multiplies the same operand u = s ^ 0x80 and subtracts 128·Σw' (one more vpdpbusd of 0x80
// bytes per quad and column block), which is the sign_s8 sum its bias was corrected for.
// Reads A rows only below k (the last partial quad through a copy); tiles of fewer than 4 rows
// split K over several accumulators (vpdpbusd's latency, not its throughput, would bound them).
// Output stage: cvtdq2ps, mulps (no FMA), max/min, cvtps2dq (round half to even under the
// default MXCSR), + y_zp, saturating down-conversion, masked stores for a partial column block.
// GCC 12's AVX-512 headers start some intrinsics from an "undefined" vector and -Wall flags that
// (GCC bug 105593); nothing here reads an uninitialized value.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/q8-gemm-x8/q8-gemm-x8.h"

namespace edgert {
namespace {

constexpr size_t MR = 8, NR = 16;

inline __m512i bcast_quad(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

inline __m512i bcast_tail(const uint8_t* p, size_t n, uint8_t pad) {
  uint8_t b[4] = {pad, pad, pad, pad};
  std::memcpy(b, p, n);
  int32_t v;
  std::memcpy(&v, b, 4);
  return _mm512_set1_epi32(v);
}

template <class Out>
inline void store_row(__m512i acc, const float* scale, size_t nj, Out* c, const Q8Requant& rq) {
  // acc holds bias already; the float multiply is rounded once, as in the scalar code.
  const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(scale));
  const __mmask16 m = nj == NR ? __mmask16(0xFFFF) : __mmask16((1u << nj) - 1);
  if constexpr (std::is_same<Out, float>::value) {
    _mm512_mask_storeu_ps(c, m, v);
  } else {
    const __m512 cl = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(rq.lo)), _mm512_set1_ps(rq.hi));
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(cl), _mm512_set1_epi32(rq.y_zp));
    __m128i b;
    if constexpr (std::is_same<Out, uint8_t>::value) {
      q = _mm512_max_epi32(q, _mm512_setzero_si512());  // then unsigned saturation: as packus
      b = _mm512_cvtusepi32_epi8(q);
    } else {
      b = _mm512_cvtsepi32_epi8(q);
    }
    _mm_mask_storeu_epi8(c, m, b);
  }
}

// R rows (1..8) of one 16-column block; U accumulators per row split the quads (U = 1 for R >= 4).
// Form 0: acc = bias + Σ u·w'; form 1: the same minus 128·Σw'. u = x ^ 0x80 when Flip.
template <int Form, bool Flip, size_t R, size_t U, class Out>
inline void block(const uint8_t* const* rows, size_t k, const int8_t* wb, const int32_t* bias,
                  size_t bias_stride, const float* scale, size_t nj, Out* c, size_t c_stride,
                  const Q8Requant& rq) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i acc[R][U], corr[U];
  for (size_t r = 0; r < R; ++r) {
    acc[r][0] = _mm512_loadu_si512(bias + r * bias_stride);
    for (size_t u = 1; u < U; ++u) acc[r][u] = _mm512_setzero_si512();
  }
  for (size_t u = 0; u < U; ++u) corr[u] = _mm512_setzero_si512();
  const size_t kfull = k / 4, rem = k % 4;
  size_t q = 0;
  auto step = [&](size_t u, size_t off, const int8_t* wq) {
    const __m512i w = _mm512_loadu_si512(wq);
    for (size_t r = 0; r < R; ++r) {
      __m512i a = bcast_quad(rows[r] + off);
      if (Flip) a = _mm512_xor_si512(a, flip);
      acc[r][u] = _mm512_dpbusd_epi32(acc[r][u], a, w);
    }
    if (Form == 1) corr[u] = _mm512_dpbusd_epi32(corr[u], flip, w);
  };
  for (; q + U <= kfull; q += U)
    for (size_t u = 0; u < U; ++u) step(u, 4 * (q + u), wb + (q + u) * 4 * NR);
  for (; q < kfull; ++q) step(0, 4 * q, wb + q * 4 * NR);
  if (rem) {  // the packed weights of the missing bytes are zero: the pad value does not matter
    const __m512i w = _mm512_loadu_si512(wb + kfull * 4 * NR);
    for (size_t r = 0; r < R; ++r) {
      __m512i a = bcast_tail(rows[r] + 4 * kfull, rem, 0);
      if (Flip) a = _mm512_xor_si512(a, flip);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a, w);
    }
    if (Form == 1) corr[0] = _mm512_dpbusd_epi32(corr[0], flip, w);
  }
  for (size_t u = 1; u < U; ++u) corr[0] = _mm512_add_epi32(corr[0], corr[u]);
  for (size_t r = 0; r < R; ++r) {
    __m512i s = acc[r][0];
    for (size_t u = 1; u < U; ++u) s = _mm512_add_epi32(s, acc[r][u]);
    if (Form == 1) s = _mm512_sub_epi32(s, corr[0]);
    store_row<Out>(s, scale, nj, c + r * c_stride, rq);
  }
}

template <int Form, bool Flip, size_t R, class Out>
void gemm_rows(size_t nc, size_t k, const uint8_t* const* rows, const int8_t* w,
               const int32_t* bias, size_t bias_stride, const float* scale, Out* c,
               size_t c_stride, const Q8Requant& rq) {
  constexpr size_t U = R >= 4 ? 1 : R >= 2 ? 2 : 4;
  const size_t kq = (k + 3) / 4;
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    const size_t nj = nc - n0 < NR ? nc - n0 : NR;
    block<Form, Flip, R, U, Out>(rows, k, w + n0 / NR * kq * 4 * NR, bias + n0, bias_stride,
                                 scale + n0, nj, c + n0, c_stride, rq);
  }
}

template <int Form, class In, class Out>
void gemm_8x16(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
               const int32_t* bias, size_t bias_stride, const float* scale, void* c_out,
               size_t c_stride, const Q8Requant& rq) {
  // The operand is u8: x for u8 input, x ^ 0x80 for i8 input (both forms).
  constexpr bool kFlip = !std::is_same<In, uint8_t>::value;
  const uint8_t* const* rows = reinterpret_cast<const uint8_t* const*>(a);
  Out* c = static_cast<Out*>(c_out);
  switch (mr) {
#define EDGERT_ROWS(R) \
  case R: return gemm_rows<Form, kFlip, R, Out>(nc, k, rows, w, bias, bias_stride, scale, c, c_stride, rq);
    EDGERT_ROWS(1) EDGERT_ROWS(2) EDGERT_ROWS(3) EDGERT_ROWS(4)
    EDGERT_ROWS(5) EDGERT_ROWS(6) EDGERT_ROWS(7) EDGERT_ROWS(8)
#undef EDGERT_ROWS
    default: return;
  }
}

}  // namespace

#define EDGERT_X8_ROW(F, In) {gemm_8x16<F, In, uint8_t>, gemm_8x16<F, In, int8_t>, \
                              gemm_8x16<F, In, float>}
const Q8GemmX8UKernel q8_gemm_x8_minmax_fp32_ukernel_8x16c4__avx512vnni = {
    "q8_gemm_x8_minmax_fp32_ukernel_8x16c4__avx512vnni", MR, NR,
    {{EDGERT_X8_ROW(0, uint8_t), EDGERT_X8_ROW(0, int8_t)},
     {EDGERT_X8_ROW(1, uint8_t), EDGERT_X8_ROW(1, int8_t)}},
    nullptr, q8_gemm_x8_scan_pack__avx2, true};  // the AVX2 packing: same layout
#undef EDGERT_X8_ROW

}  // namespace edgert
