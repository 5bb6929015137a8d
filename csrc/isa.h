// Which SIMD variant of the kernels runs, chosen once per process.
//
// The default is the best ISA both the build and the CPU support: on x86-64, avx512vnni when
// CPUID reports AVX-512 F/BW/VL/VNNI (on top of avx2's features) and XGETBV says the OS saves the
// opmask and ZMM state, else avx2 when CPUID reports AVX2 and FMA and XGETBV says the OS saves
// YMM state; amx on top of avx512vnni when CPUID reports AMX-TILE and AMX-INT8, XGETBV says the
// OS saves tile state and (Linux) arch_prctl grants this process the tile data; neon on AArch64
// (Advanced SIMD is part of the base architecture there); scalar otherwise. avx512vnni runs the
// AVX2 kernels too, and its own where it has one (the int8 GEMM, depthwise conv); amx runs the
// avx512vnni ones and its own int8 GEMM (tdpbusd on 16x64-byte tiles).
// EDGERT_ISA=scalar|avx2|avx512vnni|amx|neon overrides it (tests, bug reports). An unknown value or an ISA this
// CPU/build cannot run is an error, not a silent fallback: active_isa() throws std::runtime_error
// naming the request and what is available; the module calls it at import, so `import edgert`
// fails with ImportError rather than running a different variant than the one asked for.
#pragma once

#include <vector>

namespace edgert {

enum class Isa { scalar, avx2, avx512vnni, amx, neon };

const char* isa_name(Isa isa);
Isa active_isa();                   // the choice, made on the first call; throws as above
std::vector<Isa> available_isas();  // what this CPU and build can run, scalar first

// The active ISA runs the AVX2 kernels: avx2, avx512vnni or amx (which include it).
bool isa_runs_avx2();
// The active ISA runs the AVX-512 VNNI kernels: avx512vnni or amx.
bool isa_runs_avx512vnni();

// The CPU has AVX-512 VBMI (vpermi2b: Ice Lake, Zen 4 and later; not Cascade Lake) and the OS
// saves the ZMM state: avx512vnni kernels with a VBMI form (x8-lut) take it. False off x86.
bool cpu_has_avx512vbmi();

// The avx512vnni GEMM runs 8x32 tiles (16 accumulators) rather than 8x16 ones: by default where
// the CPU issues two zmm vpdpbusd a cycle (cpu_has_dual_zmm_vnni); EDGERT_VNNI_TILE=8x16|8x32
// overrides it (tests, benchmarks). Another value throws std::runtime_error naming it (the module
// asks at import, like active_isa).
bool vnni_wide_tiles();
// AMD family 1Ah (Zen 5) server and desktop parts: full-width 512-bit units, two zmm vpdpbusd a
// cycle. False for Zen 4, which splits each zmm op over its 256-bit units (one a cycle), for
// family 1Ah's mobile parts (models 20h-2Fh, 60h-7Fh: 256-bit units), for the Intel CPUs the
// 8x16 tiles were tuned on, for other CPUs and off x86.
bool cpu_has_dual_zmm_vnni();

// AArch64 only: the CPU has the Armv8.2 dot-product instructions (SDOT/UDOT, hwcap asimddp), so
// neon kernels may take their dot-product form. False elsewhere and under EDGERT_ISA=scalar.
bool neon_has_dot();

}  // namespace edgert
