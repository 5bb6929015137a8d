// edgert kernel test driver: every ISA variant the kernel headers declare for this target is
// compared bit for bit with the scalar kernel on edge shapes (and the scalar kernel with an
// int64 reference). Prints one line per family, then `N passed, M failed`; exits 1 on failure.
#include <csignal>
#include <cstdarg>
#include <cstdlib>
#include <string>

#include "isa.h"
#include "tests/harness.h"
#include "variant-headers.inc"

namespace edgert {
namespace test {
namespace {

template <class T>
struct Registrar {
  Registrar(const T* t, const char* name, const char* isa) {
    variants<T>().push_back({t, name, isa});
    declared_variants().push_back(name);
  }
};

#define EDGERT_VARIANT(Table, name, isa) \
  const Registrar<Table> reg_##name(&name, #name, isa);
#include "variants.inc"
#undef EDGERT_VARIANT

}  // namespace

bool isa_runnable(const std::string& isa) {
  if (isa == "scalar") return true;
  for (Isa i : available_isas())
    if (isa == isa_name(i)) return true;
  if (isa == "neondot") return neon_has_dot();
  return false;
}

namespace {
char g_running[600] = "startup";

extern "C" void on_crash(int sig) {
  // Only async-signal-safe calls here.
  const char* what = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : sig == SIGILL ? "SIGILL" : "SIGFPE";
  const char* parts[] = {"CRASH (", what, ") in ", g_running, "\n0 passed, 1 failed\n"};
  for (const char* p : parts) {
    ssize_t r = write(1, p, std::strlen(p));
    (void)r;
  }
  _exit(2);
}
}  // namespace

void set_running(const std::string& what) {
  std::snprintf(g_running, sizeof g_running, "%s", what.c_str());
}

std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

}  // namespace test
}  // namespace edgert

int main(int argc, char** argv) {
  using namespace edgert::test;
  const uint64_t seed = argc > 1 ? std::strtoull(argv[1], nullptr, 0) : 20240611;
  std::printf("edgert kernel tests: seed %llu, active ISA %s\n", (unsigned long long)seed,
              edgert::isa_name(edgert::active_isa()));
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines survive a crashing kernel
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE}) std::signal(sig, on_crash);
  Rng rng(seed);
  const Family families[] = {run_q8_gemm(rng), run_q8_gemm_x8(rng), run_q8_dwconv(rng),
                             run_f32_q8_vcvt(rng), run_x_maxpool(rng), run_x8_zip(rng),
                             run_x8_transpose(rng), run_q8_avgpool(rng), run_x8_lut(rng)};
  size_t passed = 0, failed = 0;
  for (const Family& f : families) {
    f.report();
    passed += f.passed(), failed += f.failed();
  }
  for (const std::string& name : declared_variants()) {
    bool tested = false;
    for (const std::string& t : tested_variants()) tested = tested || t == name;
    if (!tested) {
      std::printf("FAIL %s: declared, but no family in csrc/tests/ tests its table\n", name.c_str());
      ++failed;
    }
  }
  std::printf("%zu passed, %zu failed\n", passed, failed);
  return failed ? 1 : 0;
}
