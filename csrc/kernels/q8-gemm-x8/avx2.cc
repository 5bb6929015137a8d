// AVX2 byte-form q8-gemm, 4x16 tile, K in quads (c4): each int32 lane of an accumulator is one
// column's sum, so no horizontal reduction is needed. Forms as in q8-gemm-x8.h (the pack-time
// choice guarantees no int16 pair sum saturates). Reads A rows only below k (the last partial
// quad through a copy), never A rows >= mr; output stage: cvtdq2ps, mulps (no FMA), max/min,
// cvtps2dq (round half to even under the default MXCSR, as nearbyintf), + y_zp, saturating packs.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/q8-gemm-x8/q8-gemm-x8.h"

namespace edgert {
namespace {

constexpr size_t MR = 4, NR = 16;

inline __m256i bcast_quad(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// The last 1-3 bytes of a row (a memcpy of a run-time length is a library call: K = 27 ran at
// 26 G MAC/s through it, K = 28 at 62).
inline __m256i bcast_tail(const uint8_t* p, size_t n) {
  uint32_t v = p[0];
  if (n > 1) v |= uint32_t{p[1]} << 8;
  if (n > 2) v |= uint32_t{p[2]} << 16;
  return _mm256_set1_epi32(static_cast<int32_t>(v));
}

#define EDGERT_SIGN_ROW(A, C0, C1)                                                         \
  "vpbroadcastd 4(%[" A "],%[off]), %%ymm13\n\t"                                            \
  "vpbroadcastd (%[" A "],%[off]), %%ymm14\n\t"                                             \
  "vpsignb %%ymm13, %%ymm11, %%ymm15\n\t"                                                   \
  "vpsignb %%ymm13, %%ymm12, %%ymm13\n\t"                                                   \
  "vpmaddubsw %%ymm15, %%ymm14, %%ymm15\n\t"                                                \
  "vpmaddubsw %%ymm13, %%ymm14, %%ymm13\n\t"                                                \
  "vpmaddwd %t[ones], %%ymm15, %%ymm15\n\t"                                                 \
  "vpmaddwd %t[ones], %%ymm13, %%ymm13\n\t"                                                 \
  "vpaddd %%ymm15, %t[" C0 "], %t[" C0 "]\n\t"                                              \
  "vpaddd %%ymm13, %t[" C1 "], %t[" C1 "]\n\t"

// sign_s8: the K loop over kq >= 1 prepared quads of four rows; per row and quad, acc0/acc1 +=
// |s| · (w·sign(s)) with w0/w1 the quad's columns 0-7 / 8-15. In assembly because
// GCC spills an accumulator of this 4x16 tile to the stack (a store-to-load chain every quad);
// here the 8 accumulators, ones and the 2 weight vectors stay in registers, 5 temporaries.
inline void sign_loop(size_t kq, const int8_t* wb, const uint8_t* a0, const uint8_t* a1,
                      const uint8_t* a2, const uint8_t* a3, __m256i& c00, __m256i& c01,
                      __m256i& c10, __m256i& c11, __m256i& c20, __m256i& c21, __m256i& c30,
                      __m256i& c31) {
  const __m256i ones = _mm256_set1_epi16(1);
  size_t off = 0;
  __asm__(
      "1:\n\t"
      "vmovdqu (%[w]), %%ymm11\n\t"
      "vmovdqu 32(%[w]), %%ymm12\n\t"
      "add $64, %[w]\n\t"
      EDGERT_SIGN_ROW("a0", "c00", "c01")
      EDGERT_SIGN_ROW("a1", "c10", "c11")
      EDGERT_SIGN_ROW("a2", "c20", "c21")
      EDGERT_SIGN_ROW("a3", "c30", "c31")
      "add $8, %[off]\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11), [c20] "+x"(c20),
        [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31), [w] "+r"(wb), [off] "+r"(off),
        [n] "+r"(kq)
      : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [ones] "x"(ones)
      : "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
}
#undef EDGERT_SIGN_ROW

// pair_u8: acc0/acc1 (columns 0-7 / 8-15) += the quad a · w0/w1.
template <bool Flip>
inline void quad(__m256i a, __m256i w0, __m256i w1, __m256i& acc0, __m256i& acc1) {
  const __m256i ones = _mm256_set1_epi16(1);
  if (Flip) a = _mm256_xor_si256(a, _mm256_set1_epi8(static_cast<char>(0x80)));
  const __m256i p0 = _mm256_maddubs_epi16(a, w0);
  const __m256i p1 = _mm256_maddubs_epi16(a, w1);
  acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
  acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, ones));
}

// The first n < 16 bytes of v, in constant-size pieces (a run-time-length memcpy is a library
// call: a grouped layer's 10-column blocks paid one per row and tile).
inline void store_partial(void* dst, __m128i v, size_t n) {
  uint8_t* p = static_cast<uint8_t*>(dst);
  if (n & 8) {
    _mm_storel_epi64((__m128i*)p, v);
    p += 8;
    v = _mm_srli_si128(v, 8);
  }
  uint64_t rest = static_cast<uint64_t>(_mm_cvtsi128_si64(v));
  if (n & 4) {
    const uint32_t w = static_cast<uint32_t>(rest);
    std::memcpy(p, &w, 4);
    p += 4;
    rest >>= 32;
  }
  if (n & 2) {
    const uint16_t h = static_cast<uint16_t>(rest);
    std::memcpy(p, &h, 2);
    p += 2;
    rest >>= 16;
  }
  if (n & 1) *p = static_cast<uint8_t>(rest);
}

template <class Out>
inline void store_row(__m256i acc0, __m256i acc1, const float* scale, size_t nj, Out* c,
                      const Q8Requant& rq) {
  // acc holds bias already (the accumulators start from it: vpaddd wraps like q8_add_wrap in
  // any order); the float multiply is rounded once, as in the scalar code.
  const __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(acc0), _mm256_loadu_ps(scale));
  const __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(acc1), _mm256_loadu_ps(scale + 8));
  if constexpr (std::is_same<Out, float>::value) {
    if (nj == NR) {
      _mm256_storeu_ps(c, v0);
      _mm256_storeu_ps(c + 8, v1);
    } else {
      alignas(32) float tmp[NR];
      _mm256_store_ps(tmp, v0);
      _mm256_store_ps(tmp + 8, v1);
      std::memcpy(c, tmp, nj * sizeof(float));
    }
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
    if (nj == NR) _mm_storeu_si128((__m128i*)c, b);
    else store_partial(c, b, nj);
  }
}

// The output stage of two rows of a 16-column block (four rows of an 8-column one) for u8/i8
// outputs, clamping in integers rather than in floats: round first (cvtps2dq, half to even),
// then saturate to int16, add y_zp saturating, saturate to 8 bits and clamp to [qmin, qmax]
// there, 32 outputs an instruction.
// Every step is monotone and [qmin, qmax] lies inside each saturation range, so this equals the
// scalar clamp(nearbyint(v), lo, hi) + y_zp. Guard: a min keeps a huge positive product from
// becoming cvtps2dq's 0x80000000; layers whose products provably stay below 2^31 (rq.guard
// false, nearly all) skip it. Clamp: the byte clamp, which 16-column blocks skip when [qmin,
// qmax] is the output type's whole range (ReLU6 and plain layers as onnxruntime quantizes them:
// the saturating packs clamp there already). Two rows share the packs; two unpacks put them in
// order (a vpermd costs more on Zen 3).
struct PairStage {
  __m256 big;
  __m256i zp16, qmin, qmax;
  bool guard, clamp;
  PairStage(const Q8Requant& rq, bool u8)
      : big(_mm256_set1_ps(2147483520.0f)),  // the largest float below 2^31
        zp16(_mm256_set1_epi16(static_cast<int16_t>(rq.y_zp))),
        qmin(_mm256_set1_epi8(static_cast<char>(static_cast<int32_t>(rq.lo) + rq.y_zp))),
        qmax(_mm256_set1_epi8(static_cast<char>(static_cast<int32_t>(rq.hi) + rq.y_zp))),
        guard(rq.guard),
        clamp(static_cast<int32_t>(rq.lo) + rq.y_zp > (u8 ? 0 : -128) ||
              static_cast<int32_t>(rq.hi) + rq.y_zp < (u8 ? 255 : 127)) {}
};

// Four accumulator vectors to bytes, x0 and x2 scaled by s0, x1 and x3 by s1. Per 128-bit lane
// the byte vector holds 4-byte groups of x0, x1, x2, x3 (lane 0 their elements 0-3, lane 1 4-7);
// lo = unpacklo_epi32 of the lanes is x0's 8 elements then x1's, hi is x2's then x3's.
template <class Out, bool Guard, bool Clamp = true>
inline void requant4(__m256i x0, __m256i x1, __m256i x2, __m256i x3, __m256 s0, __m256 s1,
                     const PairStage& ps, __m128i& lo, __m128i& hi) {
  auto q = [&](__m256i acc, __m256 s) {
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), s);
    return _mm256_cvtps_epi32(Guard ? _mm256_min_ps(v, ps.big) : v);
  };
  const __m256i p0 = _mm256_adds_epi16(_mm256_packs_epi32(q(x0, s0), q(x1, s1)), ps.zp16);
  const __m256i p1 = _mm256_adds_epi16(_mm256_packs_epi32(q(x2, s0), q(x3, s1)), ps.zp16);
  __m256i b;
  if constexpr (std::is_same<Out, uint8_t>::value) {
    b = _mm256_packus_epi16(p0, p1);
    if (Clamp) b = _mm256_min_epu8(_mm256_max_epu8(b, ps.qmin), ps.qmax);
  } else {
    b = _mm256_packs_epi16(p0, p1);
    if (Clamp) b = _mm256_min_epi8(_mm256_max_epi8(b, ps.qmin), ps.qmax);
  }
  const __m128i l0 = _mm256_castsi256_si128(b), l1 = _mm256_extracti128_si256(b, 1);
  lo = _mm_unpacklo_epi32(l0, l1), hi = _mm_unpackhi_epi32(l0, l1);
}

// Two rows of 16 columns (r00/r01: row 0's columns 0-7 / 8-15, so lo is row 0), nj of them
// stored.
template <class Out, bool Guard, bool Clamp>
inline void store_pair(__m256i r00, __m256i r01, __m256i r10, __m256i r11, const float* scale,
                       const PairStage& ps, size_t nj, Out* c0, Out* c1) {
  __m128i row0, row1;
  requant4<Out, Guard, Clamp>(r00, r01, r10, r11, _mm256_loadu_ps(scale), _mm256_loadu_ps(scale + 8), ps,
                       row0, row1);
  if (nj == NR) {
    _mm_storeu_si128((__m128i*)c0, row0);
    _mm_storeu_si128((__m128i*)c1, row1);
  } else {
    store_partial(c0, row0, nj);
    store_partial(c1, row1, nj);
  }
}

// Four rows of at most 8 columns (a last block of at most 8 columns, or N = 8).
template <class Out, bool Guard>
inline void store_quad8(const __m256i* acc, const float* scale, const PairStage& ps, size_t nj,
                        Out* c, size_t c_stride) {
  const __m256 s = _mm256_loadu_ps(scale);
  __m128i r01, r23;
  requant4<Out, Guard>(acc[0], acc[1], acc[2], acc[3], s, s, ps, r01, r23);
  if (nj == 8) {
    _mm_storel_epi64((__m128i*)c, r01);
    _mm_storel_epi64((__m128i*)(c + c_stride), _mm_unpackhi_epi64(r01, r01));
    _mm_storel_epi64((__m128i*)(c + 2 * c_stride), r23);
    _mm_storel_epi64((__m128i*)(c + 3 * c_stride), _mm_unpackhi_epi64(r23, r23));
  } else {
    store_partial(c, r01, nj);
    store_partial(c + c_stride, _mm_unpackhi_epi64(r01, r01), nj);
    store_partial(c + 2 * c_stride, r23, nj);
    store_partial(c + 3 * c_stride, _mm_unpackhi_epi64(r23, r23), nj);
  }
}

// One column block for R rows and V 8-column vectors, in intrinsics: the tiles the 4-row loop
// would waste work on. R < 4 (a GEMV, a layer's last rows): only those rows' products, where the
// 4-row loop computes four (a fully connected layer on one sample ran 4x the multiplies).
// V = 1: a last block of at most 8 columns (N = 8, 24, 56, 1000 ...), half a block's multiplies.
template <int R, int V, int Form, class In, class Out>
void block(size_t nj, size_t k, const uint8_t* const* ar, const int8_t* wb, const int32_t* bias,
           size_t bias_stride, const int32_t* row_off, const float* scale, Out* c,
           size_t c_stride, const Q8Requant& rq) {
  constexpr bool kFlip = (Form == 0) != std::is_same<In, uint8_t>::value;
  const size_t kq = (k + 3) / 4, kfull = k / 4, rem = k % 4;
  const __m256i ones = _mm256_set1_epi16(1), flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256i acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) {
      acc[r][v] = _mm256_loadu_si256((const __m256i*)(bias + r * bias_stride + 8 * v));
      if (row_off) acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_set1_epi32(row_off[r]));
    }
  auto madd = [&](__m256i& acc, __m256i a, __m256i w) {
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, w), ones));
  };
  if constexpr (Form == 1) {  // prepared rows: per quad 4 bytes |s|, then 4 bytes s
    for (size_t q = 0; q < kq; ++q, wb += 4 * NR) {
      __m256i wv[V];
      for (int v = 0; v < V; ++v) wv[v] = _mm256_loadu_si256((const __m256i*)(wb + 32 * v));
      for (int r = 0; r < R; ++r) {
        const __m256i u = bcast_quad(ar[r] + 8 * q), sg = bcast_quad(ar[r] + 8 * q + 4);
        for (int v = 0; v < V; ++v) madd(acc[r][v], u, _mm256_sign_epi8(wv[v], sg));
      }
    }
  } else {
    auto step = [&](size_t q, auto load) {
      __m256i wv[V];
      for (int v = 0; v < V; ++v) wv[v] = _mm256_loadu_si256((const __m256i*)(wb + 4 * NR * q + 32 * v));
      for (int r = 0; r < R; ++r) {
        __m256i x = load(ar[r] + 4 * q);
        if (kFlip) x = _mm256_xor_si256(x, flip);
        for (int v = 0; v < V; ++v) madd(acc[r][v], x, wv[v]);
      }
    };
    for (size_t q = 0; q < kfull; ++q) step(q, [](const uint8_t* p) { return bcast_quad(p); });
    // the last partial quad through a copy; the weights of the missing bytes are zero
    if (rem) step(kfull, [rem](const uint8_t* p) { return bcast_tail(p, rem); });
  }
  if constexpr (R == 4 && V == 1 && !std::is_same<Out, float>::value) {
    const PairStage ps(rq, std::is_same<Out, uint8_t>::value);
    const __m256i a4[4] = {acc[0][0], acc[1][0], acc[2][0], acc[3][0]};
    if (rq.guard) store_quad8<Out, true>(a4, scale, ps, nj, c, c_stride);
    else store_quad8<Out, false>(a4, scale, ps, nj, c, c_stride);
    return;
  }
  for (int r = 0; r < R; ++r)
    store_row<Out>(acc[r][0], V == 2 ? acc[r][V - 1] : _mm256_setzero_si256(), scale, nj,
                   c + r * c_stride, rq);
}

// A tile of R < 4 rows: whole blocks, and a last one of at most 8 columns as half a block.
template <int R, int Form, class In, class Out>
void gemm_short(size_t nc, size_t k, const void* const* a, const int8_t* w, const int32_t* bias,
                size_t bias_stride, const int32_t* row_off, const float* scale, Out* c,
                size_t c_stride, const Q8Requant& rq) {
  const uint8_t* ar[R];
  for (int r = 0; r < R; ++r) ar[r] = static_cast<const uint8_t*>(a[r]);
  const size_t kq = (k + 3) / 4;
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    const int8_t* wb = w + n0 / NR * kq * 4 * NR;
    const size_t nj = nc - n0 < NR ? nc - n0 : NR;
    if (nj <= NR / 2)
      block<R, 1, Form, In, Out>(nj, k, ar, wb, bias + n0, bias_stride, row_off, scale + n0,
                                 c + n0, c_stride, rq);
    else
      block<R, 2, Form, In, Out>(nj, k, ar, wb, bias + n0, bias_stride, row_off, scale + n0,
                                 c + n0, c_stride, rq);
  }
}

// One tile of mr <= 4 rows, inlined into gemm_4x16's row loop.
template <int Form, class In, class Out>
__attribute__((always_inline)) inline void gemm_tile(size_t mr, size_t nc, size_t k,
                                                     const void* const* a, const int8_t* w,
                                                     const int32_t* bias, size_t bias_stride,
                                                     const int32_t* row_off, const float* scale,
                                                     Out* c, size_t c_stride,
                                                     const Q8Requant& rq) {
  // pair_u8 wants u8 operands, sign_s8 wants s8 ones: flip the sign bit when the input differs.
  constexpr bool kFlip = (Form == 0) != std::is_same<In, uint8_t>::value;
  switch (mr) {
    case 1: return gemm_short<1, Form, In, Out>(nc, k, a, w, bias, bias_stride, row_off, scale, c, c_stride, rq);
    case 2: return gemm_short<2, Form, In, Out>(nc, k, a, w, bias, bias_stride, row_off, scale, c, c_stride, rq);
    case 3: return gemm_short<3, Form, In, Out>(nc, k, a, w, bias, bias_stride, row_off, scale, c, c_stride, rq);
    default: break;
  }
  const uint8_t* a0 = static_cast<const uint8_t*>(a[0]);  // a whole tile from here on
  const uint8_t* a1 = static_cast<const uint8_t*>(a[1]);
  const uint8_t* a2 = static_cast<const uint8_t*>(a[2]);
  const uint8_t* a3 = static_cast<const uint8_t*>(a[3]);
  const size_t kq = (k + 3) / 4, kfull = k / 4, rem = k % 4;
  const PairStage ps(rq, std::is_same<Out, uint8_t>::value);
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    const int8_t* wb = w + n0 / NR * kq * 4 * NR;
    if (nc - n0 <= NR / 2) {
      const uint8_t* const ar[MR] = {a0, a1, a2, a3};
      block<MR, 1, Form, In, Out>(nc - n0, k, ar, wb, bias + n0, bias_stride, row_off, scale + n0,
                                  c + n0, c_stride, rq);
      break;
    }
    __m256i c00 = _mm256_loadu_si256((const __m256i*)(bias + n0));
    __m256i c01 = _mm256_loadu_si256((const __m256i*)(bias + n0 + 8));
    __m256i c10 = c00, c11 = c01, c20 = c00, c21 = c01, c30 = c00, c31 = c01;
    if (bias_stride) {  // per-row biases, for the rows this tile has
      const int32_t* b = bias + n0;
      if (mr > 1) c10 = _mm256_loadu_si256((const __m256i*)(b + bias_stride)),
                  c11 = _mm256_loadu_si256((const __m256i*)(b + bias_stride + 8));
      if (mr > 2) c20 = _mm256_loadu_si256((const __m256i*)(b + 2 * bias_stride)),
                  c21 = _mm256_loadu_si256((const __m256i*)(b + 2 * bias_stride + 8));
      if (mr > 3) c30 = _mm256_loadu_si256((const __m256i*)(b + 3 * bias_stride)),
                  c31 = _mm256_loadu_si256((const __m256i*)(b + 3 * bias_stride + 8));
    }
    if (row_off) {  // one offset a row (a whole tile: mr == 4 here)
      const __m256i o0 = _mm256_set1_epi32(row_off[0]), o1 = _mm256_set1_epi32(row_off[1]);
      const __m256i o2 = _mm256_set1_epi32(row_off[2]), o3 = _mm256_set1_epi32(row_off[3]);
      c00 = _mm256_add_epi32(c00, o0), c01 = _mm256_add_epi32(c01, o0);
      c10 = _mm256_add_epi32(c10, o1), c11 = _mm256_add_epi32(c11, o1);
      c20 = _mm256_add_epi32(c20, o2), c21 = _mm256_add_epi32(c21, o2);
      c30 = _mm256_add_epi32(c30, o3), c31 = _mm256_add_epi32(c31, o3);
    }
    size_t off = 0;
    if constexpr (Form == 1) {  // prepared rows: whole quads, no tail
      sign_loop(kq, wb, a0, a1, a2, a3, c00, c01, c10, c11, c20, c21, c30, c31);
    } else {
      for (size_t q = 0; q < kfull; ++q, off += 4, wb += 4 * NR) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i*)wb);
        const __m256i w1 = _mm256_loadu_si256((const __m256i*)(wb + 32));
        quad<kFlip>(bcast_quad(a0 + off), w0, w1, c00, c01);
        quad<kFlip>(bcast_quad(a1 + off), w0, w1, c10, c11);
        quad<kFlip>(bcast_quad(a2 + off), w0, w1, c20, c21);
        quad<kFlip>(bcast_quad(a3 + off), w0, w1, c30, c31);
      }
      if (rem) {  // the weights of the missing bytes are zero, so the pad value does not matter
        const __m256i w0 = _mm256_loadu_si256((const __m256i*)wb);
        const __m256i w1 = _mm256_loadu_si256((const __m256i*)(wb + 32));
        quad<kFlip>(bcast_tail(a0 + off, rem), w0, w1, c00, c01);
        quad<kFlip>(bcast_tail(a1 + off, rem), w0, w1, c10, c11);
        quad<kFlip>(bcast_tail(a2 + off, rem), w0, w1, c20, c21);
        quad<kFlip>(bcast_tail(a3 + off, rem), w0, w1, c30, c31);
      }
    }
    const size_t nj = nc - n0 < NR ? nc - n0 : NR;
    Out* cr = c + n0;
    if constexpr (!std::is_same<Out, float>::value) {
      if (mr == MR) {  // a whole tile, or its last block of 9-15 columns
        if (ps.guard) {
          store_pair<Out, true, true>(c00, c01, c10, c11, scale + n0, ps, nj, cr, cr + c_stride);
          store_pair<Out, true, true>(c20, c21, c30, c31, scale + n0, ps, nj, cr + 2 * c_stride,
                                      cr + 3 * c_stride);
        } else if (ps.clamp) {
          store_pair<Out, false, true>(c00, c01, c10, c11, scale + n0, ps, nj, cr, cr + c_stride);
          store_pair<Out, false, true>(c20, c21, c30, c31, scale + n0, ps, nj, cr + 2 * c_stride,
                                       cr + 3 * c_stride);
        } else {
          store_pair<Out, false, false>(c00, c01, c10, c11, scale + n0, ps, nj, cr, cr + c_stride);
          store_pair<Out, false, false>(c20, c21, c30, c31, scale + n0, ps, nj, cr + 2 * c_stride,
                                        cr + 3 * c_stride);
        }
        continue;
      }
    }
    store_row<Out>(c00, c01, scale + n0, nj, cr, rq);
    if (mr > 1) store_row<Out>(c10, c11, scale + n0, nj, cr + c_stride, rq);
    if (mr > 2) store_row<Out>(c20, c21, scale + n0, nj, cr + 2 * c_stride, rq);
    if (mr > 3) store_row<Out>(c30, c31, scale + n0, nj, cr + 3 * c_stride, rq);
  }
}

template <int Form, class In, class Out>
void gemm_4x16(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
               const int32_t* bias, size_t bias_stride, const float* scale, void* c_out,
               size_t c_stride, const Q8Requant& rq) {
  Out* c = static_cast<Out*>(c_out);
  for (size_t r = 0; r < mr; r += MR)
    gemm_tile<Form, In, Out>(mr - r < MR ? mr - r : MR, nc, k, a + r, w, bias + r * bias_stride,
                             bias_stride, nullptr, scale, c + r * c_stride, c_stride, rq);
}

// pair_u8 with one offset a row (Q8GemmX8RowOffFn).
template <class In, class Out>
void gemm_4x16_off(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
                   const int32_t* bias, const int32_t* row_off, const float* scale, void* c_out,
                   size_t c_stride, const Q8Requant& rq) {
  Out* c = static_cast<Out*>(c_out);
  for (size_t r = 0; r < mr; r += MR)
    gemm_tile<0, In, Out>(mr - r < MR ? mr - r : MR, nc, k, a + r, w, bias, 0, row_off + r,
                          scale, c + r * c_stride, c_stride, rq);
}

// 8 quads at a time: s = x ^ flip, |s|, interleaved per quad as [|s| x4, s x4].
void prepare_sign(const uint8_t* x, size_t k, bool flip, uint8_t* out) {
  const uint8_t f = flip ? 0x80 : 0;
  const __m256i fv = _mm256_set1_epi8(static_cast<char>(f));
  size_t i = 0;
  for (;; i += 32, out += 64) {
    __m256i s;
    if (i + 32 <= k) {
      s = _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(x + i)), fv);
    } else {
      if (i >= k) break;
      // The last k − i < 32 bytes in constant-size pieces (a run-time memcpy is a library call,
      // paid per row by grouped layers with short rows); pads become s = 0.
      alignas(32) uint8_t buf[32];
      std::memset(buf, f, sizeof buf);
      const uint8_t* src = x + i;
      const size_t n = k - i;
      size_t o = 0;
      if (n & 16) std::memcpy(buf + o, src + o, 16), o += 16;
      if (n & 8) std::memcpy(buf + o, src + o, 8), o += 8;
      if (n & 4) std::memcpy(buf + o, src + o, 4), o += 4;
      if (n & 2) std::memcpy(buf + o, src + o, 2), o += 2;
      if (n & 1) buf[o] = src[o];
      s = _mm256_xor_si256(_mm256_load_si256((const __m256i*)buf), fv);
    }
    const __m256i u = _mm256_abs_epi8(s);
    const __m256i lo = _mm256_unpacklo_epi32(u, s), hi = _mm256_unpackhi_epi32(u, s);
    const size_t left = (k - i + 3) / 4 * 8, bytes = left < 64 ? left : 64;
    if (bytes == 64) {
      _mm256_storeu_si256((__m256i*)out, _mm256_permute2x128_si256(lo, hi, 0x20));
      _mm256_storeu_si256((__m256i*)(out + 32), _mm256_permute2x128_si256(lo, hi, 0x31));
    } else {
      alignas(32) uint8_t tmp[64];  // bytes: a multiple of 8 below 64
      _mm256_store_si256((__m256i*)tmp, _mm256_permute2x128_si256(lo, hi, 0x20));
      _mm256_store_si256((__m256i*)(tmp + 32), _mm256_permute2x128_si256(lo, hi, 0x31));
      size_t o = 0;
      if (bytes & 32) std::memcpy(out + o, tmp + o, 32), o += 32;
      if (bytes & 16) std::memcpy(out + o, tmp + o, 16), o += 16;
      if (bytes & 8) std::memcpy(out + o, tmp + o, 8);
    }
  }
}

// q8_gemm_x8_permute_rows: vpshufb reorders within 128-bit lanes, i.e. one 16-byte group a lane.
void permute_rows(const uint8_t* src, size_t src_stride, size_t rows, size_t k, bool whole,
                  const uint8_t* mask, uint8_t* dst, size_t dst_stride) {
  const size_t kk = whole ? (k + 15) / 16 * 16 : k;
  for (size_t r = 0; r < rows; ++r, src += src_stride, dst += dst_stride) {
    size_t g = 0;
    for (; g + 32 <= kk; g += 32) {
      const __m256i v = _mm256_loadu_si256((const __m256i*)(src + g));
      _mm256_storeu_si256((__m256i*)(dst + g),
                          _mm256_shuffle_epi8(v, _mm256_loadu_si256((const __m256i*)(mask + g))));
    }
    for (; g < kk; g += 16) {
      __m128i v;
      if (g + 16 <= kk) {
        v = _mm_loadu_si128((const __m128i*)(src + g));
      } else {  // the last group, not readable whole
        alignas(16) uint8_t buf[16] = {};
        std::memcpy(buf, src + g, kk - g);
        v = _mm_load_si128((const __m128i*)buf);
      }
      _mm_storeu_si128((__m128i*)(dst + g),
                       _mm_shuffle_epi8(v, _mm_loadu_si128((const __m128i*)(mask + g))));
    }
  }
}

// q8_gemm_x8_gather_taps: each segment's 16 bytes broadcast to both lanes, one vpshufb a
// segment, ORed; 3 segments (3-row kernels) with the masks in registers.
template <size_t S>
void gather_rows_n(const uint8_t* src, size_t pix, size_t step, size_t segs, size_t rows,
                   const uint8_t* masks, uint8_t* dst, size_t dst_stride) {
  const size_t n = S ? S : segs;
  __m256i m[S ? S : 1];
  if (S)
    for (size_t t = 0; t < S; ++t) m[t] = _mm256_loadu_si256((const __m256i*)(masks + 32 * t));
  for (size_t r = 0; r < rows; ++r, src += pix, dst += dst_stride) {
    __m256i v = _mm256_setzero_si256();
    for (size_t t = 0; t < n; ++t) {
      const __m256i mt = S ? m[t] : _mm256_loadu_si256((const __m256i*)(masks + 32 * t));
      const __m256i seg = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(src + t * step)));
      v = _mm256_or_si256(v, _mm256_shuffle_epi8(seg, mt));
    }
    _mm256_storeu_si256((__m256i*)dst, v);
  }
}



// q8_gemm_x8_gpermute_rows: each output group of 16 bytes ORs a vpshufb of every source group
// it takes bytes from (bytes from other groups, and past k, zeroed by the mask's 0x80).
void gpermute_rows(const uint8_t* src, size_t src_stride, size_t rows, size_t k,
                   const uint8_t* order, uint8_t* dst, size_t dst_stride) {
  const size_t groups = (k + 15) / 16, tail = k - 16 * (groups - 1);
  alignas(16) uint8_t masks[4][4][16];
  std::memset(masks, 0x80, sizeof(masks));
  unsigned need[4] = {};
  for (size_t j = 0; j < k; ++j) {
    const size_t g = j / 16, s = order[j] / 16u;
    masks[g][s][j % 16] = static_cast<uint8_t>(order[j] % 16u);
    need[g] |= 1u << s;
  }
  __m128i m[4][4];
  for (size_t g = 0; g < groups; ++g)
    for (size_t s = 0; s < groups; ++s) m[g][s] = _mm_load_si128((const __m128i*)masks[g][s]);
  for (size_t r = 0; r < rows; ++r, src += src_stride, dst += dst_stride) {
    __m128i v[4];
    for (size_t s = 0; s + 1 < groups; ++s) v[s] = _mm_loadu_si128((const __m128i*)(src + 16 * s));
    if (tail == 16) {
      v[groups - 1] = _mm_loadu_si128((const __m128i*)(src + 16 * (groups - 1)));
    } else {  // the last group, not readable whole
      alignas(16) uint8_t buf[16] = {};
      std::memcpy(buf, src + 16 * (groups - 1), tail);
      v[groups - 1] = _mm_load_si128((const __m128i*)buf);
    }
    for (size_t g = 0; g < groups; ++g) {  // every source loaded first: in place is safe
      __m128i acc = _mm_setzero_si128();
      for (size_t s = 0; s < groups; ++s)
        if (need[g] >> s & 1) acc = _mm_or_si128(acc, _mm_shuffle_epi8(v[s], m[g][s]));
      _mm_storeu_si128((__m128i*)(dst + 16 * g), acc);
    }
  }
}

// q8_gemm_x8_scan_pack for nr = 16 (anything else goes to the generic one): 32 weights a step
// on int16 lanes (pairs split by shifts), then each 16-column block written from a row buffer by
// 8x8 transposes of 4-byte quads.
struct ScanStats {
  __m256i lo, hi, pos, neg, sum;
};

template <bool U8>
inline void scan_row32(const uint8_t* src, size_t k, int32_t zp, uint8_t* dst, ScanStats& st) {
  const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zp)), zero = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi16(0xff);
  for (size_t j = 0; j < k; j += 32) {
    __m256i v;
    if (j + 32 <= k) {
      v = _mm256_loadu_si256((const __m256i*)(src + j));
    } else {
      alignas(32) uint8_t buf[32];
      std::memset(buf, static_cast<uint8_t>(zp), 32);  // w' = 0 past k
      std::memcpy(buf, src + j, k - j);
      v = _mm256_load_si256((const __m256i*)buf);
    }
    __m256i w0 = U8 ? _mm256_and_si256(v, low) : _mm256_srai_epi16(_mm256_slli_epi16(v, 8), 8);
    __m256i w1 = U8 ? _mm256_srli_epi16(v, 8) : _mm256_srai_epi16(v, 8);
    w0 = _mm256_sub_epi16(w0, z);
    w1 = _mm256_sub_epi16(w1, z);
    st.sum = _mm256_add_epi32(st.sum, _mm256_madd_epi16(_mm256_add_epi16(w0, w1), ones));
    st.lo = _mm256_min_epi16(st.lo, _mm256_min_epi16(w0, w1));
    st.hi = _mm256_max_epi16(st.hi, _mm256_max_epi16(w0, w1));
    st.pos = _mm256_max_epi16(st.pos, _mm256_add_epi16(_mm256_max_epi16(w0, zero),
                                                       _mm256_max_epi16(w1, zero)));
    st.neg = _mm256_min_epi16(st.neg, _mm256_add_epi16(_mm256_min_epi16(w0, zero),
                                                       _mm256_min_epi16(w1, zero)));
    const __m256i b = _mm256_or_si256(_mm256_and_si256(w0, low), _mm256_slli_epi16(w1, 8));
    _mm256_storeu_si256((__m256i*)(dst + j), b);
  }
}

inline int16_t hmin16(__m256i v) {
  alignas(32) int16_t t[16];
  _mm256_store_si256((__m256i*)t, v);
  int16_t m = t[0];
  for (int i = 1; i < 16; ++i) m = t[i] < m ? t[i] : m;
  return m;
}
inline int16_t hmax16(__m256i v) {
  return static_cast<int16_t>(-hmin16(_mm256_sub_epi16(_mm256_setzero_si256(), v)));
}

// Quads [q0, q0 + nq) (nq <= 8) of 8 buffer rows (rows apart `stride` bytes) to their 8 column
// slots of the block's quad records (64 bytes each).
inline void transpose8(const uint8_t* rows, size_t stride, size_t q0, size_t nq, int8_t* blk) {
  __m256i r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_si256((const __m256i*)(rows + i * stride + q0 * 4));
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int g = 0; g < 8; g += 4) {
    u[g] = _mm256_unpacklo_epi64(t[g], t[g + 2]);
    u[g + 1] = _mm256_unpackhi_epi64(t[g], t[g + 2]);
    u[g + 2] = _mm256_unpacklo_epi64(t[g + 1], t[g + 3]);
    u[g + 3] = _mm256_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  for (int i = 0; i < 4; ++i) {  // u[i] holds quads i and i + 4 of rows 0-3, u[i + 4] rows 4-7
    if (size_t(i) < nq)
      _mm256_storeu_si256((__m256i*)(blk + (q0 + i) * 64), _mm256_permute2x128_si256(u[i], u[i + 4], 0x20));
    if (size_t(i) + 4 < nq)
      _mm256_storeu_si256((__m256i*)(blk + (q0 + i + 4) * 64), _mm256_permute2x128_si256(u[i], u[i + 4], 0x31));
  }
}

template <bool U8>
Q8GemmForm scan_pack16(size_t n, size_t k, const uint8_t* w, size_t ldw, const int32_t* w_zp,
                       int8_t* out, int32_t* sums) {
  const size_t kq = (k + 3) / 4, stride = (k + 31) / 32 * 32;  // buffer rows: whole 8-quad groups
  // No std:: containers in -mavx2 files (their inline instantiations could be shared with the
  // generic path): a plain array, freed below; nothing in between throws.
  uint8_t* const buf = new uint8_t[16 * stride];
  int16_t lo = 0, hi = 0, pos = 0, neg = 0;
  for (size_t i0 = 0; i0 < n; i0 += 16) {
    const size_t nb = n - i0 < 16 ? n - i0 : 16;
    for (size_t i = 0; i < nb; ++i) {
      ScanStats st{_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                   _mm256_setzero_si256(), _mm256_setzero_si256()};
      scan_row32<U8>(w + (i0 + i) * ldw, k, w_zp[i0 + i], buf + i * stride, st);
      lo = hmin16(st.lo) < lo ? hmin16(st.lo) : lo;
      hi = hmax16(st.hi) > hi ? hmax16(st.hi) : hi;
      pos = hmax16(st.pos) > pos ? hmax16(st.pos) : pos;
      neg = hmin16(st.neg) < neg ? hmin16(st.neg) : neg;
      if (sums) {
        const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(st.sum),
                                         _mm256_extracti128_si256(st.sum, 1));
        const __m128i s2 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        sums[i0 + i] = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xB1)));
      }
    }
    if (nb < 16) std::memset(buf + nb * stride, 0, (16 - nb) * stride);  // pad columns
    int8_t* blk = out + i0 * kq * 4;
    for (size_t q0 = 0; q0 < kq; q0 += 8) {
      const size_t nq = kq - q0 < 8 ? kq - q0 : 8;
      transpose8(buf, stride, q0, nq, blk);
      transpose8(buf + 8 * stride, stride, q0, nq, blk + 32);
    }
  }
  delete[] buf;
  if (lo < -128 || hi > 127) return Q8GemmForm::int16;
  if (pos <= 128 && neg >= -128) return Q8GemmForm::pair_u8;  // (a w' of −128 included)
  return lo < -127 ? Q8GemmForm::int16 : Q8GemmForm::sign_s8;
}

}  // namespace

void q8_gemm_x8_gather_taps__avx2(const uint8_t* src, size_t pix, size_t step, size_t segs,
                                  size_t rows, const uint8_t* masks, uint8_t* dst,
                                  size_t dst_stride) {
  if (segs == 3) return gather_rows_n<3>(src, pix, step, segs, rows, masks, dst, dst_stride);
  gather_rows_n<0>(src, pix, step, segs, rows, masks, dst, dst_stride);
}

Q8GemmForm q8_gemm_x8_scan_pack__avx2(size_t n, size_t k, const void* w, bool w_is_u8, size_t ldw,
                                      const int32_t* w_zp, size_t nr, int8_t* out, int32_t* sums) {
  if (nr != NR || !out) return q8_gemm_x8_scan_pack(n, k, w, w_is_u8, ldw, w_zp, nr, out, sums);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  return w_is_u8 ? scan_pack16<true>(n, k, wb, ldw, w_zp, out, sums)
                 : scan_pack16<false>(n, k, wb, ldw, w_zp, out, sums);
}

#define EDGERT_X8_ROW(F, In) {gemm_4x16<F, In, uint8_t>, gemm_4x16<F, In, int8_t>, \
                              gemm_4x16<F, In, float>}
const Q8GemmX8UKernel q8_gemm_x8_minmax_fp32_ukernel_4x16c4__avx2 = {
    "q8_gemm_x8_minmax_fp32_ukernel_4x16c4__avx2", MR, NR,
    {{EDGERT_X8_ROW(0, uint8_t), EDGERT_X8_ROW(0, int8_t)},
     {EDGERT_X8_ROW(1, uint8_t), EDGERT_X8_ROW(1, int8_t)}},
    prepare_sign, q8_gemm_x8_scan_pack__avx2, false, {}, permute_rows, gpermute_rows,
    q8_gemm_x8_gather_taps__avx2, 24 << 10, false,
    {{gemm_4x16_off<uint8_t, uint8_t>, gemm_4x16_off<uint8_t, int8_t>,
      gemm_4x16_off<uint8_t, float>},
     {gemm_4x16_off<int8_t, uint8_t>, gemm_4x16_off<int8_t, int8_t>,
      gemm_4x16_off<int8_t, float>}}};
#undef EDGERT_X8_ROW

}  // namespace edgert
