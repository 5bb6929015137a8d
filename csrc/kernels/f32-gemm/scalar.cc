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
constexpr size_t kBlockRows = 64;  // M rows of A kept hot while sweeping panels
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
void f32_gemm_minmax_ukernel_4x16__scalar(size_t mr, size_t nc, size_t k, const float* a,
                                          size_t lda, const float* panel, float* c, size_t ldc,
                                          float lo, float hi) {
  // Rows past mr alias row 0: computed and discarded, so the loop body has no branches.
  const float* ar[MR];
  for (size_t i = 0; i < MR; ++i) ar[i] = a + (i < mr ? i : 0) * lda;
  float acc[MR][NR] = {};
  const float* w = panel + NR;
  for (size_t p = 0; p < k; ++p, w += NR) {
#pragma GCC unroll 4
    for (size_t i = 0; i < MR; ++i) {
      const float av = ar[i][p];
#pragma GCC unroll 16
      for (size_t j = 0; j < NR; ++j) acc[i][j] += av * w[j];
    }
  }
  for (size_t i = 0; i < mr; ++i) {
    float* ci = c + i * ldc;
    for (size_t j = 0; j < nc; ++j) ci[j] = std::min(std::max(acc[i][j] + panel[j], lo), hi);
  }
}

void f32_gemm_minmax_rows(size_t m0, size_t m1, size_t p0, size_t p1, size_t n, size_t k,
                          const float* a, size_t lda, const float* packed, float* c, size_t ldc,
                          float lo, float hi) {
  const size_t panel_size = (k + 1) * NR;
  for (size_t b0 = m0; b0 < m1; b0 += kBlockRows) {
    const size_t b1 = std::min(m1, b0 + kBlockRows);
    for (size_t p = p0; p < p1; ++p) {
      const size_t nc = std::min(NR, n - p * NR);
      const float* panel = packed + p * panel_size;
      for (size_t i = b0; i < b1; i += MR) {
        f32_gemm_minmax_ukernel_4x16__scalar(std::min(MR, b1 - i), nc, k, a + i * lda, lda, panel,
                                             c + i * ldc + p * NR, ldc, lo, hi);
      }
    }
  }
}

}  // namespace edgert
