// AVX-512 VNNI q8-dwconv: 32 channels per step, vpdpwssd on int16 tap pairs (exact products, the
// add fused). Widening: the bytes of two taps are interleaved by vpunpck{l,h}bw on a ymm and
// vpmov{z,s}xbw makes each (tap t, tap t+1) byte pair one int32 lane, so a 32-channel block's two
// accumulators hold channels [0-7, 16-23] and [8-15, 24-31] (the packings follow that order;
// vpermt2d restores it for the output stage); a last 16-channel block is widened from xmm halves
// and stays in order. Per-pixel kernel: weights packed by q8_dwconv_pack_w_c32x2; reads input,
// bias and scale only below channels (masked loads, masked stores). 3x3 row kernels: weights by
// q8_dwconv_pack_w_3x3c32, held in registers along the row; row 2 paired across columns. Output
// stage: cvtdq2ps, mulps (no FMA), clamp in float (or, scales below 1, on the bytes), cvtps2dq
// (round half to even under the default MXCSR), packs, + y_zp.
// GCC 12's AVX-512 headers start some intrinsics from an "undefined" vector and -Wall flags that
// (GCC bug 105593); nothing here reads an uninitialized value.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <type_traits>

#include "kernels/q8-dwconv/q8-dwconv.h"

namespace edgert {
namespace {

constexpr size_t kC = 32;

struct Stage {
  __m512 lo, hi;
  __m512i zp;              // int16
  __m512i nat_lo, nat_hi;  // vpermt2d indices: block order <-> channels 0-15, 16-31
  __m512i gather_nat, gather_blk;  // vpermd indices of 32 packed bytes (see bytes32)
  __m256i qmin, qmax;  // bytes
  explicit Stage(const Q8Requant& rq)
      : lo(_mm512_set1_ps(rq.lo)), hi(_mm512_set1_ps(rq.hi)),
        zp(_mm512_set1_epi16(static_cast<int16_t>(rq.y_zp))),
        nat_lo(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)),
        nat_hi(_mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31)),
        gather_nat(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0)),
        gather_blk(_mm512_setr_epi32(0, 4, 1, 5, 8, 12, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0)),
        qmin(_mm256_set1_epi8(static_cast<char>(static_cast<int32_t>(rq.lo) + rq.y_zp))),
        qmax(_mm256_set1_epi8(static_cast<char>(static_cast<int32_t>(rq.hi) + rq.y_zp))) {}
};

// float(acc)·scale clamped to [lo, hi] and rounded: within [lo, hi], so every later pack is exact.
inline __m512i quant(__m512i acc, __m512 scale, const Stage& st) {
  const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
  return _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, st.lo), st.hi));
}

// The output bytes of 32 sums (bias included) a, b with their scales, in the order `gather` picks
// from the in-lane packs: gather_nat for a, b = channels 0-15, 16-31, gather_blk for block order
// (a = channels 0-7, 16-23). Packs and vpermd instead of vpmovdb: cheaper on Zen 4.
// Small (every |scale| < 1, so |float(acc)·scale| < 2^31 and cvtps2dq cannot overflow): no float
// clamps; the packs and the y_zp add saturate instead, and the clamp to [qmin, qmax] is on the
// bytes. lo and hi are whole numbers and rounding is monotonic, so clamping before or after it
// is the same, and every saturated value lies outside [qmin, qmax] on its own side.
template <class Out, bool Small = false>
inline __m256i bytes32(__m512i a, __m512i b, __m512 sa, __m512 sb, __m512i gather,
                       const Stage& st) {
  constexpr bool u8 = std::is_same<Out, uint8_t>::value;
  __m512i h;
  if constexpr (Small) {
    auto cvt = [](__m512i acc, __m512 s) {
      return _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), s));
    };
    h = _mm512_adds_epi16(_mm512_packs_epi32(cvt(a, sa), cvt(b, sb)), st.zp);
  } else {
    h = _mm512_add_epi16(_mm512_packs_epi32(quant(a, sa, st), quant(b, sb, st)), st.zp);
  }
  const __m512i q = u8 ? _mm512_packus_epi16(h, h) : _mm512_packs_epi16(h, h);
  const __m256i g = _mm512_castsi512_si256(_mm512_permutexvar_epi32(gather, q));
  if constexpr (!Small) return g;
  return u8 ? _mm256_min_epu8(_mm256_max_epu8(g, st.qmin), st.qmax)
            : _mm256_min_epi8(_mm256_max_epi8(g, st.qmin), st.qmax);
}

// 16 sums (bias included) in channel order to y[0, 16) (mask m).
template <class Out, bool Small = false>
inline void out16(__m512i acc, __m512 scale, const Stage& st, Out* y, __mmask16 m) {
  if constexpr (std::is_same<Out, float>::value) {
    _mm512_mask_storeu_ps(y, m, _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale));
  } else {
    const __m256i q = bytes32<Out, Small>(acc, acc, scale, scale, st.gather_nat, st);
    _mm_mask_storeu_epi8(y, m, _mm256_castsi256_si128(q));
  }
}

// 32 sums (bias included) in channel order to y[0, 32) (mask m).
template <class Out>
inline void out32(__m512i lo, __m512i hi, __m512 s0, __m512 s1, const Stage& st, Out* y,
                  __mmask32 m) {
  if constexpr (std::is_same<Out, float>::value) {
    out16<Out>(lo, s0, st, y, __mmask16(m));
    out16<Out>(hi, s1, st, y + 16, __mmask16(m >> 16));
  } else {
    _mm256_mask_storeu_epi8(y, m, bytes32<Out>(lo, hi, s0, s1, st.gather_nat, st));
  }
}

// Each int32 lane of the result: (x0, x1) of one channel as sign- or zero-extended int16.
template <class In>
inline __m512i widen(__m256i interleaved) {
  return std::is_same<In, uint8_t>::value ? _mm512_cvtepu8_epi16(interleaved)
                                          : _mm512_cvtepi8_epi16(interleaved);
}

// Two taps' bytes of a 32-channel block as int16 pairs: a = channels [0-7, 16-23], b = the rest.
template <class In>
inline void pairs32(__m256i x0, __m256i x1, __m512i& a, __m512i& b) {
  a = widen<In>(_mm256_unpacklo_epi8(x0, x1));
  b = widen<In>(_mm256_unpackhi_epi8(x0, x1));
}

// The same for a 16-channel block, in channel order.
template <class In>
inline __m512i pairs16(__m128i x0, __m128i x1) {
  return widen<In>(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi8(x0, x1)),
                                           _mm_unpackhi_epi8(x0, x1), 1));
}

inline __m512i dp(__m512i acc, __m512i x, const int16_t* w) {
  return _mm512_dpwssd_epi32(acc, x, _mm512_loadu_si512(w));
}

// Per-pixel kernel. B blocks of 32 channels sharing the tap loop (its pointer loads); per block
// two accumulators per tap-pair parity (two chains hide vpdpwssd's latency); Tail (B = 1): the
// last nc < 32 channels, read and written through masks.
template <class In, class Out, bool Tail, int B>
inline void block32(size_t c0, size_t nc, size_t cp, size_t taps, const void* const* in,
                    const int16_t* w, const int32_t* bias, const float* scale, Out* y,
                    const Stage& st) {
  static_assert(!Tail || B == 1, "a tail is one block");
  const __mmask32 m = Tail ? __mmask32((uint64_t{1} << nc) - 1) : ~__mmask32{0};
  auto load = [&](const void* p, int b) {
    const uint8_t* x = static_cast<const uint8_t*>(p) + c0 + kC * b;
    return Tail ? _mm256_maskz_loadu_epi8(m, x) : _mm256_loadu_si256((const __m256i*)x);
  };
  struct Sums {
    __m512i ea, eb, oa, ob;  // [even, odd tap pairs][channels 0-7 and 16-23, the rest]
  } s[B];
  for (Sums& k : s) k.ea = k.eb = k.oa = k.ob = _mm512_setzero_si512();
  auto pair = [&](size_t t, const void* p0, const void* p1, bool odd) {
    const int16_t* wp = w + (t / 2 * cp + c0) * 2;
    for (int b = 0; b < B; ++b) {
      __m512i xa, xb;
      pairs32<In>(load(p0, b), load(p1, b), xa, xb);
      __m512i& a = odd ? s[b].oa : s[b].ea;
      __m512i& c = odd ? s[b].ob : s[b].eb;
      a = dp(a, xa, wp + 64 * b);
      c = dp(c, xb, wp + 64 * b + 32);
    }
  };
  size_t t = 0;
  for (; t + 4 <= taps; t += 4) {
    pair(t, in[t], in[t + 1], false);
    pair(t + 2, in[t + 2], in[t + 3], true);
  }
  if (t + 2 <= taps) pair(t, in[t], in[t + 1], false), t += 2;
  if (t < taps) pair(t, in[t], in[t], true);  // an odd last tap: its partner's weight is 0
  for (int b = 0; b < B; ++b) {
    const size_t cb = c0 + kC * b;
    const __m512i a = _mm512_add_epi32(s[b].ea, s[b].oa), c = _mm512_add_epi32(s[b].eb, s[b].ob);
    const __mmask16 m0 = __mmask16(m), m1 = __mmask16(m >> 16);
    const __m512i lo = _mm512_add_epi32(_mm512_permutex2var_epi32(a, st.nat_lo, c),
                                        _mm512_maskz_loadu_epi32(m0, bias + cb));
    const __m512i hi = _mm512_add_epi32(_mm512_permutex2var_epi32(a, st.nat_hi, c),
                                        _mm512_maskz_loadu_epi32(m1, bias + cb + 16));
    out32<Out>(lo, hi, _mm512_maskz_loadu_ps(m0, scale + cb),
               _mm512_maskz_loadu_ps(m1, scale + cb + 16), st, y + cb, m);
  }
}

// The last block when round_up(channels, 16) is an odd multiple of 16: 16 channels (nc of them
// real), packed in channel order.
template <class In, class Out>
inline void block16(size_t c0, size_t nc, size_t cp, size_t taps, const void* const* in,
                    const int16_t* w, const int32_t* bias, const float* scale, Out* y,
                    const Stage& st) {
  const __mmask16 m = nc == 16 ? __mmask16(0xFFFF) : __mmask16((1u << nc) - 1);
  auto load = [&](const void* p) {
    return _mm_maskz_loadu_epi8(m, static_cast<const uint8_t*>(p) + c0);
  };
  __m512i e = _mm512_setzero_si512(), o = e;
  size_t t = 0;
  for (; t + 4 <= taps; t += 4) {
    e = dp(e, pairs16<In>(load(in[t]), load(in[t + 1])), w + (t / 2 * cp + c0) * 2);
    o = dp(o, pairs16<In>(load(in[t + 2]), load(in[t + 3])), w + ((t / 2 + 1) * cp + c0) * 2);
  }
  if (t + 2 <= taps) {
    e = dp(e, pairs16<In>(load(in[t]), load(in[t + 1])), w + (t / 2 * cp + c0) * 2);
    t += 2;
  }
  if (t < taps) o = dp(o, pairs16<In>(load(in[t]), load(in[t])), w + (t / 2 * cp + c0) * 2);
  const __m512i acc =
      _mm512_add_epi32(_mm512_add_epi32(e, o), _mm512_maskz_loadu_epi32(m, bias + c0));
  out16<Out>(acc, _mm512_maskz_loadu_ps(m, scale + c0), st, y + c0, m);
}

template <class In, class Out>
void dwconv(size_t channels, size_t taps, const void* const* in, const int16_t* w,
            const int32_t* bias, const float* scale, void* y_out, const Q8Requant& rq) {
  Out* y = static_cast<Out*>(y_out);
  const size_t cp = (channels + 15) / 16 * 16;
  const Stage st(rq);
  size_t c0 = 0;
  for (; c0 + 2 * kC <= channels; c0 += 2 * kC)
    block32<In, Out, false, 2>(c0, kC, cp, taps, in, w, bias, scale, y, st);
  for (; c0 + kC <= channels; c0 += kC)
    block32<In, Out, false, 1>(c0, kC, cp, taps, in, w, bias, scale, y, st);
  if (c0 + kC <= cp)
    block32<In, Out, true, 1>(c0, channels - c0, cp, taps, in, w, bias, scale, y, st);
  else if (c0 < channels)
    block16<In, Out>(c0, channels - c0, cp, taps, in, w, bias, scale, y, st);
}

// The 3x3 row kernels. Tap pairs of a block: (row 0, row 1) of one column, and (row 2 of
// column i, row 2 of column i + 1), so an output's 9 taps are 5 pairs (one weight of the last 0)
// and a block of 32 channels costs 10 vpdpwssd per output. W = 16 uses a only.
struct V {
  __m512i a, b;  // channels 0-7 and 16-23, 8-15 and 24-31 (W = 16: a = channels 0-15)
};

// The bytes at p0 and p1 (zeros for p1 == nullptr) of one block as int16 pairs.
template <class In, size_t W>
inline V pair_at(const uint8_t* p0, const uint8_t* p1) {
  V v;
  if constexpr (W == kC) {
    pairs32<In>(_mm256_loadu_si256((const __m256i*)p0),
                p1 ? _mm256_loadu_si256((const __m256i*)p1) : _mm256_setzero_si256(), v.a, v.b);
  } else {
    v.a = pairs16<In>(_mm_loadu_si128((const __m128i*)p0),
                      p1 ? _mm_loadu_si128((const __m128i*)p1) : _mm_setzero_si128());
    v.b = _mm512_setzero_si512();
  }
  return v;
}

// acc + x · w, per int32 lane the sum of its two int16 products.
template <size_t W>
inline V mac(V acc, const V& x, const V& w) {
  acc.a = _mm512_dpwssd_epi32(acc.a, x.a, w.a);
  if constexpr (W == kC) acc.b = _mm512_dpwssd_epi32(acc.b, x.b, w.b);
  return acc;
}

// Weight set k of a block (q8_dwconv_pack_w_3x3c32: 6 sets of 2·W int16 per block).
template <size_t W>
inline V load_w(const int16_t* wb, size_t k) {
  const int16_t* w = wb + k * 2 * W;
  return {_mm512_loadu_si512(w), W == kC ? _mm512_loadu_si512(w + 32) : _mm512_setzero_si512()};
}

// One output pixel's sums (bias included, block order; s0, s1 the scales in the same order).
template <class Out, size_t W, bool Small>
inline void flush(const V& acc, __m512 s0, __m512 s1, const Stage& st, Out* y) {
  if constexpr (W == kC && std::is_same<Out, float>::value) {
    const __m512 v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(acc.a), s0);
    const __m512 v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(acc.b), s1);
    _mm512_storeu_ps(y, _mm512_permutex2var_ps(v0, st.nat_lo, v1));
    _mm512_storeu_ps(y + 16, _mm512_permutex2var_ps(v0, st.nat_hi, v1));
  } else if constexpr (W == kC) {
    _mm256_storeu_si256((__m256i*)y, bytes32<Out, Small>(acc.a, acc.b, s0, s1, st.gather_blk, st));
  } else {
    out16<Out, Small>(acc.a, s0, st, y, 0xFFFF);
  }
}

// A block of W channels along the row, input-stationary: each column's pairs are widened once
// and multiplied into every output that reads them. Weight sets: 0-2 (row 0, row 1) at kx 0-2,
// 3 (row 2 at kx 0, kx 1), 4 (0, row 2 at kx 2) for stride 1, 5 (row 2 at kx 2, 0) for stride 2.
// Accumulators start at the bias (in block order), so an output leaves straight for the output
// stage. Row 2's pair of the row's last column would read past it: that column is peeled.
template <class In, class Out, size_t S, size_t W, bool Small>
inline void row_block(size_t c0, size_t channels, size_t npix, const uint8_t* const* rows,
                      const int16_t* wb, const int32_t* bias, const float* scale, Out* y,
                      size_t y_stride, const Stage& st) {
  const uint8_t* r0 = rows[0] + c0;
  const uint8_t* r1 = rows[1] + c0;
  const uint8_t* r2 = rows[2] + c0;
  const V w0 = load_w<W>(wb, 0), w1 = load_w<W>(wb, 1), w2 = load_w<W>(wb, 2);
  const V wz = load_w<W>(wb, 3), wl = load_w<W>(wb, S == 1 ? 4 : 5);
  V b0;
  __m512 s0, s1;
  if constexpr (W == kC) {
    const __m512i lo = _mm512_loadu_si512(bias + c0), hi = _mm512_loadu_si512(bias + c0 + 16);
    b0 = {_mm512_permutex2var_epi32(lo, st.nat_lo, hi),
          _mm512_permutex2var_epi32(lo, st.nat_hi, hi)};
    const __m512 f0 = _mm512_loadu_ps(scale + c0), f1 = _mm512_loadu_ps(scale + c0 + 16);
    s0 = _mm512_permutex2var_ps(f0, st.nat_lo, f1), s1 = _mm512_permutex2var_ps(f0, st.nat_hi, f1);
  } else {
    b0 = {_mm512_loadu_si512(bias + c0), _mm512_setzero_si512()};
    s0 = s1 = _mm512_loadu_ps(scale + c0);
  }
  auto x01 = [&](size_t i) { return pair_at<In, W>(r0 + i * channels, r1 + i * channels); };
  auto z2 = [&](size_t i, bool last) {  // row 2 at columns i, i + 1 (the last column: i, zero)
    return pair_at<In, W>(r2 + i * channels, last ? nullptr : r2 + (i + 1) * channels);
  };
  Out* yp = y + c0;
  if constexpr (S == 1) {
    // P: the next output's sums so far, Q: the one after it; the loop's last column is peeled.
    V P = mac<W>(mac<W>(b0, x01(0), w0), z2(0, false), wz), Q;
    {
      const V x = x01(1), z = z2(1, false);
      P = mac<W>(mac<W>(P, x, w1), z, wl);
      Q = mac<W>(mac<W>(b0, x, w0), z, wz);
    }
    for (size_t p = 0; p + 1 < npix; ++p, yp += y_stride) {
      const V x = x01(p + 2), z = z2(p + 2, false);
      flush<Out, W, Small>(mac<W>(P, x, w2), s0, s1, st, yp);
      P = mac<W>(mac<W>(Q, x, w1), z, wl);
      Q = mac<W>(mac<W>(b0, x, w0), z, wz);
    }
    flush<Out, W, Small>(mac<W>(P, x01(npix + 1), w2), s0, s1, st, yp);
  } else {
    V P = mac<W>(mac<W>(b0, x01(0), w0), z2(0, false), wz);
    for (size_t p = 0; p < npix; ++p, yp += y_stride) {
      const V x = x01(2 * p + 2), z = z2(2 * p + 2, p + 1 == npix);
      P = mac<W>(mac<W>(mac<W>(P, x01(2 * p + 1), w1), x, w2), z, wl);
      flush<Out, W, Small>(P, s0, s1, st, yp);
      P = mac<W>(mac<W>(b0, x, w0), z, wz);
    }
  }
}

// Whether the scales of channels [c0, c0 + n) (n a multiple of 16) all have |s| < 1 (false for
// NaN) and the output is bytes: the Small output stage.
template <class Out>
inline bool small_scales(const float* scale, size_t c0, size_t n) {
  if (std::is_same<Out, float>::value) return false;
  const __m512 one = _mm512_set1_ps(1.0f);
  __mmask16 k = 0xFFFF;
  for (size_t c = c0; c < c0 + n; c += 16)
    k &= _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(scale + c)), one, _CMP_LT_OQ);
  return k == 0xFFFF;
}

// The int16 row kernel over channels [c0, channels) (a multiple of 16); w: channel c0's block.
template <class In, class Out, size_t S>
void rows_int16(size_t c0, size_t channels, size_t npix, const uint8_t* const* rows,
                const int16_t* w, const int32_t* bias, const float* scale, Out* y,
                size_t y_stride, const Stage& st) {
#define EDGERT_DW_BLOCK(W)                                                                     \
  (small_scales<Out>(scale, c0, W)                                                             \
       ? row_block<In, Out, S, W, true>(c0, channels, npix, rows, w, bias, scale, y, y_stride, \
                                        st)                                                    \
       : row_block<In, Out, S, W, false>(c0, channels, npix, rows, w, bias, scale, y,          \
                                         y_stride, st))
  for (; c0 + kC <= channels; c0 += kC, w += kC * 12) EDGERT_DW_BLOCK(kC);
  if (c0 < channels) EDGERT_DW_BLOCK(16);  // channels is a multiple of 16
#undef EDGERT_DW_BLOCK
}

template <class In, class Out, size_t S>
void dw3x3_row(size_t channels, size_t npix, const uint8_t* const* rows, const int16_t* w,
               const int32_t* bias, const float* scale, void* y_out, size_t y_stride,
               const Q8Requant& rq) {
  rows_int16<In, Out, S>(0, channels, npix, rows, w, bias, scale, static_cast<Out*>(y_out),
                         y_stride, Stage(rq));
}

// Byte-form 3x3 rows (q8_dwconv_pack_w_3x3b8). One input column's rows 0-2 of a 64-channel
// block become 4 vectors of (row 0, row 1, row 2, 0) byte quads by vpunpck{l,h}bw and
// vpunpck{l,h}wd (vector j's lane (l, i): channel 16·l + 4·j + i), and one vpdpbusd per vector
// adds a whole column of taps: 12 per output of 64 channels, against 20 vpdpwssd on int16 pairs,
// and the quads of a column are made once for the 3 (stride 1) outputs that read it. Inputs are
// the unsigned operand: i8 inputs are flipped to x + 128 and the accumulators start at
// bias − 128·Σw'. The packs of the output stage put the 4 vectors' channels back in order.
constexpr size_t kB = 64;

// out[j]'s 128-bit block l = in[l]'s block j (a 4x4 transpose of 128-bit blocks).
inline void transpose128(const __m512i in[4], __m512i out[4]) {
  const __m512i t0 = _mm512_shuffle_i32x4(in[0], in[1], 0x44);  // in0.0 in0.1 in1.0 in1.1
  const __m512i t1 = _mm512_shuffle_i32x4(in[0], in[1], 0xEE);  // in0.2 in0.3 in1.2 in1.3
  const __m512i t2 = _mm512_shuffle_i32x4(in[2], in[3], 0x44);
  const __m512i t3 = _mm512_shuffle_i32x4(in[2], in[3], 0xEE);
  out[0] = _mm512_shuffle_i32x4(t0, t2, 0x88);
  out[1] = _mm512_shuffle_i32x4(t0, t2, 0xDD);
  out[2] = _mm512_shuffle_i32x4(t1, t3, 0x88);
  out[3] = _mm512_shuffle_i32x4(t1, t3, 0xDD);
}

struct Quads {
  __m512i v[4];
};

// Column quads of the 64 bytes a0, a1, a2 (rows 0-2).
template <class In>
inline Quads quads_v(__m512i a0, __m512i a1, __m512i a2) {
  if constexpr (!std::is_same<In, uint8_t>::value) {
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    a0 = _mm512_xor_si512(a0, flip), a1 = _mm512_xor_si512(a1, flip);
    a2 = _mm512_xor_si512(a2, flip);
  }
  const __m512i z = _mm512_setzero_si512();
  const __m512i lo = _mm512_unpacklo_epi8(a0, a1), hi = _mm512_unpackhi_epi8(a0, a1);
  const __m512i lo2 = _mm512_unpacklo_epi8(a2, z), hi2 = _mm512_unpackhi_epi8(a2, z);
  return {{_mm512_unpacklo_epi16(lo, lo2), _mm512_unpackhi_epi16(lo, lo2),
           _mm512_unpacklo_epi16(hi, hi2), _mm512_unpackhi_epi16(hi, hi2)}};
}

// Column quads of 64 channels at p0, p1, p2 (rows 0-2).
template <class In>
inline Quads quads(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2) {
  return quads_v<In>(_mm512_loadu_si512(p0), _mm512_loadu_si512(p1), _mm512_loadu_si512(p2));
}

// acc + the column's taps at kx (weights wk: the block's 4 vectors of kx).
inline Quads mac_col(Quads acc, const Quads& x, const int8_t* wk) {
  for (int j = 0; j < 4; ++j)
    acc.v[j] = _mm512_dpbusd_epi32(acc.v[j], x.v[j], _mm512_loadu_si512(wk + 64 * j));
  return acc;
}

// 64 outputs (sums with bias, quad order) to bytes in channel order.
template <class Out, bool Small>
inline __m512i bytes64(const Quads& acc, const __m512 s[4], const Stage& st) {
  constexpr bool u8 = std::is_same<Out, uint8_t>::value;
  __m512i v[4];
  for (int j = 0; j < 4; ++j)
    v[j] = Small ? _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(acc.v[j]), s[j]))
                 : quant(acc.v[j], s[j], st);
  // packs interleave per 128-bit block: (v0, v1) -> channels 16l + 0-7, (v2, v3) -> 8-15.
  __m512i h01 = _mm512_packs_epi32(v[0], v[1]), h23 = _mm512_packs_epi32(v[2], v[3]);
  if constexpr (Small) {
    h01 = _mm512_adds_epi16(h01, st.zp), h23 = _mm512_adds_epi16(h23, st.zp);
  } else {
    h01 = _mm512_add_epi16(h01, st.zp), h23 = _mm512_add_epi16(h23, st.zp);
  }
  const __m512i q = u8 ? _mm512_packus_epi16(h01, h23) : _mm512_packs_epi16(h01, h23);
  if constexpr (!Small) return q;
  const __m512i qmin = _mm512_broadcast_i64x4(st.qmin), qmax = _mm512_broadcast_i64x4(st.qmax);
  return u8 ? _mm512_min_epu8(_mm512_max_epu8(q, qmin), qmax)
            : _mm512_min_epi8(_mm512_max_epi8(q, qmin), qmax);
}

// A block's starting sums and scales in quad order: lane l of vector j holds the channels
// 16·l + 4·j + i of the block at bias + off[l] (off: 16·l for 64 channels; 0, 16, 0, 16 for the
// two-pixel blocks of 32), less 128·Σw' for i8 inputs (flipped to x + 128).
template <class In>
inline void block_start(const int32_t* bias, const float* scale, const size_t off[4],
                        const int8_t* wb, Quads& b0, __m512 s[4]) {
  __m512i in[4], t[4];
  for (int l = 0; l < 4; ++l) in[l] = _mm512_loadu_si512(bias + off[l]);
  transpose128(in, b0.v);
  for (int l = 0; l < 4; ++l) in[l] = _mm512_castps_si512(_mm512_loadu_ps(scale + off[l]));
  transpose128(in, t);
  for (int j = 0; j < 4; ++j) s[j] = _mm512_castsi512_ps(t[j]);
  if constexpr (!std::is_same<In, uint8_t>::value) {
    const __m512i k80 = _mm512_set1_epi8(static_cast<char>(0x80));
    Quads c{{_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
             _mm512_setzero_si512()}};
    const Quads x{{k80, k80, k80, k80}};
    c = mac_col(mac_col(mac_col(c, x, wb), x, wb + 256), x, wb + 512);
    for (int j = 0; j < 4; ++j) b0.v[j] = _mm512_sub_epi32(b0.v[j], c.v[j]);
  }
}

template <class In, class Out, size_t S, bool Small>
inline void row_block_b8(size_t c0, size_t channels, size_t npix, const uint8_t* const* rows,
                         const int8_t* wb, const int32_t* bias, const float* scale, Out* y,
                         size_t y_stride, const Stage& st) {
  const uint8_t* r0 = rows[0] + c0;
  const uint8_t* r1 = rows[1] + c0;
  const uint8_t* r2 = rows[2] + c0;
  const int8_t *w0 = wb, *w1 = wb + 256, *w2 = wb + 512;
  Quads b0;
  __m512 s[4];
  static constexpr size_t kOff[4] = {0, 16, 32, 48};
  block_start<In>(bias + c0, scale + c0, kOff, wb, b0, s);
  auto col = [&](size_t i) {
    return quads<In>(r0 + i * channels, r1 + i * channels, r2 + i * channels);
  };
  auto flush = [&](const Quads& acc, Out* yp) {
    _mm512_storeu_si512(yp, bytes64<Out, Small>(acc, s, st));
  };
  Out* yp = y + c0;
  if constexpr (S == 1) {
    // P: the next output's sums so far (columns p, p + 1), Q: the one after it (column p + 1).
    Quads P = mac_col(b0, col(0), w0), Q;
    {
      const Quads x = col(1);
      P = mac_col(P, x, w1);
      Q = mac_col(b0, x, w0);
    }
    for (size_t p = 0; p + 1 < npix; ++p, yp += y_stride) {
      const Quads x = col(p + 2);
      flush(mac_col(P, x, w2), yp);
      P = mac_col(Q, x, w1);
      Q = mac_col(b0, x, w0);
    }
    flush(mac_col(P, col(npix + 1), w2), yp);
  } else {
    Quads P = mac_col(b0, col(0), w0);
    for (size_t p = 0; p < npix; ++p, yp += y_stride) {
      const Quads x = col(2 * p + 2);
      flush(mac_col(mac_col(P, col(2 * p + 1), w1), x, w2), yp);
      P = mac_col(b0, x, w0);
    }
  }
}

// 32 channels: two output pixels a vector (lanes 0-1 pixel p, lanes 2-3 pixel p + 1), the
// packing's lanes 2-3 repeating 0-1. Stride 1: the vector of columns c, c + 1 is one load, and
// an output pair's last column pair is the next pair's first. Stride 2: each half loaded on its
// own. A last odd output computes its upper half from zeros and stores the lower one only.
template <class In, class Out, size_t S, bool Small>
inline void row_pairs32(size_t npix, const uint8_t* const* rows, const int8_t* wb,
                        const int32_t* bias, const float* scale, Out* y, size_t y_stride,
                        const Stage& st) {
  const int8_t *w0 = wb, *w1 = wb + 256, *w2 = wb + 512;
  Quads b0;
  __m512 s[4];
  static constexpr size_t kOff[4] = {0, 16, 0, 16};
  block_start<In>(bias, scale, kOff, wb, b0, s);
  // The vector of input columns lo (lanes 0-1) and hi (lanes 2-3; none: zeros).
  auto col = [&](size_t lo, size_t hi, bool has_hi) {
    __m512i a[3];
    for (int r = 0; r < 3; ++r) {
      const uint8_t* row = rows[r];
      if (S == 1 && has_hi) {  // hi == lo + 1: adjacent pixels
        a[r] = _mm512_loadu_si512(row + lo * 32);
        continue;
      }
      const __m512i l = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(row + lo * 32)));
      a[r] = has_hi ? _mm512_inserti64x4(l, _mm256_loadu_si256((const __m256i*)(row + hi * 32)), 1)
                    : _mm512_zextsi256_si512(_mm512_castsi512_si256(l));
    }
    return quads_v<In>(a[0], a[1], a[2]);
  };
  auto flush = [&](const Quads& acc, Out* yp, bool both) {
    const __m512i q = bytes64<Out, Small>(acc, s, st);
    _mm256_storeu_si256((__m256i*)yp, _mm512_castsi512_si256(q));
    if (both) _mm256_storeu_si256((__m256i*)(yp + y_stride), _mm512_extracti64x4_epi64(q, 1));
  };
  size_t p = 0;
  if constexpr (S == 1) {
    Quads qa = col(0, 1, true);
    for (; p + 2 <= npix; p += 2, y += 2 * y_stride) {
      const Quads qb = col(p + 1, p + 2, true), qc = col(p + 2, p + 3, true);
      flush(mac_col(mac_col(mac_col(b0, qa, w0), qb, w1), qc, w2), y, true);
      qa = qc;
    }
    if (p < npix)  // columns p + 2 (the row's last) and none
      flush(mac_col(mac_col(mac_col(b0, qa, w0), col(p + 1, p + 2, true), w1),
                    col(p + 2, 0, false), w2), y, false);
  } else {
    for (; p < npix; p += 2, y += 2 * y_stride) {
      const bool both = p + 1 < npix;
      Quads acc = b0;
      for (size_t kx = 0; kx < 3; ++kx)
        acc = mac_col(acc, col(2 * p + kx, 2 * p + 2 + kx, both), wb + 256 * kx);
      flush(acc, y, both);
    }
  }
}

// 16 channels: four output pixels a vector (lane g: pixel p + g), every lane of the packing the
// same 16 channels. Stride 1: the vector of columns c..c + 3 is one load (masked for a last
// group of fewer outputs); stride 2: four 16-byte loads. Stores: one 64-byte store when the
// outputs are contiguous, else one 16-byte store per output.
template <class In, class Out, size_t S, bool Small>
inline void row_quads16(size_t npix, const uint8_t* const* rows, const int8_t* wb,
                        const int32_t* bias, const float* scale, Out* y, size_t y_stride,
                        const Stage& st) {
  Quads b0;
  __m512 s[4];
  static constexpr size_t kOff[4] = {0, 0, 0, 0};
  block_start<In>(bias, scale, kOff, wb, b0, s);
  // The vector of input columns first + S·g for the n (<= 4) lanes g < n; zeros past n.
  auto col = [&](size_t first, size_t n) {
    __m512i a[3];
    for (int r = 0; r < 3; ++r) {
      const uint8_t* row = rows[r];
      if constexpr (S == 1) {
        a[r] = n == 4 ? _mm512_loadu_si512(row + first * 16)
                      : _mm512_maskz_loadu_epi8((uint64_t{1} << (16 * n)) - 1, row + first * 16);
      } else {
        __m512i v = _mm512_zextsi128_si512(_mm_loadu_si128((const __m128i*)(row + first * 16)));
        if (n > 1) v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(row + (first + 2) * 16)), 1);
        if (n > 2) v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(row + (first + 4) * 16)), 2);
        if (n > 3) v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i*)(row + (first + 6) * 16)), 3);
        a[r] = v;
      }
    }
    return quads_v<In>(a[0], a[1], a[2]);
  };
  for (size_t p = 0; p < npix; p += 4, y += 4 * y_stride) {
    const size_t n = npix - p < 4 ? npix - p : 4;
    Quads acc = b0;
    for (size_t kx = 0; kx < 3; ++kx) acc = mac_col(acc, col(S * p + kx, n), wb + 256 * kx);
    const __m512i q = bytes64<Out, Small>(acc, s, st);
    if (n == 4 && y_stride == 16) {
      _mm512_storeu_si512(y, q);
      continue;
    }
    _mm_storeu_si128((__m128i*)y, _mm512_castsi512_si128(q));
    if (n > 1) _mm_storeu_si128((__m128i*)(y + y_stride), _mm512_extracti32x4_epi32(q, 1));
    if (n > 2) _mm_storeu_si128((__m128i*)(y + 2 * y_stride), _mm512_extracti32x4_epi32(q, 2));
    if (n > 3) _mm_storeu_si128((__m128i*)(y + 3 * y_stride), _mm512_extracti32x4_epi32(q, 3));
  }
}

template <class In, class Out, size_t S>
void dw3x3_row_b8(size_t channels, size_t npix, const uint8_t* const* rows, const int16_t* w,
                  const int32_t* bias, const float* scale, void* y_out, size_t y_stride,
                  const Q8Requant& rq) {
  Out* y = static_cast<Out*>(y_out);
  const Stage st(rq);
  const int8_t* wb = reinterpret_cast<const int8_t*>(w);
  if (channels == 32) {
    if (small_scales<Out>(scale, 0, 32))
      row_pairs32<In, Out, S, true>(npix, rows, wb, bias, scale, y, y_stride, st);
    else
      row_pairs32<In, Out, S, false>(npix, rows, wb, bias, scale, y, y_stride, st);
    return;
  }
  if (channels == 16) {
    if (small_scales<Out>(scale, 0, 16))
      row_quads16<In, Out, S, true>(npix, rows, wb, bias, scale, y, y_stride, st);
    else
      row_quads16<In, Out, S, false>(npix, rows, wb, bias, scale, y, y_stride, st);
    return;
  }
  const size_t c64 = channels / kB * kB;
  for (size_t c0 = 0; c0 < c64; c0 += kB, wb += 12 * kB) {
    if (small_scales<Out>(scale, c0, kB))
      row_block_b8<In, Out, S, true>(c0, channels, npix, rows, wb, bias, scale, y, y_stride, st);
    else
      row_block_b8<In, Out, S, false>(c0, channels, npix, rows, wb, bias, scale, y, y_stride, st);
  }
  if (c64 < channels)
    rows_int16<In, Out, S>(c64, channels, npix, rows, reinterpret_cast<const int16_t*>(wb), bias,
                           scale, y, y_stride, st);
}

// Byte-form per-pixel kernel (q8_dwconv_pack_w_b8): four taps' bytes of 64 channels become 4
// vectors of (tap 4g .. 4g + 3) byte quads by vpunpck{l,h}bw and vpunpck{l,h}wd, one vpdpbusd
// each: 8 shuffles and 4 vpdpbusd per 4 taps and 64 channels, against 8 widenings, 8 interleaves
// and 8 vpdpwssd on int16 pairs. The packing holds the starting sums and scales in the quads'
// lane order. Channels past the last are masked off (loads read zeros, weights are zeros).
template <class In>
inline Quads quads4(__m512i a0, __m512i a1, __m512i a2, __m512i a3) {
  const __m512i lo = _mm512_unpacklo_epi8(a0, a1), hi = _mm512_unpackhi_epi8(a0, a1);
  const __m512i lo2 = _mm512_unpacklo_epi8(a2, a3), hi2 = _mm512_unpackhi_epi8(a2, a3);
  return {{_mm512_unpacklo_epi16(lo, lo2), _mm512_unpackhi_epi16(lo, lo2),
           _mm512_unpacklo_epi16(hi, hi2), _mm512_unpackhi_epi16(hi, hi2)}};
}

template <class In, class Out>
inline void pixel_block_b8(size_t c0, size_t nc, size_t taps, const void* const* in,
                           const int8_t* blk, Out* y, const Stage& st) {
  const size_t groups = (taps + 3) / 4;
  const __mmask64 m = nc >= kB ? ~__mmask64{0} : (__mmask64{1} << nc) - 1;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  auto tap = [&](size_t t) {
    const __m512i v = _mm512_maskz_loadu_epi8(m, static_cast<const uint8_t*>(in[t]) + c0);
    return std::is_same<In, uint8_t>::value ? v : _mm512_xor_si512(v, flip);
  };
  const int32_t* start = reinterpret_cast<const int32_t*>(blk + groups * 256);
  const float* sc = reinterpret_cast<const float*>(blk + groups * 256 + 256);
  Quads acc;
  __m512 s[4];
  for (int j = 0; j < 4; ++j)
    acc.v[j] = _mm512_loadu_si512(start + 16 * j), s[j] = _mm512_loadu_ps(sc + 16 * j);
  size_t t = 0;
  for (; t + 4 <= taps; t += 4, blk += 256)
    acc = mac_col(acc, quads4<In>(tap(t), tap(t + 1), tap(t + 2), tap(t + 3)), blk);
  if (t < taps) {
    const size_t last = taps - 1;
    // (the missing taps repeat the last one: any bytes meet zero weights)
    acc = mac_col(acc, quads4<In>(tap(t), tap(t + 1 < last ? t + 1 : last),
                                  tap(t + 2 < last ? t + 2 : last), tap(last)), blk);
  }
  __mmask16 k = 0xFFFF;
  if constexpr (!std::is_same<Out, float>::value) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int j = 0; j < 4; ++j) k &= _mm512_cmp_ps_mask(_mm512_abs_ps(s[j]), one, _CMP_LT_OQ);
  }
  const __m512i q = k == 0xFFFF ? bytes64<Out, true>(acc, s, st) : bytes64<Out, false>(acc, s, st);
  _mm512_mask_storeu_epi8(y + c0, m, q);
}

template <class In, class Out>
void dwconv_b8(size_t channels, size_t taps, const void* const* in, const int16_t* w,
               const int32_t* /*bias: packed*/, const float* /*scale: packed*/, void* y_out,
               const Q8Requant& rq) {
  Out* y = static_cast<Out*>(y_out);
  const Stage st(rq);
  const int8_t* blk = reinterpret_cast<const int8_t*>(w);
  const size_t block = (taps + 3) / 4 * 256 + 512;
  for (size_t c0 = 0; c0 < channels; c0 += kB, blk += block)
    pixel_block_b8<In, Out>(c0, channels - c0 < kB ? channels - c0 : kB, taps, in, blk, y, st);
}

// 5x5 byte-form rows (q8_dwconv_pack_w_5x5b8). Per 64-channel block and chunk of up to 8
// outputs, the quads of each input column the chunk reads are made once into a buffer (rows
// 0-3; row 4 with the next column's, zeros past the row's last), then each output sums its 5
// columns' and 3 row-4 quads: 32 vpdpbusd and 14 shuffles per output of 64 channels, against
// 28 and 56 in the per-pixel byte form.
constexpr size_t kChunk5 = 8;

template <class In, class Out, size_t S>
void dw5x5_row_b8(size_t channels, size_t npix, const uint8_t* const* rows, const int16_t* w,
                  const int32_t* /*bias: packed*/, const float* /*scale: packed*/, void* y_out,
                  size_t y_stride, const Q8Requant& rq) {
  Out* y = static_cast<Out*>(y_out);
  const Stage st(rq);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80)), z = _mm512_setzero_si512();
  constexpr size_t kCols = S * (kChunk5 - 1) + 5;
  alignas(64) Quads colq[kCols], row4[kCols];
  const size_t ncols_row = S * (npix - 1) + 5;  // input columns the row reads
  const int8_t* blk = reinterpret_cast<const int8_t*>(w);
  for (size_t c0 = 0; c0 < channels; c0 += kB, blk += 2560) {
    const size_t nc = channels - c0 < kB ? channels - c0 : kB;
    const __mmask64 m = nc == kB ? ~__mmask64{0} : (__mmask64{1} << nc) - 1;
    auto load = [&](size_t r, size_t col) {
      const __m512i v = _mm512_maskz_loadu_epi8(m, rows[r] + col * channels + c0);
      return std::is_same<In, uint8_t>::value ? v : _mm512_xor_si512(v, flip);
    };
    const int32_t* start = reinterpret_cast<const int32_t*>(blk + 2048);
    const float* sc = reinterpret_cast<const float*>(blk + 2304);
    Quads b0;
    __m512 s[4];
    __mmask16 k = 0xFFFF;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int j = 0; j < 4; ++j) {
      b0.v[j] = _mm512_loadu_si512(start + 16 * j), s[j] = _mm512_loadu_ps(sc + 16 * j);
      k &= _mm512_cmp_ps_mask(_mm512_abs_ps(s[j]), one, _CMP_LT_OQ);
    }
    const bool small = k == 0xFFFF;
    for (size_t p0 = 0; p0 < npix; p0 += kChunk5) {
      const size_t n = npix - p0 < kChunk5 ? npix - p0 : kChunk5;
      const size_t col0 = S * p0, ncol = S * (n - 1) + 5;
      for (size_t i = 0; i < ncol; ++i) {
        const size_t col = col0 + i;
        colq[i] = quads4<In>(load(0, col), load(1, col), load(2, col), load(3, col));
        const __m512i next = col + 1 < ncols_row ? load(4, col + 1) : z;
        row4[i] = quads4<In>(load(4, col), next, z, z);
      }
      for (size_t q = 0; q < n; ++q) {
        const size_t b = S * q;
        Quads acc = b0;
        for (size_t kx = 0; kx < 5; ++kx) acc = mac_col(acc, colq[b + kx], blk + 256 * kx);
        acc = mac_col(acc, row4[b], blk + 1280);
        acc = mac_col(acc, row4[b + 2], blk + 1536);
        acc = mac_col(acc, row4[b + 4], blk + 1792);
        const __m512i out = small ? bytes64<Out, true>(acc, s, st) : bytes64<Out, false>(acc, s, st);
        _mm512_mask_storeu_epi8(y + (p0 + q) * y_stride + c0, m, out);
      }
    }
  }
}

}  // namespace

#define EDGERT_DW_ROW(S, In) \
  {dw3x3_row<In, uint8_t, S>, dw3x3_row<In, int8_t, S>, dw3x3_row<In, float, S>}
#define EDGERT_DW_ROW_B8(S, In) {dw3x3_row_b8<In, uint8_t, S>, dw3x3_row_b8<In, int8_t, S>}
const Q8DwConvUKernel q8_dwconv_minmax_fp32_ukernel_c32__avx512vnni = {
    "q8_dwconv_minmax_fp32_ukernel_c32__avx512vnni",
    {{dwconv<uint8_t, uint8_t>, dwconv<uint8_t, int8_t>, dwconv<uint8_t, float>},
     {dwconv<int8_t, uint8_t>, dwconv<int8_t, int8_t>, dwconv<int8_t, float>}},
    q8_dwconv_pack_w_c32x2,
    {{EDGERT_DW_ROW(1, uint8_t), EDGERT_DW_ROW(1, int8_t)},
     {EDGERT_DW_ROW(2, uint8_t), EDGERT_DW_ROW(2, int8_t)}},
    q8_dwconv_pack_w_3x3c32,
    {{EDGERT_DW_ROW_B8(1, uint8_t), EDGERT_DW_ROW_B8(1, int8_t)},
     {EDGERT_DW_ROW_B8(2, uint8_t), EDGERT_DW_ROW_B8(2, int8_t)}},
    q8_dwconv_pack_w_3x3b8,
    {{dwconv_b8<uint8_t, uint8_t>, dwconv_b8<uint8_t, int8_t>},
     {dwconv_b8<int8_t, uint8_t>, dwconv_b8<int8_t, int8_t>}},
    q8_dwconv_pack_w_b8,
    {{{dw5x5_row_b8<uint8_t, uint8_t, 1>, dw5x5_row_b8<uint8_t, int8_t, 1>},
      {dw5x5_row_b8<int8_t, uint8_t, 1>, dw5x5_row_b8<int8_t, int8_t, 1>}},
     {{dw5x5_row_b8<uint8_t, uint8_t, 2>, dw5x5_row_b8<uint8_t, int8_t, 2>},
      {dw5x5_row_b8<int8_t, uint8_t, 2>, dw5x5_row_b8<int8_t, int8_t, 2>}}},
    q8_dwconv_pack_w_5x5b8};
#undef EDGERT_DW_ROW
#undef EDGERT_DW_ROW_B8

}  // namespace edgert
