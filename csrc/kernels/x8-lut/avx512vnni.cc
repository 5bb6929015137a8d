// x8-lut for AVX-512: see x8-lut.h. Compiled with the avx512vnni ISA's flags; the VBMI
// instructions are enabled for one function only, called only where the CPU has them.
#include <immintrin.h>

#include <atomic>

#include "isa.h"
#include "kernels/x8-lut/x8-lut.h"

namespace edgert {

namespace {

__attribute__((target("avx512vbmi"))) void lut_rows_vbmi(size_t rows, size_t n,
                                                        const uint8_t* x, size_t x_stride,
                                                        const uint8_t* table, uint8_t* y,
                                                        size_t y_stride) {
  const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
  const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
  for (size_t r = 0; r < rows; ++r, x += x_stride, y += y_stride) {
    for (size_t i = 0; i < n; i += 64) {
      const __mmask64 m = n - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (n - i)) - 1;
      const __m512i v = _mm512_maskz_loadu_epi8(m, x + i);
      // vpermi2b indexes 128 bytes by the low 7 bits; bit 7 picks the upper half's result.
      const __m512i lo = _mm512_permutex2var_epi8(t0, v, t1);
      const __m512i hi = _mm512_permutex2var_epi8(t2, v, t3);
      _mm512_mask_storeu_epi8(y + i, m, _mm512_mask_mov_epi8(lo, _mm512_movepi8_mask(v), hi));
    }
  }
}

// Whether the CPU has VBMI, asked once (a constant-initialized cache: no static initializer, no
// guard in this ISA file; CPUID under a hypervisor costs a VM exit).
std::atomic<int> g_vbmi{-1};

bool has_vbmi() {
  int vbmi = g_vbmi.load(std::memory_order_relaxed);
  if (vbmi < 0) g_vbmi.store(vbmi = cpu_has_avx512vbmi(), std::memory_order_relaxed);
  return vbmi != 0;
}

void lut_rows_avx512(size_t rows, size_t n, const uint8_t* x, size_t x_stride,
                     const uint8_t* table, uint8_t* y, size_t y_stride) {
  (has_vbmi() ? lut_rows_vbmi : x8_lut__avx2.rows)(rows, n, x, x_stride, table, y, y_stride);
}

void lut_avx512(size_t n, const uint8_t* x, const uint8_t* table, uint8_t* y) {
  if (has_vbmi()) return lut_rows_vbmi(1, n, x, 0, table, y, 0);
  x8_lut__avx2.fn(n, x, table, y);
}

}  // namespace

const X8LutUKernel x8_lut__avx512vnni = {"x8_lut__avx512vnni", lut_avx512, lut_rows_avx512};

}  // namespace edgert
