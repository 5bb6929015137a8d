// The kernel test driver's shared pieces: a seeded RNG, the variant registry filled from the
// kernel headers' declarations (variants.inc, generated at configure time), guarded output
// buffers and per-family pass/fail accounting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <string>
#include <vector>

#include "kernels/q8-gemm/q8-gemm.h"

#include <sys/mman.h>
#include <unistd.h>

namespace edgert {
namespace test {

// xorshift64*: deterministic across compilers and targets (std:: distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed ? seed : 1) {}
  uint64_t next() {
    s_ ^= s_ >> 12, s_ ^= s_ << 25, s_ ^= s_ >> 27;
    return s_ * 0x2545F4914F6CDD1Dull;
  }
  int32_t range(int32_t lo, int32_t hi) {  // inclusive
    return lo + static_cast<int32_t>(next() % (uint64_t(int64_t(hi) - lo) + 1));
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  bool coin() { return next() & 1; }
  float uniform(float lo, float hi) { return lo + (hi - lo) * float(next() >> 40) / float(1 << 24); }

 private:
  uint64_t s_;
};

template <class T>
struct Variant {
  const T* table;
  const char* name;
  const char* isa;  // the name's suffix after "__": scalar, avx2, neon, neondot ...
};

template <class T>
std::vector<Variant<T>>& variants() {
  static std::vector<Variant<T>> v;
  return v;
}

// Every variant name registered, and those a family ran: a declared table no family knows is
// reported as a failure (a new kernel family needs its test here).
inline std::vector<std::string>& declared_variants() {
  static std::vector<std::string> v;
  return v;
}
inline std::vector<std::string>& tested_variants() {
  static std::vector<std::string> v;
  return v;
}

template <class T>
const T* scalar_variant() {  // the reference
  for (const Variant<T>& v : variants<T>())
    if (std::string(v.isa) == "scalar") return v.table;
  return nullptr;
}

bool isa_runnable(const std::string& isa);  // this CPU can execute code of that suffix

// Output buffer of `bytes` followed by kGuard bytes, all preset to kFill: a kernel must change
// neither the guard nor bytes between its output rows (the scalar run's copy proves which
// bytes are outputs; the guard is checked against kFill directly).
constexpr size_t kGuard = 64;
constexpr uint8_t kFill = 0xA5;
struct Guarded {
  std::vector<uint8_t> buf;
  size_t bytes;
  explicit Guarded(size_t n) : buf(n + kGuard, kFill), bytes(n) {}
  uint8_t* data() { return buf.data(); }
  bool guard_intact() const {
    for (size_t i = bytes; i < buf.size(); ++i)
      if (buf[i] != kFill) return false;
    return true;
  }
};

// A read-only copy of v placed to end exactly at a page boundary followed by an inaccessible
// page: a kernel reading one element past the end faults, natively, under the sanitizers and
// under qemu-user (where ASan is not available), so over-reads cannot pass unnoticed.
template <class T>
class Fenced {
 public:
  Fenced() = default;
  explicit Fenced(const std::vector<T>& v) : n_(v.size()) {
    const size_t page = size_t(sysconf(_SC_PAGESIZE)), bytes = n_ * sizeof(T);
    len_ = (bytes + page - 1) / page * page + page;
    void* m = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) std::abort();
    base_ = static_cast<uint8_t*>(m);
    mprotect(base_ + len_ - page, page, PROT_NONE);
    p_ = reinterpret_cast<T*>(base_ + len_ - page - bytes);
    if (bytes) std::memcpy(p_, v.data(), bytes);
  }
  Fenced(Fenced&& o) noexcept { swap(o); }
  Fenced& operator=(Fenced&& o) noexcept { swap(o); return *this; }
  Fenced(const Fenced&) = delete;
  ~Fenced() { if (base_) munmap(base_, len_); }
  const T* data() const { return p_; }
  const T& operator[](size_t i) const { return p_[i]; }
  size_t size() const { return n_; }

 private:
  void swap(Fenced& o) {
    std::swap(p_, o.p_), std::swap(n_, o.n_), std::swap(base_, o.base_), std::swap(len_, o.len_);
  }
  T* p_ = nullptr;
  size_t n_ = 0;
  uint8_t* base_ = nullptr;
  size_t len_ = 0;
};

// Counts comparisons of one family and prints the first few failures.
class Family {
 public:
  explicit Family(const char* name) : name_(name) {}
  void pass() { ++passed_; }
  void fail(const std::string& what) {
    if (++failed_ <= 12) std::printf("  FAIL %s: %s\n", name_, what.c_str());
  }
  void check(bool ok, const std::string& what) { ok ? pass() : fail(what); }
  void note_variant(const char* n, bool run) {
    tested_variants().push_back(n);
    names_ += std::string(names_.empty() ? "" : ", ") + n + (run ? "" : " (skipped: CPU lacks it)");
  }
  size_t passed() const { return passed_; }
  size_t failed() const { return failed_; }
  void report() const {
    std::printf("%-10s %s: %zu passed, %zu failed [%s]\n", name_, failed_ ? "FAIL" : "ok",
                passed_, failed_, names_.c_str());
  }

 private:
  const char* name_;
  size_t passed_ = 0, failed_ = 0;
  std::string names_;
};

// Byte index of the first difference of two equal-size buffers, or SIZE_MAX.
inline size_t first_diff(const void* a, const void* b, size_t n) {
  if (std::memcmp(a, b, n) == 0) return SIZE_MAX;
  const uint8_t *p = static_cast<const uint8_t*>(a), *q = static_cast<const uint8_t*>(b);
  for (size_t i = 0; i < n; ++i)
    if (p[i] != q[i]) return i;
  return SIZE_MAX;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));

// What is running now, for the crash handler (a fence-page fault or SIGILL names the variant and
// case instead of a bare "Segmentation fault").
void set_running(const std::string& what);

// Families: each runs its cases over every registered variant and returns its counts.
// A random output stage for u8 (u8_out) or i8 outputs, with the zero point and clamps at
// their extremes as often as in between: full range, relu-like, a single value, random.
inline Q8Requant random_requant(Rng& rng, bool u8_out) {
  const int32_t qlo = u8_out ? 0 : -128, qhi = u8_out ? 255 : 127;
  const int32_t pick = rng.range(0, 4);
  const int32_t y_zp = pick == 0 ? qlo : pick == 1 ? qhi : rng.range(qlo, qhi);
  int32_t qmin = qlo, qmax = qhi;
  switch (rng.range(0, 3)) {
    case 1: qmin = y_zp; break;
    case 2: qmin = qmax = rng.range(qlo, qhi); break;
    case 3: qmin = rng.range(qlo, qhi), qmax = rng.range(qmin, qhi); break;
    default: break;
  }
  return {float(qmin - y_zp), float(qmax - y_zp), y_zp};
}

Family run_q8_gemm(Rng& rng);
Family run_q8_dwconv(Rng& rng);
Family run_q8_gemm_x8(Rng& rng);
Family run_f32_q8_vcvt(Rng& rng);
Family run_x_maxpool(Rng& rng);
Family run_x8_zip(Rng& rng);
Family run_x8_lut(Rng& rng);
Family run_x8_transpose(Rng& rng);
Family run_q8_avgpool(Rng& rng);

}  // namespace test
}  // namespace edgert
