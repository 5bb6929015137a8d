// AVX2 q8-dwconv: 16 channels per step; taps taken in pairs whose bytes are interleaved and
// widened to int16, so one vpmaddwd gives 8 exact int32 sums of two products (|w|, |x| <= 255).
// Weights packed by q8_dwconv_pack_w_c16x2 (zeros past taps and channels, so an odd last tap
// pairs with itself at weight 0). Reads input, bias and scale only below channels (the channel
// tail goes through copies); output stage as in q8-gemm-x8/avx2.cc (no FMA, cvtps2dq).
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/q8-dwconv/q8-dwconv.h"

namespace edgert {
namespace {

constexpr size_t kC = 16;

template <class In>
inline __m256i widen(__m128i bytes) {
  return std::is_same<In, uint8_t>::value ? _mm256_cvtepu8_epi16(bytes)
                                          : _mm256_cvtepi8_epi16(bytes);
}

template <class Out>
inline void store16(__m256i acc0, __m256i acc1, const int32_t* bias, const float* scale,
                    size_t nc, Out* y, const Q8Requant& rq) {
  const __m256 v0 = _mm256_mul_ps(
      _mm256_cvtepi32_ps(_mm256_add_epi32(acc0, _mm256_loadu_si256((const __m256i*)bias))),
      _mm256_loadu_ps(scale));
  const __m256 v1 = _mm256_mul_ps(
      _mm256_cvtepi32_ps(_mm256_add_epi32(acc1, _mm256_loadu_si256((const __m256i*)(bias + 8)))),
      _mm256_loadu_ps(scale + 8));
  if constexpr (std::is_same<Out, float>::value) {
    alignas(32) float tmp[kC];
    _mm256_store_ps(tmp, v0);
    _mm256_store_ps(tmp + 8, v1);
    std::memcpy(y, tmp, nc * sizeof(float));
  } else {
    const __m256 lo = _mm256_set1_ps(rq.lo), hi = _mm256_set1_ps(rq.hi);
    const __m256i zp = _mm256_set1_epi32(rq.y_zp);
    const __m256i q0 =
        _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v0, lo), hi)), zp);
    const __m256i q1 =
        _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v1, lo), hi)), zp);
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
    const __m128i wl = _mm256_castsi256_si128(w), wh = _mm256_extracti128_si256(w, 1);
    const __m128i b = std::is_same<Out, uint8_t>::value ? _mm_packus_epi16(wl, wh)
                                                        : _mm_packs_epi16(wl, wh);
    if (nc == kC) {
      _mm_storeu_si128((__m128i*)y, b);
    } else {
      alignas(16) uint8_t tmp[kC];
      _mm_store_si128((__m128i*)tmp, b);
      std::memcpy(y, tmp, nc);
    }
  }
}

// Bytes [c0, c0 + 16) of taps t and t + 1 interleaved and widened: channels 0-7 and 8-15.
template <class In, bool Tail>
inline void tap_pair(const uint8_t* p0, const uint8_t* p1, size_t nc, __m256i& lo, __m256i& hi) {
  __m128i x0, x1;
  if (Tail) {
    alignas(16) uint8_t b0[kC] = {}, b1[kC] = {};
    std::memcpy(b0, p0, nc);
    std::memcpy(b1, p1, nc);
    x0 = _mm_load_si128((const __m128i*)b0);
    x1 = _mm_load_si128((const __m128i*)b1);
  } else {
    x0 = _mm_loadu_si128((const __m128i*)p0);
    x1 = _mm_loadu_si128((const __m128i*)p1);
  }
  lo = widen<In>(_mm_unpacklo_epi8(x0, x1));
  hi = widen<In>(_mm_unpackhi_epi8(x0, x1));
}

inline __m256i madd_add(__m256i acc, __m256i x, const int16_t* w) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(x, _mm256_loadu_si256((const __m256i*)w)));
}

// Channels [c0, c0 + 32) of one pixel: two 16-channel halves share the tap loop.
template <class In, class Out>
inline void block32(size_t c0, size_t cp, size_t taps, const void* const* in, const int16_t* w,
                    const int32_t* bias, const float* scale, Out* y, const Q8Requant& rq) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t t = 0; t < taps; t += 2) {
    const uint8_t* p0 = static_cast<const uint8_t*>(in[t]) + c0;
    const uint8_t* p1 = t + 1 < taps ? static_cast<const uint8_t*>(in[t + 1]) + c0 : p0;
    const int16_t* wp = w + (t / 2 * cp + c0) * 2;
    __m256i l0, h0, l1, h1;
    tap_pair<In, false>(p0, p1, kC, l0, h0);
    tap_pair<In, false>(p0 + kC, p1 + kC, kC, l1, h1);
    a0 = madd_add(a0, l0, wp);
    a1 = madd_add(a1, h0, wp + 16);
    a2 = madd_add(a2, l1, wp + 32);
    a3 = madd_add(a3, h1, wp + 48);
  }
  store16<Out>(a0, a1, bias + c0, scale + c0, kC, y + c0, rq);
  store16<Out>(a2, a3, bias + c0 + kC, scale + c0 + kC, kC, y + c0 + kC, rq);
}

// Channels [c0, c0 + nc), nc <= 16; Tail: nc < 16, read through copies.
template <class In, class Out, bool Tail>
inline void block(size_t c0, size_t nc, size_t cp, size_t taps, const void* const* in,
                  const int16_t* w, const int32_t* bias, const float* scale, Out* y,
                  const Q8Requant& rq) {
  __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
  for (size_t t = 0; t < taps; t += 2) {
    const uint8_t* p0 = static_cast<const uint8_t*>(in[t]) + c0;
    const uint8_t* p1 = t + 1 < taps ? static_cast<const uint8_t*>(in[t + 1]) + c0 : p0;
    const int16_t* wp = w + (t / 2 * cp + c0) * 2;
    __m256i lo, hi;
    tap_pair<In, Tail>(p0, p1, nc, lo, hi);
    acc0 = madd_add(acc0, lo, wp);
    acc1 = madd_add(acc1, hi, wp + 16);
  }
  if (Tail) {
    alignas(32) int32_t b[kC] = {};
    alignas(32) float s[kC] = {};
    std::memcpy(b, bias + c0, nc * sizeof(int32_t));
    std::memcpy(s, scale + c0, nc * sizeof(float));
    store16<Out>(acc0, acc1, b, s, nc, y + c0, rq);
  } else {
    store16<Out>(acc0, acc1, bias + c0, scale + c0, kC, y + c0, rq);
  }
}

template <class In, class Out>
void dwconv(size_t channels, size_t taps, const void* const* in, const int16_t* w,
            const int32_t* bias, const float* scale, void* y_out, const Q8Requant& rq) {
  Out* y = static_cast<Out*>(y_out);
  const size_t cp = (channels + kC - 1) / kC * kC;
  size_t c0 = 0;
  for (; c0 + 2 * kC <= channels; c0 += 2 * kC)
    block32<In, Out>(c0, cp, taps, in, w, bias, scale, y, rq);
  for (; c0 + kC <= channels; c0 += kC)
    block<In, Out, false>(c0, kC, cp, taps, in, w, bias, scale, y, rq);
  if (c0 < channels)
    block<In, Out, true>(c0, channels - c0, cp, taps, in, w, bias, scale, y, rq);
}

// One input column of 16 channels for the row kernel: rows 0 and 1 interleaved as int16 pairs
// (channels 0-7, 8-15), row 2 paired with zero (its weight partner is 0, so sign-extended i8
// high halves do not matter).
struct Col {
  __m256i plo, phi, slo, shi;
};

template <class In>
inline Col load_col(const uint8_t* r0, const uint8_t* r1, const uint8_t* r2) {
  const __m128i x0 = _mm_loadu_si128((const __m128i*)r0);
  const __m128i x1 = _mm_loadu_si128((const __m128i*)r1);
  const __m128i x2 = _mm_loadu_si128((const __m128i*)r2);
  Col c;
  c.plo = widen<In>(_mm_unpacklo_epi8(x0, x1));
  c.phi = widen<In>(_mm_unpackhi_epi8(x0, x1));
  if (std::is_same<In, uint8_t>::value) {
    c.slo = _mm256_cvtepu8_epi32(x2);
    c.shi = _mm256_cvtepu8_epi32(_mm_srli_si128(x2, 8));
  } else {
    c.slo = _mm256_cvtepi8_epi32(x2);
    c.shi = _mm256_cvtepi8_epi32(_mm_srli_si128(x2, 8));
  }
  return c;
}

// acc0/acc1 += column c times the weights of tap column kx (w: that kx's 64 int16).
inline void mac_col(const Col& c, const int16_t* w, __m256i& acc0, __m256i& acc1) {
  acc0 = madd_add(acc0, c.plo, w);
  acc1 = madd_add(acc1, c.phi, w + 16);
  acc0 = madd_add(acc0, c.slo, w + 32);
  acc1 = madd_add(acc1, c.shi, w + 48);
}

template <class In, class Out, int S>
void dw3x3_row(size_t channels, size_t npix, const uint8_t* const* rows, const int16_t* w,
               const int32_t* bias, const float* scale, void* y_out, size_t y_stride,
               const Q8Requant& rq) {
  Out* y = static_cast<Out*>(y_out);
  const size_t step = S * channels;
  for (size_t c0 = 0; c0 < channels; c0 += kC) {
    const uint8_t* r0 = rows[0] + c0;
    const uint8_t* r1 = rows[1] + c0;
    const uint8_t* r2 = rows[2] + c0;
    const int16_t* wb = w + c0 / kC * 192;
    Col a = load_col<In>(r0, r1, r2);
    Col b = load_col<In>(r0 + channels, r1 + channels, r2 + channels);
    Out* yp = y + c0;
    for (size_t p = 0; p < npix; ++p, r0 += step, r1 += step, r2 += step, yp += y_stride) {
      const size_t o = 2 * channels;
      const Col c = load_col<In>(r0 + o, r1 + o, r2 + o);
      __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
      mac_col(a, wb, acc0, acc1);
      mac_col(b, wb + 64, acc0, acc1);
      mac_col(c, wb + 128, acc0, acc1);
      store16<Out>(acc0, acc1, bias + c0, scale + c0, kC, yp, rq);
      if (S == 1) {
        a = b, b = c;
      } else if (p + 1 < npix) {  // the next output's columns 0, 1: this one's 2 and 3
        a = c;
        b = load_col<In>(r0 + 3 * channels, r1 + 3 * channels, r2 + 3 * channels);
      }
    }
  }
}

}  // namespace

#define EDGERT_DW_ROW(S, In) \
  {dw3x3_row<In, uint8_t, S>, dw3x3_row<In, int8_t, S>, dw3x3_row<In, float, S>}
const Q8DwConvUKernel q8_dwconv_minmax_fp32_ukernel_c16__avx2 = {
    "q8_dwconv_minmax_fp32_ukernel_c16__avx2",
    {{dwconv<uint8_t, uint8_t>, dwconv<uint8_t, int8_t>, dwconv<uint8_t, float>},
     {dwconv<int8_t, uint8_t>, dwconv<int8_t, int8_t>, dwconv<int8_t, float>}},
    q8_dwconv_pack_w_c16x2,
    {{EDGERT_DW_ROW(1, uint8_t), EDGERT_DW_ROW(1, int8_t)},
     {EDGERT_DW_ROW(2, uint8_t), EDGERT_DW_ROW(2, int8_t)}},
    q8_dwconv_pack_w_3x3r};
#undef EDGERT_DW_ROW

}  // namespace edgert
