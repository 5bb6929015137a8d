// The check the f32-q8-vcvt, x-maxpool and x8-zip families share: the scalar variant's output
// is the reference, and every variant this CPU runs (scalar again included: it must repeat
// itself) writes a fresh guarded buffer that must equal it byte for byte.
#pragma once

#include <string>

#include "tests/harness.h"

namespace edgert {
namespace test {

// Notes the family's variants; false, after a failure, when the header declares no scalar one.
template <class Table>
bool begin_family(Family& fam, const char* header) {
  for (const Variant<Table>& v : variants<Table>()) fam.note_variant(v.name, isa_runnable(v.isa));
  if (scalar_variant<Table>() != nullptr) return true;
  fam.fail(std::string(header) + " declares no scalar variant");
  return false;
}

// run(table, out) for each runnable variant; `what` names the case, detail(byte) may add
// what the first differing byte came from.
template <class Table, class Run, class Detail>
void check_variants(Family& fam, const uint8_t* want, size_t bytes, const std::string& what,
                    Run run, Detail detail) {
  for (const Variant<Table>& v : variants<Table>()) {
    if (!isa_runnable(v.isa)) continue;
    Guarded got(bytes);
    set_running(fmt("%s: %s", v.name, what.c_str()));
    run(*v.table, got.data());
    const size_t at = first_diff(got.data(), want, bytes);
    fam.check(at == SIZE_MAX && got.guard_intact(),
              fmt("%s: %s, byte %zu%s%s", v.name, what.c_str(), at,
                  at == SIZE_MAX ? "" : detail(at).c_str(),
                  got.guard_intact() ? "" : ", wrote past the output"));
  }
}

template <class Table, class Run>
void check_variants(Family& fam, const uint8_t* want, size_t bytes, const std::string& what,
                    Run run) {
  check_variants<Table>(fam, want, bytes, what, run, [](size_t) { return std::string(); });
}

}  // namespace test
}  // namespace edgert
