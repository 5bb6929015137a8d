// AVX2 q8-dwconv: 16 channels per step, inputs widened to int16 and multiplied by vpmaddwd on
// interleaved tap pairs (exact int32 sums: |x|, |w'| <= 255). Widening uses only in-lane shuffles:
// 16 input bytes are broadcast to both lanes by the load, and vpshufb picks each lane's channels.
// Per-pixel kernel: weights packed by q8_dwconv_pack_w_c16x2 (zeros past taps and channels, so an
// odd last tap pairs with itself at weight 0); reads input, bias and scale only below channels
// (the channel tail goes through copies). 3x3 row kernels: weights packed by
// q8_dwconv_pack_w_3x3r. Output stage without FMA, rounding by cvtps2dq (see Stage).
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/q8-dwconv/q8-dwconv.h"

namespace edgert {
namespace {

constexpr size_t kC = 16;

// The output stage. The clamp to hi is in float (it bounds cvtps2dq), the one to lo after the
// saturating packs, on bytes: lo and hi are whole numbers (qmin − y_zp, qmax − y_zp) and rounding
// is monotonic, so clamping before or after it gives the same value; below lo, cvtps2dq's
// 0x80000000 and every saturation stay below qmin. With |scale| < 1 no |float(acc)·scale|
// reaches 2^31 and the hi clamp may go (the packs then saturate at qmax's side); with [qmin,
// qmax] the output type's whole range the byte clamp may go.
struct Stage {
  __m256 hi;
  __m256i zp, qmin, qmax, order;
  bool clamp;  // [qmin, qmax] narrower than the output type's range
};

template <class Out>
inline Stage make_stage(const Q8Requant& rq) {
  const int32_t qmin = static_cast<int32_t>(rq.lo) + rq.y_zp;
  const int32_t qmax = static_cast<int32_t>(rq.hi) + rq.y_zp;
  const bool u8 = std::is_same<Out, uint8_t>::value;
  return {_mm256_set1_ps(rq.hi), _mm256_set1_epi16(static_cast<int16_t>(rq.y_zp)),
          _mm256_set1_epi8(static_cast<char>(qmin)), _mm256_set1_epi8(static_cast<char>(qmax)),
          _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7),
          qmin > (u8 ? 0 : -128) || qmax < (u8 ? 255 : 127)};
}

// Whether 16 scales all have |s| < 1 (false for NaN).
inline bool small_scales(__m256 s0, __m256 s1) {
  const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), one = _mm256_set1_ps(1.0f);
  const __m256 m = _mm256_and_ps(_mm256_cmp_ps(_mm256_and_ps(s0, abs), one, _CMP_LT_OQ),
                                 _mm256_cmp_ps(_mm256_and_ps(s1, abs), one, _CMP_LT_OQ));
  return _mm256_movemask_ps(m) == 0xff;
}

// 16 sums (with bias) to int16 with y_zp added (saturating), lanes [0-3, 8-11 | 4-7, 12-15].
template <bool Hi>
inline __m256i to_i16(__m256i a0, __m256i a1, __m256 s0, __m256 s1, const Stage& st) {
  __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), s0);
  __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), s1);
  if (Hi) v0 = _mm256_min_ps(v0, st.hi), v1 = _mm256_min_ps(v1, st.hi);
  return _mm256_adds_epi16(_mm256_packs_epi32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1)),
                           st.zp);
}

// Bytes of packed pixels A, B ([A 0-3, A 8-11, B 0-3, B 8-11 | A 4-7, A 12-15, B 4-7, B 12-15])
// in order, A | B, clamped to [qmin, qmax] if Clamp.
template <class Out, bool Clamp>
inline __m256i to_bytes(__m256i ha, __m256i hb, const Stage& st) {
  constexpr bool u8 = std::is_same<Out, uint8_t>::value;
  __m256i q = _mm256_permutevar8x32_epi32(u8 ? _mm256_packus_epi16(ha, hb)
                                             : _mm256_packs_epi16(ha, hb), st.order);
  if (Clamp)
    q = u8 ? _mm256_min_epu8(_mm256_max_epu8(q, st.qmin), st.qmax)
           : _mm256_min_epi8(_mm256_max_epi8(q, st.qmin), st.qmax);
  return q;
}

// vpshufb controls [u8, i8] on bytes broadcast to both lanes: from 16 interleaved bytes of two
// taps (8 channels), int16 j of lane l = byte 8l + j. u8 lands in the low byte (zero-extended),
// i8 in the high byte of an int16, shifted down with its sign by fix.
struct alignas(32) MaskTable {
  int8_t m[2][32];
};
constexpr MaskTable make_masks() {
  MaskTable t{};
  for (int in = 0; in < 2; ++in)
    for (int i = 0; i < 32; ++i) {
      const int lane = i / 16, k = i % 16;
      t.m[in][i] = k % 2 == in ? static_cast<int8_t>(8 * lane + k / 2) : int8_t{-1};
    }
  return t;
}
constexpr MaskTable kMasks = make_masks();

struct Masks {
  __m256i pair;
};
template <class In>
inline Masks masks() {
  return {_mm256_load_si256((const __m256i*)kMasks.m[std::is_same<In, uint8_t>::value ? 0 : 1])};
}

template <class In>
inline __m256i fix(__m256i v) {
  return std::is_same<In, uint8_t>::value ? v : _mm256_srai_epi16(v, 8);
}

inline __m256i bcast(const uint8_t* p) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)p));
}

// 16 channels of two taps as int16 pairs: channels 0-7 (lo) and 8-15 (hi).
template <class In>
inline void pairs(__m256i x0, __m256i x1, const Masks& m, __m256i& lo, __m256i& hi) {
  lo = fix<In>(_mm256_shuffle_epi8(_mm256_unpacklo_epi8(x0, x1), m.pair));
  hi = fix<In>(_mm256_shuffle_epi8(_mm256_unpackhi_epi8(x0, x1), m.pair));
}

inline __m256i madd(__m256i x, const int16_t* w) {
  return _mm256_madd_epi16(x, _mm256_loadu_si256((const __m256i*)w));
}

// One pixel's 16 outputs (nc < 16: only those, written through a copy).
template <class Out>
inline void store16(__m256i acc0, __m256i acc1, const int32_t* bias, const float* scale,
                    size_t nc, Out* y, const Stage& st) {
  const __m256i a0 = _mm256_add_epi32(acc0, _mm256_loadu_si256((const __m256i*)bias));
  const __m256i a1 = _mm256_add_epi32(acc1, _mm256_loadu_si256((const __m256i*)(bias + 8)));
  const __m256 s0 = _mm256_loadu_ps(scale), s1 = _mm256_loadu_ps(scale + 8);
  alignas(32) Out tmp[kC];
  Out* dst = nc == kC ? y : tmp;
  if constexpr (std::is_same<Out, float>::value) {
    _mm256_storeu_ps(dst, _mm256_mul_ps(_mm256_cvtepi32_ps(a0), s0));
    _mm256_storeu_ps(dst + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(a1), s1));
  } else {
    const __m256i h = to_i16<true>(a0, a1, s0, s1, st);
    const __m256i q = st.clamp ? to_bytes<Out, true>(h, h, st) : to_bytes<Out, false>(h, h, st);
    _mm_storeu_si128((__m128i*)dst, _mm256_castsi256_si128(q));
  }
  if (nc < kC) std::memcpy(y, tmp, nc * sizeof(Out));
}

// Bytes [c0, c0 + 16) of taps t and t + 1 as int16 pairs (Tail: nc < 16, read through copies).
template <class In, bool Tail>
inline void tap_pair(const uint8_t* p0, const uint8_t* p1, size_t nc, const Masks& m,
                     __m256i& lo, __m256i& hi) {
  if (Tail) {
    alignas(16) uint8_t b0[kC] = {}, b1[kC] = {};
    std::memcpy(b0, p0, nc);
    std::memcpy(b1, p1, nc);
    pairs<In>(bcast(b0), bcast(b1), m, lo, hi);
  } else {
    pairs<In>(bcast(p0), bcast(p1), m, lo, hi);
  }
}

// Channels [c0, c0 + 16·B) of one pixel (B blocks of 16 sharing the tap loop), or the last nc < 16.
template <class In, class Out, int B, bool Tail>
inline void block(size_t c0, size_t nc, size_t cp, size_t taps, const void* const* in,
                  const int16_t* w, const int32_t* bias, const float* scale, Out* y,
                  const Masks& m, const Stage& st) {
  __m256i acc[2 * B];
  for (__m256i& a : acc) a = _mm256_setzero_si256();
  for (size_t t = 0; t < taps; t += 2) {
    const uint8_t* p0 = static_cast<const uint8_t*>(in[t]) + c0;
    const uint8_t* p1 = t + 1 < taps ? static_cast<const uint8_t*>(in[t + 1]) + c0 : p0;
    const int16_t* wp = w + (t / 2 * cp + c0) * 2;
    for (int b = 0; b < B; ++b) {
      __m256i lo, hi;
      tap_pair<In, Tail>(p0 + b * kC, p1 + b * kC, nc, m, lo, hi);
      acc[2 * b] = _mm256_add_epi32(acc[2 * b], madd(lo, wp + 32 * b));
      acc[2 * b + 1] = _mm256_add_epi32(acc[2 * b + 1], madd(hi, wp + 32 * b + 16));
    }
  }
  if (Tail) {
    alignas(32) int32_t bb[kC] = {};
    alignas(32) float sb[kC] = {};
    std::memcpy(bb, bias + c0, nc * sizeof(int32_t));
    std::memcpy(sb, scale + c0, nc * sizeof(float));
    store16<Out>(acc[0], acc[1], bb, sb, nc, y + c0, st);
  } else {
    for (int b = 0; b < B; ++b)
      store16<Out>(acc[2 * b], acc[2 * b + 1], bias + c0 + b * kC, scale + c0 + b * kC, kC,
                   y + c0 + b * kC, st);
  }
}

template <class In, class Out>
void dwconv(size_t channels, size_t taps, const void* const* in, const int16_t* w,
            const int32_t* bias, const float* scale, void* y_out, const Q8Requant& rq) {
  Out* y = static_cast<Out*>(y_out);
  const size_t cp = (channels + kC - 1) / kC * kC;
  const Stage st = make_stage<Out>(rq);
  const Masks m = masks<In>();
  size_t c0 = 0;
  for (; c0 + 2 * kC <= channels; c0 += 2 * kC)
    block<In, Out, 2, false>(c0, kC, cp, taps, in, w, bias, scale, y, m, st);
  for (; c0 + kC <= channels; c0 += kC)
    block<In, Out, 1, false>(c0, kC, cp, taps, in, w, bias, scale, y, m, st);
  if (c0 < channels)
    block<In, Out, 1, true>(c0, channels - c0, cp, taps, in, w, bias, scale, y, m, st);
}

// The 3x3 row kernels. Taps are multiplied as int16 pairs of 16 channels (lo: channels 0-7,
// hi: 8-15): rows 0 and 1 of one input column (W[0][kx], W[1][kx]), and row 2 of two adjacent
// columns, (x2[i], x2[i+1]) times (W[2][0], W[2][1]) for output i and times (0, W[2][2]) for
// output i − 1: 10 vpmaddwd per output and 16 channels (pairing row 2 with zeros took 12).
struct Pair {
  __m256i lo, hi;
};

template <class In>
inline Pair make_pair(__m256i xa, __m256i xb, const Masks& m) {
  Pair p;
  pairs<In>(xa, xb, m, p.lo, p.hi);
  return p;
}

struct Acc {
  __m256i a0, a1;  // int32 sums of channels 0-7, 8-15 (without bias)
};

// A pair vector times one weight pair set (w: 32 int16, lo then hi), alone or added to acc.
inline Acc mul_pair(const Pair& p, const int16_t* w) {
  return {madd(p.lo, w), madd(p.hi, w + 16)};
}
inline void mac(const Pair& p, const int16_t* w, Acc& acc) {
  acc.a0 = _mm256_add_epi32(acc.a0, madd(p.lo, w));
  acc.a1 = _mm256_add_epi32(acc.a1, madd(p.hi, w + 16));
}

// Output stage of n pixels' 16-channel sums (buffer rows of 16 int32) without bias, to y.
// Clamp: [qmin, qmax] is narrower than Out's range (else the saturating packs clamp alone).
template <class Out, bool Hi, bool Clamp>
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
    for (size_t i = 0; i < n; i += 2, y += 2 * y_stride) {
      const __m256i ha = to_i16<Hi>(acc(i, 0), acc(i, 1), s0, s1, st);
      const __m256i hb = i + 1 < n ? to_i16<Hi>(acc(i + 1, 0), acc(i + 1, 1), s0, s1, st) : ha;
      const __m256i q = to_bytes<Out, Clamp>(ha, hb, st);
      _mm_storeu_si128((__m128i*)y, _mm256_castsi256_si128(q));
      if (i + 1 < n) _mm_storeu_si128((__m128i*)(y + y_stride), _mm256_extracti128_si256(q, 1));
    }
  }
}

constexpr size_t kChunk = 16;  // output pixels whose sums wait in a buffer for the output stage

// Two passes per 16-channel block and chunk of pixels: the sums (input-stationary along the row:
// each column's rows 0-1 pair widened once and multiplied into every output that reads it, 3 at
// stride 1, 1 or 2 at stride 2; row 2 pairs of adjacent columns) into a small buffer, then the
// output stage; each loop then fits the 16 registers. Weights (q8_dwconv_pack_w_3x3r, 192 int16
// a block): rows 0-1 pairs for kx = 0, 1, 2 at 0, 32, 64; row 2 pairs at 96 and 128.
template <class In, class Out, int S>
void dw3x3_row(size_t channels, size_t npix, const uint8_t* const* rows, const int16_t* w,
               const int32_t* bias, const float* scale, void* y_out, size_t y_stride,
               const Q8Requant& rq) {
  Out* y = static_cast<Out*>(y_out);
  const Stage st = make_stage<Out>(rq);
  const Masks m = masks<In>();
  alignas(32) int32_t sums[kChunk * kC];
  for (size_t c0 = 0; c0 < channels; c0 += kC) {
    const uint8_t* r0 = rows[0] + c0;
    const uint8_t* r1 = rows[1] + c0;
    const uint8_t* r2 = rows[2] + c0;
    const int16_t* wb = w + c0 / kC * 192;
    auto col01 = [&](size_t i) {  // rows 0 and 1 of input column i
      return make_pair<In>(bcast(r0 + i * channels), bcast(r1 + i * channels), m);
    };
    auto row2 = [&](size_t i) { return bcast(r2 + i * channels); };
    // P: the next output's sums so far; Q (stride 1) the one after it; x2: row 2 of the column
    // before the next one read; R (stride 1): the next output's row 2 pair (x2[p], x2[p + 1]).
    Acc P = mul_pair(col01(0), wb), Q{};
    __m256i x2 = row2(0);
    Pair R{};
    if (S == 1) {
      const Pair c = col01(1);
      mac(c, wb + 32, P);
      Q = mul_pair(c, wb);
      const __m256i x = row2(1);
      R = make_pair<In>(x2, x, m);
      x2 = x;
    }
    for (size_t p0 = 0; p0 < npix; p0 += kChunk) {
      const size_t n = npix - p0 < kChunk ? npix - p0 : kChunk;
      for (size_t i = 0; i < n; ++i) {
        const int16_t* wk = wb;
        __asm__("" : "+r"(wk));  // weights stay memory operands: no hoisting, no spills
        const size_t p = p0 + i;
        if (S == 2) {
          const __m256i xa = row2(2 * p + 1), xb = row2(2 * p + 2);
          mac(col01(2 * p + 1), wk + 32, P);
          mac(make_pair<In>(x2, xa, m), wk + 96, P);
          mac(make_pair<In>(xa, xb, m), wk + 128, P);
          const Pair c = col01(2 * p + 2);
          mac(c, wk + 64, P);
          _mm256_store_si256((__m256i*)(sums + 16 * i), P.a0);
          _mm256_store_si256((__m256i*)(sums + 16 * i + 8), P.a1);
          P = mul_pair(c, wk);
          x2 = xb;
        } else {
          const Pair c = col01(p + 2);
          const __m256i x = row2(p + 2);
          const Pair Rn = make_pair<In>(x2, x, m);  // (x2[p + 1], x2[p + 2])
          mac(c, wk + 64, P);
          mac(R, wk + 96, P);
          mac(Rn, wk + 128, P);
          _mm256_store_si256((__m256i*)(sums + 16 * i), P.a0);
          _mm256_store_si256((__m256i*)(sums + 16 * i + 8), P.a1);
          // The last pixel's next outputs are started too: their column is inside the row.
          mac(c, wk + 32, Q);
          P = Q;
          Q = mul_pair(c, wk);
          R = Rn;
          x2 = x;
        }
      }
      const __m256i b0 = _mm256_loadu_si256((const __m256i*)(bias + c0));
      const __m256i b1 = _mm256_loadu_si256((const __m256i*)(bias + c0 + 8));
      const __m256 s0 = _mm256_loadu_ps(scale + c0), s1 = _mm256_loadu_ps(scale + c0 + 8);
      Out* yc = y + p0 * y_stride + c0;
      const bool hi = !small_scales(s0, s1);
      if (hi && st.clamp) finish<Out, true, true>(sums, n, b0, b1, s0, s1, st, yc, y_stride);
      else if (hi) finish<Out, true, false>(sums, n, b0, b1, s0, s1, st, yc, y_stride);
      else if (st.clamp) finish<Out, false, true>(sums, n, b0, b1, s0, s1, st, yc, y_stride);
      else finish<Out, false, false>(sums, n, b0, b1, s0, s1, st, yc, y_stride);
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
