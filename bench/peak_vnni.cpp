// The per-core int8 ceiling of the avx512vnni ISA, what its kernel efficiencies are quoted against
// (../shared/tools/peak.cpp measures the AVX2 vpmaddubsw ceiling the same way).
// Build and run:  g++ -O2 -mavx512f -mavx512bw -mavx512vl -mavx512vnni peak_vnni.cpp && ./a.out
// Eight independent vpdpbusd chains whose u8 operand changes every iteration: a throughput bound.
#include <immintrin.h>

#include <chrono>
#include <cstdio>

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

#define REP8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

int main() {
  const long iters = 50000000;
  const __m512i step = _mm512_set1_epi8(1);
  __m512i a = _mm512_set1_epi8(3);
#define DECL(j) __m512i c##j = _mm512_setzero_si512(), b##j = _mm512_set1_epi8(5 + j);
  REP8(DECL)
  const double t = now();
  for (long i = 0; i < iters; i++) {
#define MAC(j) c##j = _mm512_dpbusd_epi32(c##j, a, b##j);
    REP8(MAC)
    a = _mm512_add_epi8(a, step);
  }
  const double s = now() - t;
  __m512i sum = _mm512_setzero_si512();
#define SUM(j) sum = _mm512_add_epi32(sum, c##j);
  REP8(SUM)
  std::printf("u8*s8 vpdpbusd zmm        : %6.1f G MAC/s (checksum %d)\n",
              iters * 8.0 * 64 / s / 1e9, _mm512_reduce_add_epi32(sum));
}
