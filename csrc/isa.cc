#include "isa.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define EDGERT_X86 1
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace edgert {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::amx: return "amx";
    case Isa::neon: return "neon";
  }
  return "?";
}

#ifdef EDGERT_X86
static bool cpu_has_avx2_fma() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12);
  if (!osxsave || !avx || !fma) return false;
  // XGETBV(0): bits 1 and 2 mean the OS saves XMM and YMM state across context switches.
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 6u) != 6u) return false;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  return b & (1u << 5);
}

// AVX-512 F, BW, VL and VNNI (vpdpbusd), with the OS saving opmask, ZMM0-15 upper halves and
// ZMM16-31 (XCR0 bits 5-7) besides XMM/YMM.
static bool cpu_has_avx512vnni() {
  if (!cpu_has_avx2_fma()) return false;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0xE6u) != 0xE6u) return false;
  unsigned a, b, c, d;
  __cpuid_count(7, 0, a, b, c, d);
  const bool f = b & (1u << 16), bw = b & (1u << 30), vl = b & (1u << 31), vnni = c & (1u << 11);
  return f && bw && vl && vnni;
}

// AMX-TILE and AMX-INT8 (CPUID 7.0 EDX bits 24, 25) with the OS saving tile config and tile data
// (XCR0 bits 17, 18). Linux also wants each process to ask for the 8 KiB of tile data first
// (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA; without it the first tile instruction
// is killed by SIGILL): asked once here, and a refusal (an older kernel, a seccomp filter) means
// no amx.
static bool cpu_has_amx() {
#ifndef EDGERT_HAVE_AMX
  return false;  // built by a compiler without AMX intrinsics: no amx kernel to run
#endif
  static const bool ok = [] {
    if (!cpu_has_avx512vnni()) return false;
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(d & (1u << 24)) || !(d & (1u << 25))) return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0x60000u) != 0x60000u) return false;
#if defined(__linux__)
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
  }();
  return ok;
}
#endif

std::vector<Isa> available_isas() {
  std::vector<Isa> v{Isa::scalar};
#ifdef EDGERT_X86
  if (cpu_has_avx2_fma()) v.push_back(Isa::avx2);
  if (cpu_has_avx512vnni()) v.push_back(Isa::avx512vnni);
  if (cpu_has_amx()) v.push_back(Isa::amx);
#endif
#if defined(__aarch64__)
  v.push_back(Isa::neon);  // Advanced SIMD is mandatory on AArch64
#endif
  return v;
}

static Isa choose() {
  std::vector<Isa> avail = available_isas();
  const char* env = std::getenv("EDGERT_ISA");
  if (env == nullptr || *env == '\0') return avail.back();
  std::string want(env), names;
  for (Isa i : avail) {
    if (want == isa_name(i)) return i;
    names += std::string(names.empty() ? "" : ", ") + isa_name(i);
  }
  throw std::runtime_error("EDGERT_ISA=" + want + " is not available on this CPU/build " +
                           "(available: " + names + ")");
}

bool neon_has_dot() {
#if defined(__aarch64__) && defined(__linux__)
  constexpr unsigned long kHwcapAsimdDp = 1ul << 20;  // HWCAP_ASIMDDP in <asm/hwcap.h>
  static const bool dot = (getauxval(AT_HWCAP) & kHwcapAsimdDp) != 0;
  return dot && active_isa() == Isa::neon;
#else
  return false;
#endif
}

bool isa_runs_avx2() {
  const Isa i = active_isa();
  return i == Isa::avx2 || i == Isa::avx512vnni || i == Isa::amx;
}

bool isa_runs_avx512vnni() {
  const Isa i = active_isa();
  return i == Isa::avx512vnni || i == Isa::amx;
}

bool cpu_has_avx512vbmi() {
#ifdef EDGERT_X86
  if (!cpu_has_avx512vnni()) return false;
  unsigned a, b, c, d;
  __cpuid_count(7, 0, a, b, c, d);
  return (c & (1u << 1)) != 0;  // CPUID 7.0 ECX bit 1
#else
  return false;
#endif
}

bool cpu_has_dual_zmm_vnni() {
#ifdef EDGERT_X86
  if (!cpu_has_avx512vnni()) return false;
  unsigned a, b, c, d;
  __cpuid(0, a, b, c, d);
  const bool amd = b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;  // "AuthenticAMD"
  if (!amd) return false;
  __cpuid(1, a, b, c, d);
  const unsigned family = ((a >> 8) & 0xF) + ((a >> 20) & 0xFF);
  const unsigned model = ((a >> 4) & 0xF) | ((a >> 12) & 0xF0);
  if (family != 0x1A) return false;
  return !((model >= 0x20 && model <= 0x2F) || (model >= 0x60 && model <= 0x7F));
#else
  return false;
#endif
}

bool vnni_wide_tiles() {
  // Read once; a bad value is kept (the variable may be gone by a later call) and reported by
  // every call.
  static const std::string env = [] {
    const char* e = std::getenv("EDGERT_VNNI_TILE");
    return std::string(e ? e : "");
  }();
  if (env.empty()) {
    static const bool wide = cpu_has_dual_zmm_vnni();
    return wide;
  }
  if (env != "8x32" && env != "8x16")
    throw std::runtime_error("EDGERT_VNNI_TILE=" + env + " is not a tile (8x16 or 8x32)");
  return env == "8x32";
}

Isa active_isa() {
  static const Isa isa = choose();  // a throw leaves it unset, so every call reports the error
  return isa;
}

}  // namespace edgert
