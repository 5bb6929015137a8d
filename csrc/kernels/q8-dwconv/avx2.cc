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

// The row kernels' output stage, its constants built once per call. The clamp to hi is in
// float (it bounds cvtps2dq), the one to lo after the saturating packs, on bytes: lo and hi are
// whole numbers (qmin − y_zp, qmax − y_zp) and rounding is monotonic, so clamping before or after
// it gives the same value; below lo, cvtps2dq's 0x80000000 and every saturation stay below qmin.
struct Stage {
  __m256 hi;
  __m256i zp, qmin, qmax, order;
};

inline Stage make_stage(const Q8Requant& rq) {
  const int32_t qmin = static_cast<int32_t>(rq.lo) + rq.y_zp;
  const int32_t qmax = static_cast<int32_t>(rq.hi) + rq.y_zp;
  return {_mm256_set1_ps(rq.hi), _mm256_set1_epi16(static_cast<int16_t>(rq.y_zp)),
          _mm256_set1_epi8(static_cast<char>(qmin)), _mm256_set1_epi8(static_cast<char>(qmax)),
          _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)};
}

struct Acc {
  __m256i a0, a1;  // int32 sums of channels 0-7, 8-15
};

// 16 sums to int16 (y_zp added, saturating), lanes ordered [0-3, 8-11 | 4-7, 12-15].
inline __m256i to_i16(__m256i a0, __m256i a1, __m256 s0, __m256 s1, const Stage& st) {
  const __m256 v0 = _mm256_min_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a0), s0), st.hi);
  const __m256 v1 = _mm256_min_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a1), s1), st.hi);
  return _mm256_adds_epi16(_mm256_packs_epi32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1)),
                           st.zp);
}

// Output stage of n pixels' 16-channel sums (buffer rows of 16 int32) without bias, to y.
template <class Out>
inline void finish(const int32_t* sums, size_t n, __m256i b0, __m256i b1, __m256 s0, __m256 s1,
                   const Stage& st, Out* y, size_t y_stride) {
  auto acc = [&](size_t i, int h) {
    return _mm256_add_epi32(_mm256_load_si256((const __m256i*)(sums + 16 * i + 8 * h)), h ? b1 : b0);
  };
  if constexpr (std::is_same<Out, float>::value) {
    for (size_t i = 0; i < n; ++i, y += y_stride) {
      _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(acc(i, 0)), s0));
      _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(acc(i, 1)), s1));
    }
  } else {
    constexpr bool u8 = std::is_same<Out, uint8_t>::value;
    for (size_t i = 0; i < n; i += 2, y += 2 * y_stride) {
      const __m256i ha = to_i16(acc(i, 0), acc(i, 1), s0, s1, st);
      const __m256i hb = i + 1 < n ? to_i16(acc(i + 1, 0), acc(i + 1, 1), s0, s1, st) : ha;
      // Bytes [A 0-3, A 8-11, B 0-3, B 8-11 | A 4-7, A 12-15, B 4-7, B 12-15] to A | B.
      __m256i q = _mm256_permutevar8x32_epi32(u8 ? _mm256_packus_epi16(ha, hb)
                                                 : _mm256_packs_epi16(ha, hb), st.order);
      q = u8 ? _mm256_min_epu8(_mm256_max_epu8(q, st.qmin), st.qmax)
             : _mm256_min_epi8(_mm256_max_epi8(q, st.qmin), st.qmax);
      _mm_storeu_si128((__m128i*)y, _mm256_castsi256_si128(q));
      if (i + 1 < n) _mm_storeu_si128((__m128i*)(y + y_stride), _mm256_extracti128_si256(q, 1));
    }
  }
}

// One input column of 16 channels for the row kernel: rows 0 and 1 interleaved as int16 pairs
// (channels 0-7, 8-15), row 2 as int32 lanes, i.e. paired with a high half whose weight partner
// is 0. Only in-lane shuffles: each 16-byte row is broadcast to both lanes by the load, and
// vpshufb picks lane 0's and lane 1's channels, zero-extending u8; i8 bytes land in the high byte
// of an int16 and are shifted down with their sign.
struct Col {
  __m256i plo, phi, slo, shi;
};

struct ColMasks {
  __m256i pair, s_lo, s_hi;
};

template <class In>
inline ColMasks col_masks() {
  constexpr bool u8 = std::is_same<In, uint8_t>::value;
  alignas(32) int8_t m[3][32];
  for (int i = 0; i < 32; ++i) {
    const int lane = i / 16, k = i % 16;
    // pair: byte 2j of int16 j (u8) or byte 2j + 1 (i8) is source byte 8·lane + j
    const bool pick_p = u8 ? k % 2 == 0 : k % 2 == 1;
    m[0][i] = pick_p ? static_cast<int8_t>(8 * lane + k / 2) : -1;
    // single: byte 0 (u8) or 1 (i8) of int32 j is channel 4·lane + j (s_lo) or 8 + that (s_hi)
    const bool pick_s = k % 4 == (u8 ? 0 : 1);
    m[1][i] = pick_s ? static_cast<int8_t>(4 * lane + k / 4) : -1;
    m[2][i] = pick_s ? static_cast<int8_t>(8 + 4 * lane + k / 4) : -1;
  }
  return {_mm256_load_si256((const __m256i*)m[0]), _mm256_load_si256((const __m256i*)m[1]),
          _mm256_load_si256((const __m256i*)m[2])};
}

template <class In>
inline __m256i fix(__m256i v) {
  return std::is_same<In, uint8_t>::value ? v : _mm256_srai_epi16(v, 8);
}

template <class In>
inline Col load_col(const uint8_t* r0, const uint8_t* r1, const uint8_t* r2, const ColMasks& m) {
  const __m256i x0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)r0));
  const __m256i x1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)r1));
  const __m256i x2 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)r2));
  return {fix<In>(_mm256_shuffle_epi8(_mm256_unpacklo_epi8(x0, x1), m.pair)),
          fix<In>(_mm256_shuffle_epi8(_mm256_unpackhi_epi8(x0, x1), m.pair)),
          fix<In>(_mm256_shuffle_epi8(x2, m.s_lo)), fix<In>(_mm256_shuffle_epi8(x2, m.s_hi))};
}

inline __m256i madd(__m256i x, const int16_t* w) {
  return _mm256_madd_epi16(x, _mm256_loadu_si256((const __m256i*)w));
}

// Column c times the weights of one tap column (w: that kx's 64 int16), alone or added to acc.
inline Acc mul_col(const Col& c, const int16_t* w) {
  return {_mm256_add_epi32(madd(c.plo, w), madd(c.slo, w + 32)),
          _mm256_add_epi32(madd(c.phi, w + 16), madd(c.shi, w + 48))};
}
inline void mac(const Col& c, const int16_t* w, Acc& acc) {
  const Acc m = mul_col(c, w);
  acc.a0 = _mm256_add_epi32(acc.a0, m.a0);
  acc.a1 = _mm256_add_epi32(acc.a1, m.a1);
}

constexpr size_t kChunk = 4;  // output pixels whose sums wait in a buffer for the output stage

// Two passes per 16-channel block and chunk of pixels: the sums (input-stationary along the row:
// each column widened once and multiplied into every output that reads it, 3 at stride 1, 1 or 2
// at stride 2) into a small buffer, then the output stage; each loop then fits the 16 registers.
template <class In, class Out, int S>
void dw3x3_row(size_t channels, size_t npix, const uint8_t* const* rows, const int16_t* w,
               const int32_t* bias, const float* scale, void* y_out, size_t y_stride,
               const Q8Requant& rq) {
  Out* y = static_cast<Out*>(y_out);
  const Stage st = make_stage(rq);
  alignas(32) int32_t sums[kChunk * kC];
  const ColMasks masks = col_masks<In>();
  for (size_t c0 = 0; c0 < channels; c0 += kC) {
    const uint8_t* r0 = rows[0] + c0;
    const uint8_t* r1 = rows[1] + c0;
    const uint8_t* r2 = rows[2] + c0;
    const int16_t* wb = w + c0 / kC * 192;
    auto col = [&](size_t i) {  // input column i
      const size_t o = i * channels;
      return load_col<In>(r0 + o, r1 + o, r2 + o, masks);
    };
    // P: the next output's sums so far; Q (stride 1) the one after it.
    Acc P = mul_col(col(0), wb), Q{};
    if (S == 1) {
      const Col c = col(1);
      mac(c, wb + 64, P);
      Q = mul_col(c, wb);
    }
    for (size_t p0 = 0; p0 < npix; p0 += kChunk) {
      const size_t n = npix - p0 < kChunk ? npix - p0 : kChunk;
      for (size_t i = 0; i < n; ++i) {
        const int16_t* wk = wb;
        __asm__("" : "+r"(wk));  // weights stay memory operands: no hoisting, no spills
        const size_t p = p0 + i;
        Col c;
        if (S == 2) {
          mac(col(2 * p + 1), wk + 64, P);
          c = col(2 * p + 2);
        } else {
          c = col(p + 2);
        }
        mac(c, wk + 128, P);
        _mm256_store_si256((__m256i*)(sums + 16 * i), P.a0);
        _mm256_store_si256((__m256i*)(sums + 16 * i + 8), P.a1);
        if (S == 1) {
          mac(c, wk + 64, Q);
          P = Q;
          if (p + 1 < npix) Q = mul_col(c, wk);
        } else if (p + 1 < npix) {
          P = mul_col(c, wk);
        }
      }
      finish<Out>(sums, n, _mm256_loadu_si256((const __m256i*)(bias + c0)),
                  _mm256_loadu_si256((const __m256i*)(bias + c0 + 8)), _mm256_loadu_ps(scale + c0),
                  _mm256_loadu_ps(scale + c0 + 8), st, y + p0 * y_stride + c0, y_stride);
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
