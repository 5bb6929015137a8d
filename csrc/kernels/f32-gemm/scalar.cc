#include "kernels/f32-gemm/f32-gemm.h"

#include <algorithm>
#include <cstring>

// GCC -O3 vectorizes the k loop of the tile (across A's contiguous k), which shuffles every
// iteration and runs 3x slower than vectorizing across the NR lanes; keep only the latter.
#if defined(__GNUC__) && !defined(__clang__)
#define EDGERT_NO_LOOP_VECTORIZE __attribute__((optimize("no-tree-loop-vectorize")))
#else
#define EDGERT_NO_LOOP_VECTORIZE
#endif

namespace edgert {

namespace {
constexpr size_t MR = kF32GemmMR;
constexpr size_t NR = kF32GemmNR;
constexpr size_t kBlockRows = 64;  // M rows of A kept in L2 while sweeping panels
constexpr size_t kBlockK = 256;    // panel rows kept in L1 (256 * NR floats = 16 KB)
}  // namespace

size_t f32_gemm_packed_size(size_t n, size_t k) { return (n + NR - 1) / NR * (k + 1) * NR; }

void f32_gemm_pack_nk(size_t n, size_t k, const float* w, size_t ldw, const float* bias,
                      float* packed) {
  for (size_t n0 = 0; n0 < n; n0 += NR) {
    const size_t nc = std::min(NR, n - n0);
    std::memset(packed, 0, (k + 1) * NR * sizeof(float));
    for (size_t j = 0; j < nc; ++j) {
      packed[j] = bias ? bias[n0 + j] : 0.0f;
      const float* row = w + (n0 + j) * ldw;
      for (size_t p = 0; p < k; ++p) packed[NR + p * NR + j] = row[p];
    }
    packed += (k + 1) * NR;
  }
}

void f32_gemm_pack_kn(size_t n, size_t k, const float* b, size_t ldb, float* packed) {
  for (size_t n0 = 0; n0 < n; n0 += NR) {
    const size_t nc = std::min(NR, n - n0);
    std::memset(packed, 0, (k + 1) * NR * sizeof(float));
    for (size_t p = 0; p < k; ++p) std::memcpy(packed + NR + p * NR, b + p * ldb + n0, nc * 4);
    packed += (k + 1) * NR;
  }
}

EDGERT_NO_LOOP_VECTORIZE
void f32_gemm_minmax_ukernel_4x16__scalar(size_t mr, size_t nc, size_t kc, const float* a,
                                          size_t lda, const float* w, float* c, size_t ldc,
                                          bool accumulate, const float* bias, float lo,
                                          float hi) {
  // Rows past mr alias row 0: computed and discarded, so the loop body has no branches.
  const float* ar[MR];
  for (size_t i = 0; i < MR; ++i) ar[i] = a + (i < mr ? i : 0) * lda;
  // The k loop must see acc indexed by constants only, or GCC keeps all of it in memory; the
  // partial sums therefore come in through a staging copy, unconditionally.
  float start[MR][NR] = {};
  if (accumulate) {
    for (size_t i = 0; i < mr; ++i)
      for (size_t j = 0; j < nc; ++j) start[i][j] = c[i * ldc + j];
  }
  float acc[MR][NR];
#pragma GCC unroll 4
  for (size_t i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (size_t j = 0; j < NR; ++j) acc[i][j] = start[i][j];
  for (size_t p = 0; p < kc; ++p, w += NR) {
#pragma GCC unroll 4
    for (size_t i = 0; i < MR; ++i) {
      const float av = ar[i][p];
#pragma GCC unroll 16
      for (size_t j = 0; j < NR; ++j) acc[i][j] += av * w[j];
    }
  }
  for (size_t i = 0; i < mr; ++i) {
    float* ci = c + i * ldc;
    if (bias) {
      for (size_t j = 0; j < nc; ++j) ci[j] = std::min(std::max(acc[i][j] + bias[j], lo), hi);
    } else {
      for (size_t j = 0; j < nc; ++j) ci[j] = acc[i][j];
    }
  }
}

void f32_gemm_minmax_rows(size_t m0, size_t m1, size_t p0, size_t p1, size_t n, size_t k,
                          const float* a, size_t lda, const float* packed, float* c, size_t ldc,
                          float lo, float hi) {
  const size_t panel_size = (k + 1) * NR;
  for (size_t b0 = m0; b0 < m1; b0 += kBlockRows) {
    const size_t b1 = std::min(m1, b0 + kBlockRows);
    // k == 0 still needs one (empty) block to write bias.
    for (size_t k0 = 0; k0 < k || k0 == 0; k0 += kBlockK) {
      const size_t kc = std::min(kBlockK, k - k0);
      const bool last = k0 + kc >= k;
      for (size_t p = p0; p < p1; ++p) {
        const size_t nc = std::min(NR, n - p * NR);
        const float* panel = packed + p * panel_size;
        for (size_t i = b0; i < b1; i += MR) {
          f32_gemm_minmax_ukernel_4x16__scalar(std::min(MR, b1 - i), nc, kc, a + i * lda + k0,
                                               lda, panel + NR + k0 * NR, c + i * ldc + p * NR,
                                               ldc, k0 != 0, last ? panel : nullptr, lo, hi);
        }
      }
      if (last) break;
    }
  }
}

}  // namespace edgert
