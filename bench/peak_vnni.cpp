// The per-core int8 ceiling of the avx512vnni ISA, what its kernel efficiencies are quoted against
// (../shared/tools/peak.cpp measures the AVX2 vpmaddubsw ceiling the same way).
// Build and run:  g++ -O2 -mavx512f -mavx512bw -mavx512vl -mavx512vnni peak_vnni.cpp && ./a.out
// Twelve independent vpdpbusd chains: a throughput bound at two vpdpbusd a cycle up to six cycles
// of latency. Eight were not enough on a Zen 5, which issues two zmm vpdpbusd a cycle (8 chains:
// 430 G MAC/s, 12: 470).
// In asm: with intrinsics GCC 12 copies each accumulator through another register per vpdpbusd
// once there are more than eight of them, and that copy traffic, not vpdpbusd, set the rate.
#include <chrono>
#include <cstdio>

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

#define EDGERT_MAC(B, C) "vpdpbusd %%zmm" B ", %%zmm20, %%zmm" C "\n\t"

int main() {
  const long iters = 50000000;
  long n = iters;
  int check[16];
  const double t = now();
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm20, %%zmm20, %%zmm20\n\t"  // u8 operand: all ones
      "vpxord %%xmm21, %%xmm21, %%xmm21\n\t"
      "vpsubb %%zmm20, %%zmm21, %%zmm21\n\t"             // s8 operands 1, 2, 3, 4
      "vpaddb %%zmm21, %%zmm21, %%zmm22\n\t"
      "vpaddb %%zmm21, %%zmm22, %%zmm23\n\t"
      "vpaddb %%zmm22, %%zmm22, %%zmm24\n\t"
      "vpxord %%xmm0, %%xmm0, %%xmm0\n\t"
      "vmovdqa64 %%zmm0, %%zmm1\n\t" "vmovdqa64 %%zmm0, %%zmm2\n\t" "vmovdqa64 %%zmm0, %%zmm3\n\t"
      "vmovdqa64 %%zmm0, %%zmm4\n\t" "vmovdqa64 %%zmm0, %%zmm5\n\t" "vmovdqa64 %%zmm0, %%zmm6\n\t"
      "vmovdqa64 %%zmm0, %%zmm7\n\t" "vmovdqa64 %%zmm0, %%zmm8\n\t" "vmovdqa64 %%zmm0, %%zmm9\n\t"
      "vmovdqa64 %%zmm0, %%zmm10\n\t" "vmovdqa64 %%zmm0, %%zmm11\n\t"
      "1:\n\t"
      EDGERT_MAC("21", "0") EDGERT_MAC("22", "1") EDGERT_MAC("23", "2") EDGERT_MAC("24", "3")
      EDGERT_MAC("21", "4") EDGERT_MAC("22", "5") EDGERT_MAC("23", "6") EDGERT_MAC("24", "7")
      EDGERT_MAC("21", "8") EDGERT_MAC("22", "9") EDGERT_MAC("23", "10") EDGERT_MAC("24", "11")
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vpaddd %%zmm1, %%zmm0, %%zmm0\n\t" "vpaddd %%zmm3, %%zmm2, %%zmm2\n\t"
      "vpaddd %%zmm5, %%zmm4, %%zmm4\n\t" "vpaddd %%zmm7, %%zmm6, %%zmm6\n\t"
      "vpaddd %%zmm9, %%zmm8, %%zmm8\n\t" "vpaddd %%zmm11, %%zmm10, %%zmm10\n\t"
      "vpaddd %%zmm2, %%zmm0, %%zmm0\n\t" "vpaddd %%zmm6, %%zmm4, %%zmm4\n\t"
      "vpaddd %%zmm10, %%zmm8, %%zmm8\n\t" "vpaddd %%zmm4, %%zmm0, %%zmm0\n\t"
      "vpaddd %%zmm8, %%zmm0, %%zmm0\n\t"
      "vmovdqu32 %%zmm0, %[check]\n\t"
      : [n] "+r"(n), [check] "=m"(check)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "cc");
  const double s = now() - t;
  // Each lane: 3 chains per weight value w in 1..4, each iters·4·255·w (wraps like the kernels).
  std::printf("u8*s8 vpdpbusd zmm        : %6.1f G MAC/s (checksum %d)\n",
              iters * 12.0 * 64 / s / 1e9, check[0]);
}
