// AVX2 q8-gemm on the int16 packing (q8_gemm_pack_w__scalar), 2x4 tile: vpmaddwd dot products
// along K (every product and pair sum exact in int32), one horizontal reduction per tile; the
// form for layers the byte kernels cannot take exactly (u8 weights with a zero point, −128).
// Reads round_up(nc, 4) packed rows, never A rows >= mr, bias/scale only below nc. Output
// stage as the scalar one in vector form (no FMA; cvtps2dq rounds half to even by default).
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/q8-gemm/q8-gemm.h"

namespace edgert {
namespace {

constexpr size_t MR = 2, NR = 4;

// The four column sums of one row: lane j of the result = Σ lanes of acc_j.
inline __m128i reduce4(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

template <class Out>
inline void store4(__m128i acc, const int32_t* bias, const float* scale, size_t nj, Out* c,
                   const Q8Requant& rq) {
  alignas(16) int32_t b[NR] = {};
  alignas(16) float s[NR] = {};
  std::memcpy(b, bias, nj * sizeof(int32_t));
  std::memcpy(s, scale, nj * sizeof(float));
  const __m128 v = _mm_mul_ps(_mm_cvtepi32_ps(_mm_add_epi32(acc, _mm_load_si128((const __m128i*)b))),
                              _mm_load_ps(s));
  if constexpr (std::is_same<Out, float>::value) {
    alignas(16) float out[NR];
    _mm_store_ps(out, v);
    std::memcpy(c, out, nj * sizeof(float));
  } else {
    const __m128 cl = _mm_min_ps(_mm_max_ps(v, _mm_set1_ps(rq.lo)), _mm_set1_ps(rq.hi));
    const __m128i q = _mm_add_epi32(_mm_cvtps_epi32(cl), _mm_set1_epi32(rq.y_zp));
    const __m128i w = _mm_packs_epi32(q, q);
    const __m128i bytes = std::is_same<Out, uint8_t>::value ? _mm_packus_epi16(w, w)
                                                            : _mm_packs_epi16(w, w);
    const int32_t v4 = _mm_cvtsi128_si32(bytes);
    std::memcpy(c, &v4, nj);
  }
}

inline __m256i madd8(__m256i acc, const int16_t* a, const int16_t* w) {
  const __m128i p = _mm_madd_epi16(_mm_loadu_si128((const __m128i*)a),
                                   _mm_loadu_si128((const __m128i*)w));
  return _mm256_add_epi32(acc, _mm256_inserti128_si256(_mm256_setzero_si256(), p, 0));
}

template <class Out>
void gemm_2x4(size_t mr, size_t nc, size_t kp, const int16_t* a, size_t a_stride,
              const int16_t* w, const int32_t* bias, const float* scale, void* c_out,
              size_t c_stride, const Q8Requant& rq) {
  Out* c = static_cast<Out*>(c_out);
  const int16_t* a0 = a;
  const int16_t* a1 = mr > 1 ? a + a_stride : a;  // short tile: recompute row 0, store less
  const size_t k16 = kp / 16 * 16;
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    const int16_t* w0 = w + n0 * kp;
    const int16_t *w1 = w0 + kp, *w2 = w1 + kp, *w3 = w2 + kp;
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c02 = c00, c03 = c00;
    __m256i c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    for (size_t k = 0; k < k16; k += 16) {
      const __m256i x0 = _mm256_loadu_si256((const __m256i*)(a0 + k));
      const __m256i x1 = _mm256_loadu_si256((const __m256i*)(a1 + k));
      __m256i v = _mm256_loadu_si256((const __m256i*)(w0 + k));
      c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x0, v));
      c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x1, v));
      v = _mm256_loadu_si256((const __m256i*)(w1 + k));
      c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x0, v));
      c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x1, v));
      v = _mm256_loadu_si256((const __m256i*)(w2 + k));
      c02 = _mm256_add_epi32(c02, _mm256_madd_epi16(x0, v));
      c12 = _mm256_add_epi32(c12, _mm256_madd_epi16(x1, v));
      v = _mm256_loadu_si256((const __m256i*)(w3 + k));
      c03 = _mm256_add_epi32(c03, _mm256_madd_epi16(x0, v));
      c13 = _mm256_add_epi32(c13, _mm256_madd_epi16(x1, v));
    }
    if (k16 < kp) {  // kp is a multiple of 8: one half-width step remains
      c00 = madd8(c00, a0 + k16, w0 + k16);
      c01 = madd8(c01, a0 + k16, w1 + k16);
      c02 = madd8(c02, a0 + k16, w2 + k16);
      c03 = madd8(c03, a0 + k16, w3 + k16);
      c10 = madd8(c10, a1 + k16, w0 + k16);
      c11 = madd8(c11, a1 + k16, w1 + k16);
      c12 = madd8(c12, a1 + k16, w2 + k16);
      c13 = madd8(c13, a1 + k16, w3 + k16);
    }
    const size_t nj = nc - n0 < NR ? nc - n0 : NR;
    store4<Out>(reduce4(c00, c01, c02, c03), bias + n0, scale + n0, nj, c + n0, rq);
    if (mr > 1)
      store4<Out>(reduce4(c10, c11, c12, c13), bias + n0, scale + n0, nj, c + c_stride + n0, rq);
  }
}

}  // namespace

const Q8GemmUKernel q8_gemm_minmax_fp32_ukernel_2x4__avx2 = {
    "q8_gemm_minmax_fp32_ukernel_2x4__avx2", MR, NR, q8_gemm_pack_w__scalar,
    gemm_2x4<uint8_t>, gemm_2x4<int8_t>, gemm_2x4<float>};

}  // namespace edgert
