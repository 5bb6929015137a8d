// AVX-512 VNNI byte-form q8-gemm, tiles of up to 8x16 (8x32 in the wide table: two blocks), K in
// quads (c4): one vpdpbusd (zmm) per row, quad and 16-column block adds the four u8 × s8
// products of each column into its int32 lane, with no int16 step, so the pair_u8 operand is
// exact for any w' in [−128, 127]. pair_u8 (fn[0]) reads raw rows as the AVX2 kernel does;
// sign_s8 (fn[1]) reads raw rows too (exact_pairs, see q8-gemm-x8.h):
// it multiplies the same operand u = s ^ 0x80 and subtracts 128·Σw' (one more vpdpbusd of 0x80
// bytes per quad and column block), which is the sign_s8 sum its bias was corrected for.
// Reads A rows only below k (the last partial quad by a masked load); tiles of fewer than 4 rows
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

#include "kernels/q8-gemm-x8/avx512-common.h"
#include "kernels/q8-gemm-x8/q8-gemm-x8.h"

namespace edgert {
namespace {

constexpr size_t MR = 8, NR = 16;
// The smallest k that direct rows run in column pairs (gemm_rows_wide).
constexpr size_t kWideMinK = 16;
using avx512::column_corr;
using avx512::OutStage;
using avx512::store_row;
using avx512::store_rows4;

// The store mask of the first n (>= 1) columns of a 16-column block.
inline __mmask16 cols_mask(size_t n) {
  return n >= NR ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
}

inline __m512i bcast_quad(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// The last n < 4 bytes of a row: a masked load never touches the bytes past them (no fault, and
// no byte-store/dword-load round trip through the stack).
inline __m512i bcast_tail(const uint8_t* p, size_t n) {
  return _mm512_broadcastd_epi32(_mm_maskz_loadu_epi8(__mmask16((1u << n) - 1), p));
}

// The K loop of a full 8-row tile over kq >= 1 whole quads: c_r += Σ (quad of row r, as u8, ^ 0x80
// when Flip) · (quad of w), 16 columns. In asm because GCC 12 copies every accumulator through
// another register around each vpdpbusd of an unrolled tile (or spills them); here the eight
// accumulators stay in registers and a quad costs 1 load, 8 broadcasts and 8 vpdpbusd.
#define EDGERT_VNNI_ROW(A, C, T, FLIP)                 \
  "vpbroadcastd (%[" A "],%[off]), %%zmm" T "\n\t"     \
  FLIP                                                  \
  "vpdpbusd %%zmm16, %%zmm" T ", %[" C "]\n\t"
#define EDGERT_VNNI_LOOP(F0, F1, F2, F3, F4, F5, F6, F7)                                    \
  "1:\n\t"                                                                                  \
  "vmovdqu64 (%[w]), %%zmm16\n\t"                                                           \
  "add $64, %[w]\n\t"                                                                       \
  EDGERT_VNNI_ROW("a0", "c0", "17", F0) EDGERT_VNNI_ROW("a1", "c1", "18", F1)               \
  EDGERT_VNNI_ROW("a2", "c2", "19", F2) EDGERT_VNNI_ROW("a3", "c3", "20", F3)               \
  EDGERT_VNNI_ROW("a4", "c4", "21", F4) EDGERT_VNNI_ROW("a5", "c5", "22", F5)               \
  EDGERT_VNNI_ROW("a6", "c6", "23", F6) EDGERT_VNNI_ROW("a7", "c7", "24", F7)               \
  "add $4, %[off]\n\t"                                                                      \
  "cmp %[end], %[off]\n\t"                                                                  \
  "jne 1b\n\t"
#define EDGERT_VNNI_FLIP(T) "vpxord %[fl], %%zmm" T ", %%zmm" T "\n\t"

template <bool Flip>
inline void loop8(size_t kq, const int8_t* w, const uint8_t* const* a, __m512i& c0, __m512i& c1,
                  __m512i& c2, __m512i& c3, __m512i& c4, __m512i& c5, __m512i& c6, __m512i& c7) {
  const __m512i fl = _mm512_set1_epi8(static_cast<char>(0x80));
  size_t off = 0;
#define EDGERT_VNNI_OPERANDS                                                                 \
  : [c0] "+v"(c0), [c1] "+v"(c1), [c2] "+v"(c2), [c3] "+v"(c3), [c4] "+v"(c4), [c5] "+v"(c5), \
    [c6] "+v"(c6), [c7] "+v"(c7), [w] "+r"(w), [off] "+r"(off)                               \
  : [end] "r"(4 * kq), [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [a3] "r"(a[3]),      \
    [a4] "r"(a[4]),                                                                          \
    [a5] "r"(a[5]), [a6] "r"(a[6]), [a7] "r"(a[7]), [fl] "v"(fl)                             \
  : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "cc",   \
    "memory"
  if constexpr (Flip) {
    __asm__(EDGERT_VNNI_LOOP(EDGERT_VNNI_FLIP("17"), EDGERT_VNNI_FLIP("18"), EDGERT_VNNI_FLIP("19"),
                             EDGERT_VNNI_FLIP("20"), EDGERT_VNNI_FLIP("21"), EDGERT_VNNI_FLIP("22"),
                             EDGERT_VNNI_FLIP("23"), EDGERT_VNNI_FLIP("24"))
            EDGERT_VNNI_OPERANDS);
  } else {
    __asm__(EDGERT_VNNI_LOOP("", "", "", "", "", "", "", "") EDGERT_VNNI_OPERANDS);
  }
#undef EDGERT_VNNI_OPERANDS
}

// loop8 for the four rows of half a tile (gemm_rows8_halves).
#define EDGERT_VNNI_LOOP4(F0, F1, F2, F3)                                                    \
  "1:\n\t"                                                                                  \
  "vmovdqu64 (%[w]), %%zmm16\n\t"                                                           \
  "add $64, %[w]\n\t"                                                                       \
  EDGERT_VNNI_ROW("a0", "c0", "17", F0) EDGERT_VNNI_ROW("a1", "c1", "18", F1)               \
  EDGERT_VNNI_ROW("a2", "c2", "19", F2) EDGERT_VNNI_ROW("a3", "c3", "20", F3)               \
  "add $4, %[off]\n\t"                                                                      \
  "cmp %[end], %[off]\n\t"                                                                  \
  "jne 1b\n\t"

template <bool Flip>
inline void loop4(size_t kq, const int8_t* w, const uint8_t* const* a, __m512i& c0, __m512i& c1,
                  __m512i& c2, __m512i& c3) {
  size_t off = 0;
#define EDGERT_VNNI_OPERANDS(...)                                                            \
  : [c0] "+v"(c0), [c1] "+v"(c1), [c2] "+v"(c2), [c3] "+v"(c3), [w] "+r"(w), [off] "+r"(off) \
  : [end] "r"(4 * kq), [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]),                      \
    [a3] "r"(a[3]) __VA_ARGS__                                                               \
  : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "cc", "memory"
  if constexpr (Flip) {
    const __m512i fl = _mm512_set1_epi8(static_cast<char>(0x80));
    __asm__(EDGERT_VNNI_LOOP4(EDGERT_VNNI_FLIP("17"), EDGERT_VNNI_FLIP("18"),
                              EDGERT_VNNI_FLIP("19"), EDGERT_VNNI_FLIP("20"))
            EDGERT_VNNI_OPERANDS(, [fl] "v"(fl)));
  } else {
    __asm__(EDGERT_VNNI_LOOP4("", "", "", "") EDGERT_VNNI_OPERANDS());
  }
#undef EDGERT_VNNI_OPERANDS
}
#undef EDGERT_VNNI_LOOP4

// Accumulators of an 8-row tile over two column blocks: c (first block), d (second).
struct Acc16 {
  __m512i c0, c1, c2, c3, c4, c5, c6, c7, d0, d1, d2, d3, d4, d5, d6, d7;
};

// The sums of a full 8-row tile over two adjacent 16-column blocks (w and w + ws bytes), all
// taps: rows holds taps groups of 8 row pointers, each tap cq >= 1 quads of its rows against the
// next cq quads of weights. 16 accumulators, a quad costs 2 loads, 8 broadcasts and 16 vpdpbusd.
// A Zen 5 issues two zmm vpdpbusd a cycle and needs more than 8 chains in flight for it (8
// independent chains: 430 G MAC/s, 12: 470); the 8x16 tile's 8 chains ran ResNet-18's 3x3 convs
// at ~80 % of that. The sums start from zero and are the asm's outputs (16 in-out operands
// would count 32, past GCC's limit of 30); the row pointers of a tap go to r8-r15.
#define EDGERT_VNNI_ROW2(A, T, C, D, FLIP)                 \
  "vpbroadcastd (%%" A ",%[off]), %%zmm" T "\n\t" FLIP    \
  "vpdpbusd %%zmm16, %%zmm" T ", %[" C "]\n\t"             \
  "vpdpbusd %%zmm17, %%zmm" T ", %[" D "]\n\t"
#define EDGERT_VNNI_ZERO(C) "vpxord %[" C "], %[" C "], %[" C "]\n\t"
#define EDGERT_VNNI_TILE2(F0, F1, F2, F3, F4, F5, F6, F7)                                    \
  EDGERT_VNNI_ZERO("c0") EDGERT_VNNI_ZERO("c1") EDGERT_VNNI_ZERO("c2") EDGERT_VNNI_ZERO("c3")  \
  EDGERT_VNNI_ZERO("c4") EDGERT_VNNI_ZERO("c5") EDGERT_VNNI_ZERO("c6") EDGERT_VNNI_ZERO("c7")  \
  EDGERT_VNNI_ZERO("d0") EDGERT_VNNI_ZERO("d1") EDGERT_VNNI_ZERO("d2") EDGERT_VNNI_ZERO("d3")  \
  EDGERT_VNNI_ZERO("d4") EDGERT_VNNI_ZERO("d5") EDGERT_VNNI_ZERO("d6") EDGERT_VNNI_ZERO("d7")  \
  "2:\n\t"                                                                                  \
  "mov (%[rows]), %%r8\n\t" "mov 8(%[rows]), %%r9\n\t"                                      \
  "mov 16(%[rows]), %%r10\n\t" "mov 24(%[rows]), %%r11\n\t"                                 \
  "mov 32(%[rows]), %%r12\n\t" "mov 40(%[rows]), %%r13\n\t"                                 \
  "mov 48(%[rows]), %%r14\n\t" "mov 56(%[rows]), %%r15\n\t"                                 \
  "xor %k[off], %k[off]\n\t"                                                                \
  "1:\n\t"                                                                                  \
  "vmovdqu64 (%[w]), %%zmm16\n\t"                                                           \
  "vmovdqu64 (%[w],%[ws]), %%zmm17\n\t"                                                     \
  "add $64, %[w]\n\t"                                                                       \
  EDGERT_VNNI_ROW2("r8", "18", "c0", "d0", F0) EDGERT_VNNI_ROW2("r9", "19", "c1", "d1", F1)   \
  EDGERT_VNNI_ROW2("r10", "20", "c2", "d2", F2) EDGERT_VNNI_ROW2("r11", "21", "c3", "d3", F3) \
  EDGERT_VNNI_ROW2("r12", "22", "c4", "d4", F4) EDGERT_VNNI_ROW2("r13", "23", "c5", "d5", F5) \
  EDGERT_VNNI_ROW2("r14", "24", "c6", "d6", F6) EDGERT_VNNI_ROW2("r15", "25", "c7", "d7", F7) \
  "add $4, %[off]\n\t"                                                                      \
  "cmp %[end], %[off]\n\t"                                                                  \
  "jne 1b\n\t"                                                                              \
  "add $64, %[rows]\n\t"                                                                    \
  "cmp %[rend], %[rows]\n\t"                                                                \
  "jne 2b\n\t"

template <bool Flip>
__attribute__((always_inline))
inline Acc16 sums8x2(const uint8_t* const* rows, size_t taps, size_t cq, const int8_t* w,
                     size_t ws) {
  const __m512i fl = _mm512_set1_epi8(static_cast<char>(0x80));
  const uint8_t* const* rend = rows + 8 * taps;
  const size_t end = 4 * cq;
  size_t off;
  Acc16 x;
#define EDGERT_VNNI_OPERANDS                                                                   \
  : [c0] "=&v"(x.c0), [c1] "=&v"(x.c1), [c2] "=&v"(x.c2), [c3] "=&v"(x.c3), [c4] "=&v"(x.c4),  \
    [c5] "=&v"(x.c5), [c6] "=&v"(x.c6), [c7] "=&v"(x.c7), [d0] "=&v"(x.d0), [d1] "=&v"(x.d1),  \
    [d2] "=&v"(x.d2), [d3] "=&v"(x.d3), [d4] "=&v"(x.d4), [d5] "=&v"(x.d5), [d6] "=&v"(x.d6),  \
    [d7] "=&v"(x.d7), [rows] "+r"(rows), [w] "+r"(w), [off] "=&r"(off)                          \
  : [ws] "r"(ws), [end] "m"(end), [rend] "m"(rend), [fl] "v"(fl)                               \
  : "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "xmm16", "xmm17", "xmm18", "xmm19",  \
    "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "cc", "memory"
  if constexpr (Flip) {
    __asm__(EDGERT_VNNI_TILE2(EDGERT_VNNI_FLIP("18"), EDGERT_VNNI_FLIP("19"),
                              EDGERT_VNNI_FLIP("20"), EDGERT_VNNI_FLIP("21"),
                              EDGERT_VNNI_FLIP("22"), EDGERT_VNNI_FLIP("23"),
                              EDGERT_VNNI_FLIP("24"), EDGERT_VNNI_FLIP("25"))
            EDGERT_VNNI_OPERANDS);
  } else {
    __asm__(EDGERT_VNNI_TILE2("", "", "", "", "", "", "", "") EDGERT_VNNI_OPERANDS);
  }
#undef EDGERT_VNNI_OPERANDS
  return x;
}
#undef EDGERT_VNNI_TILE2
#undef EDGERT_VNNI_ZERO
#undef EDGERT_VNNI_ROW2
#undef EDGERT_VNNI_FLIP
#undef EDGERT_VNNI_LOOP
#undef EDGERT_VNNI_ROW

// The output stage of 1 to 8 rows of one 16-column block (rows >= rn are not stored).
template <class Out>
__attribute__((always_inline)) inline void store8(size_t rn, __m512i c0, __m512i c1, __m512i c2,
                                                 __m512i c3, __m512i c4, __m512i c5, __m512i c6,
                                                 __m512i c7, __m512i corr, const float* scale,
                                                 __mmask16 m, Out* c, size_t c_stride,
                                                 const OutStage& os) {
  auto sub = [&](__m512i acc) { return _mm512_sub_epi32(acc, corr); };
  auto out = [&](__m512i acc, size_t r) {
    if (r < rn) store_row<Out>(sub(acc), scale, m, c + r * c_stride, os);
  };
  if constexpr (sizeof(Out) == 1) {
    if (!os.guard && rn >= 4) {
      store_rows4<Out>(sub(c0), sub(c1), sub(c2), sub(c3), scale, m, c, c_stride, os);
      if (rn == 8) {
        store_rows4<Out>(sub(c4), sub(c5), sub(c6), sub(c7), scale, m, c + 4 * c_stride,
                         c_stride, os);
        return;
      }
      out(c4, 4), out(c5, 5), out(c6, 6);
      return;
    }
  }
  out(c0, 0), out(c1, 1), out(c2, 2), out(c3, 3), out(c4, 4), out(c5, 5), out(c6, 6), out(c7, 7);
}

// Eight accumulators of one 16-column block starting at bias (and row_off), rows >= rn repeating
// row 0's.
__attribute__((always_inline))
inline void init8(size_t rn, const int32_t* bias, size_t bias_stride, const int32_t* row_off,
                  __m512i& c0, __m512i& c1, __m512i& c2, __m512i& c3, __m512i& c4, __m512i& c5,
                  __m512i& c6, __m512i& c7) {
  if (bias_stride == 0) {  // one bias row (every layer without moved weights)
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = _mm512_loadu_si512(bias);
  } else {
    auto b = [&](size_t r) { return _mm512_loadu_si512(bias + (r < rn ? r : 0) * bias_stride); };
    c0 = b(0), c1 = b(1), c2 = b(2), c3 = b(3), c4 = b(4), c5 = b(5), c6 = b(6), c7 = b(7);
  }
  if (row_off) {
    auto o = [&](__m512i v, size_t r) {
      return _mm512_add_epi32(v, _mm512_set1_epi32(row_off[r < rn ? r : 0]));
    };
    c0 = o(c0, 0), c1 = o(c1, 1), c2 = o(c2, 2), c3 = o(c3, 3);
    c4 = o(c4, 4), c5 = o(c5, 5), c6 = o(c6, 6), c7 = o(c7, 7);
  }
}

// c_r += init8's starting value of row r.
__attribute__((always_inline))
inline void add_init8(size_t rn, const int32_t* bias, size_t bias_stride, const int32_t* row_off,
                      __m512i& c0, __m512i& c1, __m512i& c2, __m512i& c3, __m512i& c4,
                      __m512i& c5, __m512i& c6, __m512i& c7) {
  __m512i b0, b1, b2, b3, b4, b5, b6, b7;
  init8(rn, bias, bias_stride, row_off, b0, b1, b2, b3, b4, b5, b6, b7);
  c0 = _mm512_add_epi32(c0, b0), c1 = _mm512_add_epi32(c1, b1);
  c2 = _mm512_add_epi32(c2, b2), c3 = _mm512_add_epi32(c3, b3);
  c4 = _mm512_add_epi32(c4, b4), c5 = _mm512_add_epi32(c5, b5);
  c6 = _mm512_add_epi32(c6, b6), c7 = _mm512_add_epi32(c7, b7);
}

// The last k % 4 bytes of eight rows against one block's last weight quad (the packed weights of
// the missing bytes are zero: the pad value does not matter).
template <bool Flip>
__attribute__((always_inline))
inline void tail8(const uint8_t* const* a, size_t at, size_t rem, const int8_t* wq, __m512i& c0,
                  __m512i& c1, __m512i& c2, __m512i& c3, __m512i& c4, __m512i& c5, __m512i& c6,
                  __m512i& c7) {
  const __m512i w = _mm512_loadu_si512(wq);
  const __m512i f = _mm512_set1_epi8(static_cast<char>(Flip ? 0x80 : 0));
  auto t = [&](__m512i acc, size_t r) {
    return _mm512_dpbusd_epi32(acc, _mm512_xor_si512(bcast_tail(a[r] + at, rem), f), w);
  };
  c0 = t(c0, 0), c1 = t(c1, 1), c2 = t(c2, 2), c3 = t(c3, 3);
  c4 = t(c4, 4), c5 = t(c5, 5), c6 = t(c6, 6), c7 = t(c7, 7);
}

// 5 to 8 rows of one 16-column block (a: eight row pointers, the missing rows repeating row 0;
// they are computed, not stored), each in its own named accumulator. Form 0: acc = bias + Σ u·w';
// form 1: the same minus 128·Σw'.
// u = x ^ 0x80 when Flip.
template <int Form, bool Flip, class Out>
__attribute__((always_inline))
inline void block8(size_t rn, const uint8_t* const* a, size_t k, const int8_t* wb,
                   const int32_t* bias, size_t bias_stride, const int32_t* row_off,
                   const float* scale, __mmask16 m, Out* c, size_t c_stride, const OutStage& os) {
  __m512i c0, c1, c2, c3, c4, c5, c6, c7;
  init8(rn, bias, bias_stride, row_off, c0, c1, c2, c3, c4, c5, c6, c7);
  const size_t kfull = k / 4, rem = k % 4;
  if (kfull) loop8<Flip>(kfull, wb, a, c0, c1, c2, c3, c4, c5, c6, c7);
  if (rem) tail8<Flip>(a, 4 * kfull, rem, wb + kfull * 4 * NR, c0, c1, c2, c3, c4, c5, c6, c7);
  __m512i corr = _mm512_setzero_si512();
  if constexpr (Form == 1) corr = column_corr(wb, (k + 3) / 4);
  store8<Out>(rn, c0, c1, c2, c3, c4, c5, c6, c7, corr, scale, m, c, c_stride, os);
}

// 5 to 8 rows of two adjacent 16-column blocks (the second one full, or partial with mask m1):
// block8 with the 16 accumulators of sums8x2.
template <int Form, bool Flip, class Out>
__attribute__((always_inline))
inline void block8x2(size_t rn, const uint8_t* const* a, size_t k, const int8_t* wb,
                     const int32_t* bias, size_t bias_stride, const int32_t* row_off,
                     const float* scale, __mmask16 m1, Out* c, size_t c_stride,
                     const OutStage& os) {
  const size_t kq = (k + 3) / 4, ws = kq * 4 * NR;
  Acc16 x = sums8x2<Flip>(a, 1, k / 4, wb, ws);  // k >= 4 (the caller's)
  add_init8(rn, bias, bias_stride, row_off, x.c0, x.c1, x.c2, x.c3, x.c4, x.c5, x.c6, x.c7);
  add_init8(rn, bias + NR, bias_stride, row_off, x.d0, x.d1, x.d2, x.d3, x.d4, x.d5, x.d6, x.d7);
  const size_t kfull = k / 4, rem = k % 4;
  if (rem) {
    tail8<Flip>(a, 4 * kfull, rem, wb + kfull * 4 * NR, x.c0, x.c1, x.c2, x.c3, x.c4, x.c5,
                x.c6, x.c7);
    tail8<Flip>(a, 4 * kfull, rem, wb + ws + kfull * 4 * NR, x.d0, x.d1, x.d2, x.d3, x.d4, x.d5,
                x.d6, x.d7);
  }
  __m512i corr0 = _mm512_setzero_si512(), corr1 = corr0;
  if constexpr (Form == 1) corr0 = column_corr(wb, kq), corr1 = column_corr(wb + ws, kq);
  store8<Out>(rn, x.c0, x.c1, x.c2, x.c3, x.c4, x.c5, x.c6, x.c7, corr0, scale, 0xFFFF, c,
              c_stride, os);
  store8<Out>(rn, x.d0, x.d1, x.d2, x.d3, x.d4, x.d5, x.d6, x.d7, corr1, scale + NR, m1, c + NR,
              c_stride, os);
}

// R <= 4 rows of one 16-column block; U accumulators per row split the quads (vpdpbusd's latency,
// not its throughput, would bound a single chain per row). Forms as in block8.
template <int Form, bool Flip, size_t R, size_t U, class Out>
inline void block(const uint8_t* const* rows, size_t k, const int8_t* wb, const int32_t* bias,
                  size_t bias_stride, const int32_t* row_off, const float* scale, __mmask16 m,
                  Out* c, size_t c_stride, const OutStage& os) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i acc[R][U];
  for (size_t r = 0; r < R; ++r) {
    acc[r][0] = _mm512_loadu_si512(bias + r * bias_stride);
    if (row_off) acc[r][0] = _mm512_add_epi32(acc[r][0], _mm512_set1_epi32(row_off[r]));
    for (size_t u = 1; u < U; ++u) acc[r][u] = _mm512_setzero_si512();
  }
  const size_t kfull = k / 4, rem = k % 4;
  size_t q = 0;
  for (; q + U <= kfull; q += U)
    for (size_t u = 0; u < U; ++u) {
      const __m512i w = _mm512_loadu_si512(wb + (q + u) * 4 * NR);
      for (size_t r = 0; r < R; ++r) {
        __m512i a = bcast_quad(rows[r] + 4 * (q + u));
        if (Flip) a = _mm512_xor_si512(a, flip);
        acc[r][u] = _mm512_dpbusd_epi32(acc[r][u], a, w);
      }
    }
  for (; q < kfull; ++q) {
    const __m512i w = _mm512_loadu_si512(wb + q * 4 * NR);
    for (size_t r = 0; r < R; ++r) {
      __m512i a = bcast_quad(rows[r] + 4 * q);
      if (Flip) a = _mm512_xor_si512(a, flip);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a, w);
    }
  }
  if (rem) {
    const __m512i w = _mm512_loadu_si512(wb + kfull * 4 * NR);
    for (size_t r = 0; r < R; ++r) {
      __m512i a = bcast_tail(rows[r] + 4 * kfull, rem);
      if (Flip) a = _mm512_xor_si512(a, flip);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a, w);
    }
  }
  __m512i corr = _mm512_setzero_si512();
  if constexpr (Form == 1) corr = column_corr(wb, (k + 3) / 4);
  __m512i sums[R];
  for (size_t r = 0; r < R; ++r) {
    __m512i s = acc[r][0];
    for (size_t u = 1; u < U; ++u) s = _mm512_add_epi32(s, acc[r][u]);
    sums[r] = _mm512_sub_epi32(s, corr);
  }
  if constexpr (R == 4 && sizeof(Out) == 1) {
    if (!os.guard)
      return store_rows4<Out>(sums[0], sums[1], sums[2], sums[3], scale, m, c, c_stride, os);
  }
  for (size_t r = 0; r < R; ++r) store_row<Out>(sums[r], scale, m, c + r * c_stride, os);
}

template <int Form, bool Flip, size_t R, class Out>
__attribute__((always_inline))
inline void gemm_rows(size_t rn, size_t nc, size_t k, const uint8_t* const* rows, const int8_t* w,
               const int32_t* bias, size_t bias_stride, const int32_t* row_off,
               const float* scale, Out* c, size_t c_stride, const OutStage& os) {
  constexpr size_t U = R >= 4 ? 1 : R >= 2 ? 2 : 4;
  const size_t kq = (k + 3) / 4;
  const uint8_t* a[MR];  // block8's rows: missing ones repeat row 0 (computed, not stored)
  if constexpr (R > 4)
    for (size_t r = 0; r < MR; ++r) a[r] = rows[r < rn ? r : 0];
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    const __mmask16 m = cols_mask(nc - n0);
    const int8_t* wb = w + n0 / NR * kq * 4 * NR;
    if constexpr (R > 4) {
      block8<Form, Flip, Out>(rn, a, k, wb, bias + n0, bias_stride, row_off, scale + n0, m,
                              c + n0, c_stride, os);
    } else {
      block<Form, Flip, R, U, Out>(rows, k, wb, bias + n0, bias_stride, row_off, scale + n0, m,
                                   c + n0, c_stride, os);
    }
  }
}

// Direct rows of k <= kHalvesMaxK in the common case (whole groups of 8 rows, one bias row, no
// row offsets, form 0, byte output without the guard, whole quads) run in half tiles,
// software-pipelined over the call's (row group, column block) pairs: the K loop of a pair's
// rows 0-3, the output stage of the previous pair's rows 4-7, the K loop of rows 4-7, the
// output stage of rows 0-3. At small k the output stage costs as much as the multiplies, and
// with each tile's output stage behind the whole next K loop the two hardly overlapped; here an
// output stage's inputs are ready when it is issued, beside a K loop's independent vpdpbusd.
// On a Zen 4 (kernel alone, both builds at once on the two cores, then swapped): 12544x32x16
// 48 -> 40 us, 12544x16x96 178 -> 150, 3136x24x144 83 -> 72, 784x32x192 33 -> 29, 3136x96x24
// 52 -> 48; MobileNetV2 1.0 (au8, one thread) 3.7 % faster. No gain at k >= 144 (49x160x960
// 2 % slower in halves). Within one call's column blocks only (8-row pairs of one row group):
// about half that gain. A version for every case (partial groups, row offsets, form 1, the
// guard: more branches in the loop) ran 12544x16x96 no faster than gemm_rows. The 8x16 table
// only: the 8x32 one is for CPUs with two zmm vpdpbusd a cycle, none of which was at hand.
// Clamp false where [qmin, qmax] is the output type's whole range (ReLU6 and plain layers as
// onnxruntime quantizes them), the packs' saturation being the clamp: 12544x16x96 149 -> 137 us,
// MobileNetV2 2 % faster. (The same in the depthwise row kernels ran their 56x56x144 layer 7 %
// slower, not faster.)
constexpr size_t kHalvesMaxK = 96;

// groups (>= 1) whole groups of 8 rows (a, c: the first group's), every column block of each.
template <bool Flip, class Out, bool Clamp>
__attribute__((noinline)) void gemm_rows8_halves(size_t groups, size_t nc, size_t k,
                                                 const uint8_t* const* a, const int8_t* w,
                                                 const int32_t* bias, const float* scale, Out* c,
                                                 size_t c_stride, const OutStage& os) {
  const size_t kq = k / 4;
  __m512i b0, b1, b2, b3;  // rows 4-7 of the previous (group, block)
  const float* b_scale = nullptr;
  __mmask16 b_mask = 0;
  Out* b_c = nullptr;
  for (size_t g = 0; g < groups; ++g, a += MR, c += MR * c_stride) {
    for (size_t n0 = 0; n0 < nc; n0 += NR) {
      const int8_t* wb = w + n0 / NR * kq * 4 * NR;
      const __mmask16 m = cols_mask(nc - n0);
      __m512i c0 = _mm512_loadu_si512(bias + n0), c1 = c0, c2 = c0, c3 = c0;
      loop4<Flip>(kq, wb, a, c0, c1, c2, c3);
      if (b_c) store_rows4<Out, Clamp>(b0, b1, b2, b3, b_scale, b_mask, b_c, c_stride, os);
      b0 = _mm512_loadu_si512(bias + n0), b1 = b0, b2 = b0, b3 = b0;
      loop4<Flip>(kq, wb, a + 4, b0, b1, b2, b3);
      store_rows4<Out, Clamp>(c0, c1, c2, c3, scale + n0, m, c + n0, c_stride, os);
      b_scale = scale + n0, b_mask = m, b_c = c + 4 * c_stride + n0;
    }
  }
  store_rows4<Out, Clamp>(b0, b1, b2, b3, b_scale, b_mask, b_c, c_stride, os);
}

// 5 to 8 rows of nc > NR columns: pairs of blocks (block8x2), an odd last block by block8. Apart
// from gemm_rows, which it would slow down (its output-stage constants spilled for the pair's
// 16 accumulators: 12544x32x16 ran 38 -> 55 us with both in one function).
template <int Form, bool Flip, class Out>
__attribute__((noinline)) void gemm_rows_wide(size_t rn, size_t nc, size_t k,
                                              const uint8_t* const* rows, const int8_t* w,
                                              const int32_t* bias, size_t bias_stride,
                                              const int32_t* row_off, const float* scale, Out* c,
                                              size_t c_stride, const OutStage& os) {
  const size_t kq = (k + 3) / 4;
  const uint8_t* a[MR];  // missing rows repeat row 0 (computed, not stored)
  for (size_t r = 0; r < MR; ++r) a[r] = rows[r < rn ? r : 0];
  size_t n0 = 0;
  for (; n0 + NR < nc; n0 += 2 * NR)
    block8x2<Form, Flip, Out>(rn, a, k, w + n0 / NR * kq * 4 * NR, bias + n0, bias_stride,
                              row_off, scale + n0, cols_mask(nc - n0 - NR), c + n0, c_stride, os);
  if (n0 < nc)
    block8<Form, Flip, Out>(rn, a, k, w + n0 / NR * kq * 4 * NR, bias + n0, bias_stride, row_off,
                            scale + n0, cols_mask(nc - n0), c + n0, c_stride, os);
}

// Both entry points: row_off nullptr, or each row's offset to its accumulators. Whole groups of
// 8 rows in the common case of small k: gemm_rows8_halves; Wide: 5 to 8 rows of more than 16
// columns and k >= kWideMinK run in column pairs (gemm_rows_wide).
template <bool Wide, int Form, class In, class Out>
void gemm_impl(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
               const int32_t* bias, size_t bias_stride, const int32_t* row_off,
               const float* scale, void* c_out, size_t c_stride, const Q8Requant& rq) {
  // The operand is u8: x for u8 input, x ^ 0x80 for i8 input (both forms).
  constexpr bool kFlip = !std::is_same<In, uint8_t>::value;
  const OutStage os(rq);
  size_t r = 0;
  if constexpr (!Wide && Form == 0 && sizeof(Out) == 1) {
    if (mr >= MR && k != 0 && k <= kHalvesMaxK && k % 4 == 0 && bias_stride == 0 &&
        !row_off && !os.guard) {
      r = mr / MR * MR;
      const uint8_t* const* rows = reinterpret_cast<const uint8_t* const*>(a);
      Out* c = static_cast<Out*>(c_out);
      if (std::is_same<Out, uint8_t>::value ? os.full_u8 : os.full_i8)
        gemm_rows8_halves<kFlip, Out, false>(mr / MR, nc, k, rows, w, bias, scale, c, c_stride, os);
      else
        gemm_rows8_halves<kFlip, Out, true>(mr / MR, nc, k, rows, w, bias, scale, c, c_stride, os);
    }
  }
  for (; r < mr; r += MR) {
    const uint8_t* const* rows = reinterpret_cast<const uint8_t* const*>(a + r);
    const size_t rn = mr - r < MR ? mr - r : MR;
    const int32_t* br = bias + r * bias_stride;
    const int32_t* ro = row_off ? row_off + r : nullptr;
    Out* c = static_cast<Out*>(c_out) + r * c_stride;
    switch (rn) {
#define EDGERT_ROWS(R)                                                                      \
  case R:                                                                                   \
    gemm_rows<Form, kFlip, R, Out>(rn, nc, k, rows, w, br, bias_stride, ro, scale, c,       \
                                   c_stride, os);                                           \
    break;
      EDGERT_ROWS(1) EDGERT_ROWS(2) EDGERT_ROWS(3) EDGERT_ROWS(4)
#undef EDGERT_ROWS
      default:  // 5 to 8
        if (Wide && nc > NR && k >= kWideMinK) {
          gemm_rows_wide<Form, kFlip, Out>(rn, nc, k, rows, w, br, bias_stride, ro, scale, c,
                                           c_stride, os);
          break;
        }
        gemm_rows<Form, kFlip, MR, Out>(rn, nc, k, rows, w, br, bias_stride, ro, scale, c,
                                        c_stride, os);
    }
  }
}

template <bool Wide, int Form, class In, class Out>
void gemm_8x16(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
               const int32_t* bias, size_t bias_stride, const float* scale, void* c_out,
               size_t c_stride, const Q8Requant& rq) {
  gemm_impl<Wide, Form, In, Out>(mr, nc, k, a, w, bias, bias_stride, nullptr, scale, c_out,
                                 c_stride, rq);
}

template <bool Wide, class In, class Out>
void gemm_8x16_off(size_t mr, size_t nc, size_t k, const void* const* a, const int8_t* w,
                   const int32_t* bias, const int32_t* row_off, const float* scale, void* c_out,
                   size_t c_stride, const Q8Requant& rq) {
  gemm_impl<Wide, 0, In, Out>(mr, nc, k, a, w, bias, 0, row_off, scale, c_out, c_stride, rq);
}

// Indirect rows (see Q8GemmX8IndirectFn), one group of at most 8: per 16-column block, the 8-row
// K loop once per tap on that tap's pointers and quads. Rows >= mr repeat whatever pointers the
// caller put there. Blocks in pairs (sums8x2) where two remain, in both tables (nr_wide_indirect
// 32 in both, so the engine's calls have the columns): on a Zen 4 too, one zmm vpdpbusd a cycle,
// a 28x28x128 3x3 conv ran at 219-225 G MAC/s against 182-192 in single blocks.
template <int Form, bool kFlip, class Out>
void igemm_group(size_t mr, size_t nc, size_t taps, size_t cg, const uint8_t* const* rows,
                 const int8_t* w, const int32_t* bias, const float* scale, Out* c,
                 size_t c_stride, const OutStage& os) {
  const size_t cq = cg / 4, kq = taps * cq, ws = kq * 4 * NR;
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    const int8_t* wb = w + n0 / NR * ws;
    Out* cr = c + n0;
    if (nc - n0 > NR) {  // two blocks at once (sums8x2)
      Acc16 x = sums8x2<kFlip>(rows, taps, cq, wb, ws);
      add_init8(MR, bias + n0, 0, nullptr, x.c0, x.c1, x.c2, x.c3, x.c4, x.c5, x.c6, x.c7);
      add_init8(MR, bias + n0 + NR, 0, nullptr, x.d0, x.d1, x.d2, x.d3, x.d4, x.d5, x.d6, x.d7);
      __m512i corr0 = _mm512_setzero_si512(), corr1 = corr0;
      if constexpr (Form == 1) corr0 = column_corr(wb, kq), corr1 = column_corr(wb + ws, kq);
      store8<Out>(mr, x.c0, x.c1, x.c2, x.c3, x.c4, x.c5, x.c6, x.c7, corr0, scale + n0, 0xFFFF,
                  cr, c_stride, os);
      store8<Out>(mr, x.d0, x.d1, x.d2, x.d3, x.d4, x.d5, x.d6, x.d7, corr1, scale + n0 + NR,
                  cols_mask(nc - n0 - NR), cr + NR, c_stride, os);
      n0 += NR;
      continue;
    }
    __m512i c0 = _mm512_loadu_si512(bias + n0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0,
            c6 = c0, c7 = c0;
    for (size_t t = 0; t < taps; ++t)
      loop8<kFlip>(cq, wb + t * cq * 4 * NR, rows + t * MR, c0, c1, c2, c3, c4, c5, c6, c7);
    __m512i corr = _mm512_setzero_si512();
    if constexpr (Form == 1) corr = column_corr(wb, kq);
    store8<Out>(mr, c0, c1, c2, c3, c4, c5, c6, c7, corr, scale + n0, cols_mask(nc - n0), cr,
                c_stride, os);
  }
}

template <int Form, class In, class Out>
void igemm_8x16(size_t mr, size_t nc, size_t taps, size_t cg, const void* const* a,
                const int8_t* w, const int32_t* bias, const float* scale, void* c_out,
                size_t c_stride, const Q8Requant& rq) {
  constexpr bool kFlip = !std::is_same<In, uint8_t>::value;
  const uint8_t* const* rows = reinterpret_cast<const uint8_t* const*>(a);
  Out* c = static_cast<Out*>(c_out);
  const OutStage os(rq);
  for (size_t r0 = 0; r0 < mr; r0 += MR)  // groups of MR rows, MR·taps pointers each
    igemm_group<Form, kFlip, Out>(mr - r0 < MR ? mr - r0 : MR, nc, taps, cg, rows + r0 * taps, w,
                                  bias, scale, c + r0 * c_stride, c_stride, os);
}

}  // namespace

// Direct rows: the 8x16 table runs one 16-column block at a time; the 8x32 one runs blocks in
// pairs where it can (16 accumulators), which pays only where two zmm vpdpbusd issue a cycle
// (vnni_wide_tiles: 8 chains leave half of a Zen 5's VNNI units idle; on a Zen 4, which splits
// each zmm op over its 256-bit units, the pairs ran MobileNetV2 6-9 % slower). Indirect rows run
// in pairs in both.
#define EDGERT_X8_IROW(F, In) {igemm_8x16<F, In, uint8_t>, igemm_8x16<F, In, int8_t>, \
                               igemm_8x16<F, In, float>}
#define EDGERT_X8_ROW(W, F, In) {gemm_8x16<W, F, In, uint8_t>, gemm_8x16<W, F, In, int8_t>, \
                                 gemm_8x16<W, F, In, float>}
#define EDGERT_X8_TABLE(NAME, W)                                                            \
  const Q8GemmX8UKernel NAME = {                                                            \
      #NAME, MR, NR,                                                                        \
      {{EDGERT_X8_ROW(W, 0, uint8_t), EDGERT_X8_ROW(W, 0, int8_t)},                         \
       {EDGERT_X8_ROW(W, 1, uint8_t), EDGERT_X8_ROW(W, 1, int8_t)}},                        \
      nullptr, q8_gemm_x8_scan_pack__avx2, true, /* the AVX2 packing: same layout */        \
      {{EDGERT_X8_IROW(0, uint8_t), EDGERT_X8_IROW(0, int8_t)},                             \
       {EDGERT_X8_IROW(1, uint8_t), EDGERT_X8_IROW(1, int8_t)}},                            \
      nullptr, nullptr, q8_gemm_x8_gather_taps__avx2, 24 << 10, false,                      \
      {{gemm_8x16_off<W, uint8_t, uint8_t>, gemm_8x16_off<W, uint8_t, int8_t>,              \
        gemm_8x16_off<W, uint8_t, float>},                                                  \
       {gemm_8x16_off<W, int8_t, uint8_t>, gemm_8x16_off<W, int8_t, int8_t>,                \
        gemm_8x16_off<W, int8_t, float>}},                                                  \
      W ? 2 * NR : 0, 2 * NR};  /* nr_wide, nr_wide_indirect */
EDGERT_X8_TABLE(q8_gemm_x8_minmax_fp32_ukernel_8x16c4__avx512vnni, false)
EDGERT_X8_TABLE(q8_gemm_x8_minmax_fp32_ukernel_8x32c4__avx512vnni, true)
#undef EDGERT_X8_TABLE
#undef EDGERT_X8_ROW
#undef EDGERT_X8_IROW

}  // namespace edgert
