// Which SIMD variant of the kernels runs, chosen once per process.
//
// The default is the best ISA both the build and the CPU support: on x86-64, avx512vnni when
// CPUID reports AVX-512 F/BW/VL/VNNI (on top of avx2's features) and XGETBV says the OS saves the
// opmask and ZMM state, else avx2 when CPUID reports AVX2 and FMA and XGETBV says the OS saves
// YMM state; neon on AArch64 (Advanced SIMD is part of the base architecture there); scalar
// otherwise. avx512vnni runs the AVX2 kernels too, and its own where it has one (the int8 GEMM).
// EDGERT_ISA=scalar|avx2|avx512vnni|neon overrides it (tests, bug reports). An unknown value or an ISA this
// CPU/build cannot run is an error, not a silent fallback: active_isa() throws std::runtime_error
// naming the request and what is available; the module calls it at import, so `import edgert`
// fails with ImportError rather than running a different variant than the one asked for.
#pragma once

#include <vector>

namespace edgert {

enum class Isa { scalar, avx2, avx512vnni, neon };

const char* isa_name(Isa isa);
Isa active_isa();                   // the choice, made on the first call; throws as above
std::vector<Isa> available_isas();  // what this CPU and build can run, scalar first

// The active ISA runs the AVX2 kernels: avx2, or avx512vnni (which includes it).
bool isa_runs_avx2();

// AArch64 only: the CPU has the Armv8.2 dot-product instructions (SDOT/UDOT, hwcap asimddp), so
// neon kernels may take their dot-product form. False elsewhere and under EDGERT_ISA=scalar.
bool neon_has_dot();

}  // namespace edgert
