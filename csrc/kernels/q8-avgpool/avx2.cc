// AVX2 q8-avgpool. Windowed: 8 channels per vector. Each lane does what the scalar kernel does
// for its channel, in the same order (dequantize with one rounding, fp32 sum over rows then
// columns from 0, two divisions, add, clamp, round half to even via cvtps2dq), so results are
// bit-identical. Remainder channels take the scalar steps. Global: exact int32 sums, 32
// channels a step, then the scalar kernel's requantization per lane.
#include <immintrin.h>

#include "kernels/q8-avgpool/q8-avgpool.h"

namespace edgert {

namespace {

template <class T>
inline __m256 dequant8(const T* px, __m256i zp, __m256 scale) {
  __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(px));
  __m256i w = sizeof(T) == 1 && T(-1) < T(0) ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
  return _mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_sub_epi32(w, zp)));
}

template <class T>
inline T finish(float acc, float divisor, const Q8AvgPoolParams& p) {
  float v = acc / divisor / p.y_scale + p.y_zp;
  v = v > -4194304.0f ? v : -4194304.0f;
  v = v < 4194304.0f ? v : 4194304.0f;
  int32_t q = static_cast<int32_t>((v + 12582912.0f) - 12582912.0f);
  q = q < p.qmin ? p.qmin : (q > p.qmax ? p.qmax : q);
  return static_cast<T>(q);
}

}  // namespace

template <class T>
void q8_avgpool_f32acc_ukernel__avx2(size_t rows, size_t cols, size_t row_stride,
                                     size_t channels, const T* x, float divisor,
                                     const Q8AvgPoolParams& p, float* acc, T* y) {
  const __m256i zp = _mm256_set1_epi32(p.x_zp);
  const __m256 scale = _mm256_set1_ps(p.x_scale);
  const __m256 div = _mm256_set1_ps(divisor), ys = _mm256_set1_ps(p.y_scale);
  const __m256 yzp = _mm256_set1_ps(p.y_zp);
  const __m256 lo = _mm256_set1_ps(-4194304.0f), hi = _mm256_set1_ps(4194304.0f);
  const __m256i qmin = _mm256_set1_epi32(p.qmin), qmax = _mm256_set1_epi32(p.qmax);
  size_t c = 0;
  for (; c + 8 <= channels; c += 8) {
    __m256 s = _mm256_setzero_ps();
    for (size_t r = 0; r < rows; ++r) {
      const T* px = x + r * row_stride + c;
      for (size_t k = 0; k < cols; ++k, px += channels) s = _mm256_add_ps(s, dequant8(px, zp, scale));
    }
    __m256 v = _mm256_add_ps(_mm256_div_ps(_mm256_div_ps(s, div), ys), yzp);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    __m256i q = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(v), qmin), qmax);
    alignas(32) int32_t out[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(out), q);
    for (int j = 0; j < 8; ++j) y[c + j] = static_cast<T>(out[j]);
  }
  for (; c < channels; ++c) {
    float s = 0.0f;
    for (size_t r = 0; r < rows; ++r) {
      const T* px = x + r * row_stride + c;
      for (size_t k = 0; k < cols; ++k, px += channels) s += p.dq[static_cast<uint8_t>(*px)];
    }
    y[c] = finish<T>(s, divisor, p);
  }
  (void)acc;
}

namespace {

template <class T>
inline __m256i widen8(const T* p) {  // 8 channels to int32
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return T(-1) < T(0) ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
}

// float(acc) · scale clamped to [vmin, vmax] (NaN to vmin, as the scalar compares do), rounded
// half to even by cvtps2dq, + y_zp.
inline __m256i requant8(__m256i acc, const Q8GAvgPoolParams& p) {
  __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(p.scale));
  v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(p.vmin)), _mm256_set1_ps(p.vmax));
  return _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(p.y_zp));
}

}  // namespace

template <class T>
void q8_gavgpool_ukernel__avx2(size_t pixels, size_t channels, size_t pixel_stride,
                               const T* x, int32_t* acc, const Q8GAvgPoolParams& p, T* y) {
  const __m256i bias = _mm256_set1_epi32(p.bias);
  size_t c = 0;
  for (; c + 32 <= channels; c += 32) {
    __m256i a0 = bias, a1 = bias, a2 = bias, a3 = bias;
    const T* px = x + c;
    for (size_t i = 0; i < pixels; ++i, px += pixel_stride) {
      a0 = _mm256_add_epi32(a0, widen8(px));
      a1 = _mm256_add_epi32(a1, widen8(px + 8));
      a2 = _mm256_add_epi32(a2, widen8(px + 16));
      a3 = _mm256_add_epi32(a3, widen8(px + 24));
    }
    // int32 to int16 to 8 bits: the values lie in [qmin, qmax] already, the packs only narrow
    // (their lane interleave undone by the permute)
    const __m256i h01 = _mm256_packs_epi32(requant8(a0, p), requant8(a1, p));
    const __m256i h23 = _mm256_packs_epi32(requant8(a2, p), requant8(a3, p));
    const __m256i b = T(-1) < T(0) ? _mm256_packs_epi16(h01, h23) : _mm256_packus_epi16(h01, h23);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + c),
                        _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
  for (; c + 8 <= channels; c += 8) {
    __m256i a = bias;
    const T* px = x + c;
    for (size_t i = 0; i < pixels; ++i, px += pixel_stride) a = _mm256_add_epi32(a, widen8(px));
    alignas(32) int32_t out[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(out), requant8(a, p));
    for (int j = 0; j < 8; ++j) y[c + j] = static_cast<T>(out[j]);
  }
  if (c < channels)  // the last 1-7 channels
    q8_gavgpool_ukernel__scalar(pixels, channels - c, pixel_stride, x + c, acc, p, y + c);
}

template void q8_gavgpool_ukernel__avx2<uint8_t>(size_t, size_t, size_t, const uint8_t*,
                                                 int32_t*, const Q8GAvgPoolParams&, uint8_t*);
template void q8_gavgpool_ukernel__avx2<int8_t>(size_t, size_t, size_t, const int8_t*, int32_t*,
                                                const Q8GAvgPoolParams&, int8_t*);

const Q8AvgPoolUKernel q8_avgpool_ukernel__avx2 = {
    "q8_avgpool_ukernel__avx2", q8_gavgpool_ukernel__avx2<uint8_t>,
    q8_gavgpool_ukernel__avx2<int8_t>, q8_avgpool_f32acc_ukernel__avx2<uint8_t>,
    q8_avgpool_f32acc_ukernel__avx2<int8_t>};

template void q8_avgpool_f32acc_ukernel__avx2<uint8_t>(size_t, size_t, size_t, size_t,
                                                       const uint8_t*, float,
                                                       const Q8AvgPoolParams&, float*, uint8_t*);
template void q8_avgpool_f32acc_ukernel__avx2<int8_t>(size_t, size_t, size_t, size_t,
                                                      const int8_t*, float,
                                                      const Q8AvgPoolParams&, float*, int8_t*);

}  // namespace edgert
