// Which SIMD variant of the kernels runs, chosen once per process.
//
// The default is the best ISA both the build and the CPU support: avx2 on x86-64 when CPUID
// reports AVX2 and FMA and XGETBV says the OS saves YMM state; neon on AArch64 (Advanced SIMD is
// part of the base architecture there); scalar otherwise.
// EDGERT_ISA=scalar|avx2|neon overrides it (tests, bug reports). An unknown value or an ISA this
// CPU/build cannot run is an error, not a silent fallback: active_isa() throws std::runtime_error
// naming the request and what is available; the module calls it at import, so `import edgert`
// fails with ImportError rather than running a different variant than the one asked for.
#pragma once

#include <vector>

namespace edgert {

enum class Isa { scalar, avx2, neon };

const char* isa_name(Isa isa);
Isa active_isa();                   // the choice, made on the first call; throws as above
std::vector<Isa> available_isas();  // what this CPU and build can run, scalar first

// AArch64 only: the CPU has the Armv8.2 dot-product instructions (SDOT/UDOT, hwcap asimddp), so
// neon kernels may take their dot-product form. False elsewhere and under EDGERT_ISA=scalar.
bool neon_has_dot();

}  // namespace edgert
