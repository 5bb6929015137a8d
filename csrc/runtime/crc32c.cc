#include "runtime/crc32c.h"

#include <array>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

#include <pthread.h>
#include <sched.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace edgert {

namespace {

constexpr uint32_t kPoly = 0x82F63B78u;

// Slicing-by-8: t[k][b] is the CRC of byte b followed by k zero bytes.
struct Tables {
  uint32_t t[8][256];
  Tables() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int i = 0; i < 8; ++i) c = (c >> 1) ^ (kPoly & (0u - (c & 1)));
      t[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; ++b) {
      for (int k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

// A linear map of the 32-bit CRC state as the images of its 32 basis vectors.
using Gf2 = std::array<uint32_t, 32>;

uint32_t image(const Gf2& m, uint32_t v) {
  uint32_t r = 0;
  for (int i = 0; v; ++i, v >>= 1) {
    if (v & 1) r ^= m[i];
  }
  return r;
}

// What running the CRC over n zero bytes does to its (unconditioned) state: one zero byte is
// eight shift-and-reduce steps; powers of it by squaring.
Gf2 zero_bytes(uint64_t n) {
  Gf2 p, r;
  for (int i = 0; i < 32; ++i) {
    uint32_t c = 1u << i;
    for (int b = 0; b < 8; ++b) c = (c >> 1) ^ (kPoly & (0u - (c & 1)));
    p[i] = c;
    r[i] = 1u << i;
  }
  for (; n; n >>= 1) {
    if (n & 1) {
      for (auto& x : r) x = image(p, x);
    }
    Gf2 sq;
    for (int i = 0; i < 32; ++i) sq[i] = image(p, p[i]);
    p = sq;
  }
  return r;
}

}  // namespace

// zero_bytes(n) as four byte-indexed tables: four lookups per use.
struct ZeroShift {
  uint32_t t[4][256];
  explicit ZeroShift(uint64_t n) {
    const Gf2 m = zero_bytes(n);
    for (int j = 0; j < 4; ++j) {
      for (uint32_t v = 0; v < 256; ++v) t[j][v] = image(m, v << (8 * j));
    }
  }
  uint32_t operator()(uint32_t c) const {
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
  }
};

namespace {

#if defined(__x86_64__)
// Three crc32 chains over consecutive blocks hide the instruction's 3-cycle latency (one chain
// runs at a third of the throughput); chains join by moving a CRC over a block of zero bytes.
// Inputs shorter than kFoldMin take this form (the folding ones' setup costs more than it saves).
constexpr size_t kBlock = 8192;
constexpr size_t kFoldMin = 256;

__attribute__((target("sse4.2"))) uint32_t crc_sse42(const uint8_t* p, size_t n, uint32_t c) {
  uint64_t c64 = c;
  if (n >= 3 * kBlock) {
    static const ZeroShift z(kBlock);
    for (; n >= 3 * kBlock; n -= 3 * kBlock, p += 3 * kBlock) {
      uint64_t a = c64, b = 0, d = 0;
      for (size_t i = 0; i < kBlock; i += 8) {
        uint64_t va, vb, vd;
        std::memcpy(&va, p + i, 8);
        std::memcpy(&vb, p + kBlock + i, 8);
        std::memcpy(&vd, p + 2 * kBlock + i, 8);
        a = _mm_crc32_u64(a, va);
        b = _mm_crc32_u64(b, vb);
        d = _mm_crc32_u64(d, vd);
      }
      c64 = z(z(uint32_t(a)) ^ uint32_t(b)) ^ uint32_t(d);
    }
  }
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c64 = _mm_crc32_u64(c64, v);
  }
  c = static_cast<uint32_t>(c64);
  for (; n > 0; --n, ++p) c = _mm_crc32_u8(c, *p);
  return c;
}

// Folding (Intel, "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ"). The message is
// a polynomial, its first bit the highest term, and the CRC state after it is M·x^32 mod P. A
// 16-byte lane A that stands D bits before the data it is to be added to becomes A·x^D mod P
// there, and carry-less products give a value congruent to that without reducing: with
// A = H·x^64 + L (H the lane's first 8 bytes), A·x^D ≡ H·(x^(D+64) mod P) + L·(x^D mod P), which
// has under 96 bits. In the CRC's reflected bit order the product of a 64-bit and a 32-bit
// operand, read as a 16-byte lane, stands multiplied by x^33, so the multipliers are
// x^(D+31) mod P (for H) and x^(D-33) mod P (for L). What is left at the end is one lane
// congruent to everything folded into it; the crc32 instruction over its 16 bytes (from state 0)
// gives the CRC state, exactly as if it had read all of them.

// x^k mod P in the CRC's reflected order (bit 31 - i the coefficient of x^i): multiplying by x
// is one step of the table's shift-and-reduce. xpow_steps is that definition, k steps; xpow
// squares and multiplies to the same value (checked below), cheaply enough for the compiler to
// compute every multiplier, even those for distances of tens of kilobytes.
constexpr uint32_t times_x(uint32_t c) { return (c >> 1) ^ (kPoly & (0u - (c & 1))); }

constexpr uint32_t xpow_steps(uint32_t k) {
  uint32_t c = 0x80000000u;  // x^0
  for (; k; --k) c = times_x(c);
  return c;
}

constexpr uint32_t mulmod(uint32_t a, uint32_t b) {
  uint32_t r = 0;
  for (int i = 0; i < 32; ++i, b = times_x(b)) {  // b is b·x^i
    if (a & (0x80000000u >> i)) r ^= b;
  }
  return r;
}

constexpr uint32_t xpow(uint32_t k) {
  uint32_t r = 0x80000000u, sq = 0x40000000u;  // x^0, x^1
  for (; k; k >>= 1, sq = mulmod(sq, sq)) {
    if (k & 1) r = mulmod(r, sq);
  }
  return r;
}
static_assert(xpow_steps(31) == 1 && xpow_steps(32) == kPoly, "x^32 mod P is P's low terms");
static_assert(xpow(95) == xpow_steps(95) && xpow(1055) == xpow_steps(1055) &&
                  xpow(4127) == xpow_steps(4127) && xpow(50000) == xpow_steps(50000),
              "xpow agrees with the stepwise definition");

// The multipliers that move a lane D bits on, in the qwords clmul imm 0x00 and 0x11 pick.
struct Fold {
  uint64_t h, l;
};
constexpr Fold fold(uint32_t d) { return {xpow(d + 31), xpow(d - 33)}; }

// kFold[i] moves a lane 16 << i bytes on: every distance the forms below fold over, computed at
// compile time (a constexpr array must be; fold(d) called in a loop need not be).
constexpr Fold kFold[6] = {fold(128), fold(256), fold(512), fold(1024), fold(2048), fold(4096)};

__attribute__((target("sse4.2,pclmul"))) inline __m128i fold_k16(const Fold& f) {
  return _mm_set_epi64x(int64_t(f.l), int64_t(f.h));
}

__attribute__((target("sse4.2,pclmul"))) inline __m128i fold16(__m128i x, __m128i k, __m128i d) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), d),
                       _mm_clmulepi64_si128(x, k, 0x11));
}

// The last whole 16-byte lanes fold one at a time, the crc32 instruction takes the folded lane
// and then the last n % 16 bytes.
__attribute__((target("sse4.2,pclmul"))) inline uint32_t finish16(__m128i x, const uint8_t* p,
                                                                  size_t n) {
  const __m128i k = fold_k16(kFold[0]);
  for (; n >= 16; n -= 16, p += 16) x = fold16(x, k, _mm_loadu_si128((const __m128i*)p));
  uint64_t c = _mm_crc32_u64(0, uint64_t(_mm_cvtsi128_si64(x)));
  c = _mm_crc32_u64(c, uint64_t(_mm_extract_epi64(x, 1)));
  if (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8, n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; n > 0; --n, ++p) c32 = _mm_crc32_u8(c32, *p);
  return c32;
}

// Where a carry-less multiply issues only every other cycle (AMD before Zen 4), folding alone
// reads no faster than the three crc32 chains; the two use different units, so the 128- and
// 256-bit forms run both at once. A block is kSteps fold steps and three chain regions of kChain
// bytes between its last two: the first kSteps - 1 steps run alongside the chains, kWords words
// of each a step; the last step jumps the chains, whose states join it (a state stands for the 4
// bytes after its region, and one multiply moves it to the jump step's first lane).
constexpr int kSteps = 32;
constexpr size_t kWords = 10;  // 30 crc32s take about as long as a step's multiplies (Zen 3)
constexpr size_t kChain = 8 * kWords * (kSteps - 1);
constexpr Fold kChainFold[2] = {fold(8 * kChain), fold(16 * kChain)};

struct Chains {
  uint64_t a = 0, b = 0, d = 0;

  // The chain regions start at r; words [w, w + kWords) of each.
  __attribute__((target("sse4.2"))) void run(const uint8_t* r, size_t w) {
    for (size_t i = w; i < w + kWords; ++i) {
      uint64_t va, vb, vd;
      std::memcpy(&va, r + 8 * i, 8);
      std::memcpy(&vb, r + kChain + 8 * i, 8);
      std::memcpy(&vd, r + 2 * kChain + 8 * i, 8);
      a = _mm_crc32_u64(a, va);
      b = _mm_crc32_u64(b, vb);
      d = _mm_crc32_u64(d, vd);
    }
  }

  // The three states as one lane standing right after the regions (the lanes hold a state in
  // their low 4 bytes only, so only the first 8 bytes' multiplier is needed).
  __attribute__((target("sse4.2,pclmul"))) __m128i lane() const {
    const __m128i k = _mm_set_epi64x(int64_t(kChainFold[0].h), int64_t(kChainFold[1].h));
    const __m128i a2 = _mm_clmulepi64_si128(_mm_cvtsi64_si128(int64_t(a)), k, 0x00);  // 2 regions
    const __m128i b1 = _mm_clmulepi64_si128(_mm_cvtsi64_si128(int64_t(b)), k, 0x10);  // 1 region
    return _mm_xor_si128(_mm_xor_si128(a2, b1), _mm_cvtsi64_si128(int64_t(d)));
  }
};

// Eight lanes (128 bytes) a step: each fold waits on a multiply's latency, eight in flight keep
// the multiplier busy. Wants n >= 128 (every folding form gets n >= kFoldMin).
__attribute__((target("sse4.2,pclmul"))) uint32_t crc_pclmul(const uint8_t* p, size_t n,
                                                             uint32_t c) {
  constexpr int kLanes = 8;
  __m128i x[kLanes];
  for (int i = 0; i < kLanes; ++i) x[i] = _mm_loadu_si128((const __m128i*)(p + 16 * i));
  x[0] = _mm_xor_si128(x[0], _mm_cvtsi32_si128(int(c)));  // the state adds to the first 4 bytes
  p += 16 * kLanes, n -= 16 * kLanes;
  const __m128i k = fold_k16(kFold[3]);  // 128 bytes
  constexpr size_t kBlockBytes = 16 * kLanes * kSteps + 3 * kChain;
  constexpr Fold kJump = fold(8 * (16 * kLanes + 3 * kChain));
  const __m128i jump = fold_k16(kJump);
  for (; n >= kBlockBytes; n -= kBlockBytes) {
    Chains ch;
    const uint8_t* r = p + 16 * kLanes * (kSteps - 1);
    for (int t = 0; t < kSteps - 1; ++t, p += 16 * kLanes) {
      for (int i = 0; i < kLanes; ++i)
        x[i] = fold16(x[i], k, _mm_loadu_si128((const __m128i*)(p + 16 * i)));
      ch.run(r, t * kWords);
    }
    p = r + 3 * kChain;
    for (int i = 0; i < kLanes; ++i)
      x[i] = fold16(x[i], jump, _mm_loadu_si128((const __m128i*)(p + 16 * i)));
    x[0] = _mm_xor_si128(x[0], ch.lane());
    p += 16 * kLanes;
  }
  for (; n >= 16 * kLanes; n -= 16 * kLanes, p += 16 * kLanes) {
    for (int i = 0; i < kLanes; ++i)
      x[i] = fold16(x[i], k, _mm_loadu_si128((const __m128i*)(p + 16 * i)));
  }
  // Each lane joins the next, then every second the one two on, then the fourth the eighth:
  // three folds deep, not seven.
  for (int j = 0, s = 1; s < kLanes; ++j, s *= 2) {
    const __m128i ks = fold_k16(kFold[j]);
    for (int i = s - 1; i + s < kLanes; i += 2 * s) x[i + s] = fold16(x[i], ks, x[i + s]);
  }
  return finish16(x[kLanes - 1], p, n);
}

#define EDGERT_VPCLMUL256 "sse4.2,pclmul,avx2,vpclmulqdq"
#define EDGERT_VPCLMUL512 "sse4.2,pclmul,avx2,vpclmulqdq,avx512f"

__attribute__((target(EDGERT_VPCLMUL256))) inline __m256i fold32(__m256i x, __m256i k,
                                                                 __m256i d) {
  return _mm256_xor_si256(_mm256_xor_si256(_mm256_clmulepi64_epi128(x, k, 0x00), d),
                          _mm256_clmulepi64_epi128(x, k, 0x11));
}

__attribute__((target(EDGERT_VPCLMUL256))) inline __m256i fold_k32(const Fold& f) {
  return _mm256_broadcastsi128_si256(fold_k16(f));
}

// One register's two lanes: whole 32 bytes fold into both, then the first lane into the second.
__attribute__((target(EDGERT_VPCLMUL256))) inline uint32_t finish32(__m256i y, const uint8_t* p,
                                                                   size_t n) {
  const __m256i k = fold_k32(kFold[1]);
  for (; n >= 32; n -= 32, p += 32) y = fold32(y, k, _mm256_loadu_si256((const __m256i*)p));
  const __m128i x = fold16(_mm256_castsi256_si128(y), fold_k16(kFold[0]),
                           _mm256_extracti128_si256(y, 1));
  return finish16(x, p, n);
}

// Loads that straddle two cache lines cost two; reaching a 64-byte boundary with the crc32
// instruction first costs a few cycles once.
inline size_t to_line(const uint8_t* p) { return (0 - reinterpret_cast<uintptr_t>(p)) & 63; }

// The eight-register form on 256-bit registers (two lanes each): 256 bytes a step; shorter
// inputs go to the 128-bit form.
__attribute__((target(EDGERT_VPCLMUL256))) uint32_t crc_vpclmul256(const uint8_t* p, size_t n,
                                                                   uint32_t c) {
  constexpr int kRegs = 8;
  if (const size_t h = to_line(p); n >= 32 * kRegs + h) {
    c = crc_sse42(p, h, c);
    p += h, n -= h;
  } else {
    return crc_pclmul(p, n, c);
  }
  __m256i y[kRegs];
  for (int i = 0; i < kRegs; ++i) y[i] = _mm256_loadu_si256((const __m256i*)(p + 32 * i));
  y[0] = _mm256_xor_si256(y[0], _mm256_zextsi128_si256(_mm_cvtsi32_si128(int(c))));
  p += 32 * kRegs, n -= 32 * kRegs;
  const __m256i k = fold_k32(kFold[4]);  // 256 bytes
  constexpr size_t kBlockBytes = 32 * kRegs * kSteps + 3 * kChain;
  constexpr Fold kJump = fold(8 * (32 * kRegs + 3 * kChain));
  const __m256i jump = fold_k32(kJump);
  for (; n >= kBlockBytes; n -= kBlockBytes) {
    Chains ch;
    const uint8_t* r = p + 32 * kRegs * (kSteps - 1);
    for (int t = 0; t < kSteps - 1; ++t, p += 32 * kRegs) {
      for (int i = 0; i < kRegs; ++i)
        y[i] = fold32(y[i], k, _mm256_loadu_si256((const __m256i*)(p + 32 * i)));
      ch.run(r, t * kWords);
    }
    p = r + 3 * kChain;
    for (int i = 0; i < kRegs; ++i)
      y[i] = fold32(y[i], jump, _mm256_loadu_si256((const __m256i*)(p + 32 * i)));
    y[0] = _mm256_xor_si256(y[0], _mm256_zextsi128_si256(ch.lane()));
    p += 32 * kRegs;
  }
  for (; n >= 32 * kRegs; n -= 32 * kRegs, p += 32 * kRegs) {
    for (int i = 0; i < kRegs; ++i)
      y[i] = fold32(y[i], k, _mm256_loadu_si256((const __m256i*)(p + 32 * i)));
  }
  for (int j = 1, s = 1; s < kRegs; ++j, s *= 2) {
    const __m256i ks = fold_k32(kFold[j]);
    for (int i = s - 1; i + s < kRegs; i += 2 * s) y[i + s] = fold32(y[i], ks, y[i + s]);
  }
  return finish32(y[kRegs - 1], p, n);
}

__attribute__((target(EDGERT_VPCLMUL512))) inline __m512i fold64(__m512i x, __m512i k,
                                                                 __m512i d) {
  // 0x96: a ^ b ^ c in one instruction.
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), d,
                                   _mm512_clmulepi64_epi128(x, k, 0x11), 0x96);
}

__attribute__((target(EDGERT_VPCLMUL512))) inline __m512i fold_k64(const Fold& f) {
  const int64_t h = int64_t(f.h), l = int64_t(f.l);
  return _mm512_set_epi64(l, h, l, h, l, h, l, h);
}

// The eight-register form on 512-bit registers (four lanes each): 512 bytes a step; shorter
// inputs go to the 256-bit form. After the joins, whole 64 bytes fold into the one register left,
// whose first half then folds into its second.
__attribute__((target(EDGERT_VPCLMUL512))) uint32_t crc_vpclmul512(const uint8_t* p, size_t n,
                                                                   uint32_t c) {
  constexpr int kRegs = 8;
  if (const size_t h = to_line(p); n >= 64 * kRegs + h) {
    c = crc_sse42(p, h, c);
    p += h, n -= h;
  } else {
    return crc_vpclmul256(p, n, c);
  }
  __m512i z[kRegs];
  for (int i = 0; i < kRegs; ++i) z[i] = _mm512_loadu_si512(p + 64 * i);
  z[0] = _mm512_xor_si512(z[0], _mm512_zextsi128_si512(_mm_cvtsi32_si128(int(c))));
  p += 64 * kRegs, n -= 64 * kRegs;
  const __m512i k = fold_k64(kFold[5]);  // 512 bytes
  for (; n >= 64 * kRegs; n -= 64 * kRegs, p += 64 * kRegs) {
    for (int i = 0; i < kRegs; ++i) z[i] = fold64(z[i], k, _mm512_loadu_si512(p + 64 * i));
  }
  for (int j = 2, s = 1; s < kRegs; ++j, s *= 2) {
    const __m512i ks = fold_k64(kFold[j]);
    for (int i = s - 1; i + s < kRegs; i += 2 * s) z[i + s] = fold64(z[i], ks, z[i + s]);
  }
  __m512i x = z[kRegs - 1];
  for (const __m512i k64 = fold_k64(kFold[2]); n >= 64; n -= 64, p += 64)
    x = fold64(x, k64, _mm512_loadu_si512(p));
  // (Masked extracts: with the plain ones GCC 12 warns of a read of an uninitialized register.)
  return finish32(fold32(_mm512_maskz_extracti64x4_epi64(0xff, x, 0), fold_k32(kFold[1]),
                         _mm512_maskz_extracti64x4_epi64(0xff, x, 1)),
                  p, n);
}
#undef EDGERT_VPCLMUL256
#undef EDGERT_VPCLMUL512
#endif

// The forms crc32c can use, the table's first; each takes and returns the unconditioned state.
struct Form {
  const char* name;
  uint32_t (*run)(const uint8_t* p, size_t n, uint32_t c);
  bool (*cpu_has)();
};

uint32_t table_form(const uint8_t* p, size_t n, uint32_t c) { return ~crc32c_portable(p, n, ~c); }

#if defined(__x86_64__)
template <uint32_t (*kFolding)(const uint8_t*, size_t, uint32_t)>
uint32_t short_or_fold(const uint8_t* p, size_t n, uint32_t c) {
  return n < kFoldMin ? crc_sse42(p, n, c) : kFolding(p, n, c);
}
bool cpu_sse42() { return __builtin_cpu_supports("sse4.2"); }
bool cpu_pclmul() { return cpu_sse42() && __builtin_cpu_supports("pclmul"); }
bool cpu_vpclmul256() {
  return cpu_pclmul() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("vpclmulqdq");
}
bool cpu_vpclmul512() { return cpu_vpclmul256() && __builtin_cpu_supports("avx512f"); }
#endif

const Form kForms[] = {
    {"portable", table_form, [] { return true; }},
#if defined(__x86_64__)
    {"sse42", crc_sse42, cpu_sse42},
    {"pclmul", short_or_fold<crc_pclmul>, cpu_pclmul},
    {"vpclmul256", short_or_fold<crc_vpclmul256>, cpu_vpclmul256},
    {"vpclmul512", short_or_fold<crc_vpclmul512>, cpu_vpclmul512},
#endif
};
constexpr int kNumForms = sizeof(kForms) / sizeof(kForms[0]);

// A form is used only after it agrees with the table on a few lengths that reach its widest
// folds: a CPU or emulator that reports an extension it mishandles then costs speed, never a
// wrong checksum (and the 512-bit form cannot run on every machine that tests this file).
bool agrees_with_table(const Form& f) {
  uint8_t buf[1500];
  uint32_t s = 1;
  for (auto& b : buf) b = uint8_t((s = s * 1103515245u + 12345u) >> 23);
  for (size_t n : {0, 100, 1037, 1490}) {
    const uint8_t* p = buf + n % 7;  // 0, 2, 1 and 6 bytes past buf
    if (f.run(p, n, 0x12345678u) != table_form(p, n, 0x12345678u)) return false;
  }
  return true;
}

// The widest form this CPU runs (and that agrees with the table), unless EDGERT_CRC names another
// such form: tests pick each in turn. A name that is none of them, and a form that disagrees (a
// bug), are said on stderr. Read once.
const Form& choose_form() {
#if defined(__x86_64__)
  __builtin_cpu_init();
#endif
  bool ok[kNumForms];
  int best = 0;
  for (int i = 0; i < kNumForms; ++i) {
    ok[i] = i == 0 || (kForms[i].cpu_has() && agrees_with_table(kForms[i]));
    if (ok[i]) best = i;
    if (!ok[i] && kForms[i].cpu_has())
      std::fprintf(stderr, "edgert: crc32c's %s form disagrees with the table; not used\n",
                   kForms[i].name);
  }
  const char* env = std::getenv("EDGERT_CRC");
  if (env == nullptr || *env == '\0') return kForms[best];
  for (int i = 0; i < kNumForms; ++i) {
    if (ok[i] && std::strcmp(env, kForms[i].name) == 0) return kForms[i];
  }
  std::fprintf(stderr, "edgert: EDGERT_CRC=%s: no such crc32c form runs here; using %s\n", env,
               kForms[best].name);
  return kForms[best];
}

const Form& form() {
  static const Form& f = choose_form();
  return f;
}

}  // namespace

uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc) {
  const Tables& tb = tables();
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    // Byte order independent: the bytes are combined explicitly, little-endian.
    const uint32_t lo = c ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
                             uint32_t(p[3]) << 24);
    c = tb.t[7][lo & 0xff] ^ tb.t[6][(lo >> 8) & 0xff] ^ tb.t[5][(lo >> 16) & 0xff] ^
        tb.t[4][lo >> 24] ^ tb.t[3][p[4]] ^ tb.t[2][p[5]] ^ tb.t[1][p[6]] ^ tb.t[0][p[7]];
  }
  for (; n > 0; --n, ++p) c = (c >> 8) ^ tb.t[0][(c ^ *p) & 0xff];
  return ~c;
}

bool crc32c_hardware() { return &form() != &kForms[0]; }

const char* crc32c_variant() { return form().name; }

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  return ~form().run(static_cast<const uint8_t*>(data), n, ~crc);
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b) {
  // With the conditioning (~ before and after) the state's affine part cancels out.
  return image(zero_bytes(len_b), crc_a) ^ crc_b;
}

Crc32cJob::Crc32cJob(const void* data, size_t n, size_t chunk)
    : data_(static_cast<const uint8_t*>(data)), chunk_(chunk ? chunk : kChunk) {
  count_ = (n + chunk_ - 1) / chunk_;
  first_ = n - (count_ ? count_ - 1 : 0) * chunk_;
  parts_.reset(new std::atomic<uint32_t>[count_]);
  done_.reset(new std::atomic<bool>[count_]);
  for (size_t i = 0; i < count_; ++i) done_[i].store(false, std::memory_order_relaxed);
  if (chunk_ == kChunk) {
    static const ZeroShift shared(kChunk);
    shift_ = &shared;
  } else {
    own_shift_ = std::make_unique<ZeroShift>(chunk_);
    shift_ = own_shift_.get();
  }
}

Crc32cJob::~Crc32cJob() = default;

void Crc32cJob::checksum(size_t i) {
  const uint32_t c = i ? crc32c(data_ + first_ + (i - 1) * chunk_, chunk_) : crc32c(data_, first_);
  parts_[i].store(c, std::memory_order_relaxed);  // two threads store the same value
  done_[i].store(true, std::memory_order_release);
}

// readers_ is raised before a claim and next_ exhausted before close() looks at readers_ (all
// sequentially consistent): a thread whose claim succeeded is counted until it leaves.
void Crc32cJob::work() {
  readers_.fetch_add(1);
  for (size_t i; (i = next_.fetch_add(1)) < count_;) checksum(i);
  readers_.fetch_sub(1);
}

void Crc32cJob::finish() {
  next_.exchange(count_);
  for (size_t i = 0; i < count_; ++i) {
    if (!done_[i].load(std::memory_order_acquire)) checksum(i);
  }
}

uint32_t Crc32cJob::result() const {
  uint32_t c = 0;  // the CRC of nothing
  for (size_t i = 0; i < count_; ++i) {
    const uint32_t p = parts_[i].load(std::memory_order_relaxed);
    c = i ? (*shift_)(c) ^ p : p;
  }
  return c;
}

void Crc32cJob::close() {
  next_.exchange(count_);
  // A helper inside a chunk finishes it within microseconds once it runs; it may be waiting
  // for a CPU, so yield rather than spin.
  while (readers_.load() != 0) std::this_thread::yield();
}

namespace {

// The helper's state lives as long as the process (the thread may still wait on it while the
// process exits). A forked child has no helper: it starts its own on its first share rather
// than use the parent's queue, which the fork may have copied locked.
struct Helper {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Crc32cJob>> jobs;
};

std::atomic<Helper*> g_helper{nullptr};
std::atomic<bool> g_no_helper{false};  // the thread could not be started

void helper_loop(Helper* h) {
#if defined(SCHED_IDLE)
  sched_param idle{};
  pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);  // best effort
#endif
  for (;;) {
    std::shared_ptr<Crc32cJob> job;
    {
      std::unique_lock<std::mutex> lock(h->mu);
      h->cv.wait(lock, [h] { return !h->jobs.empty(); });
      job = std::move(h->jobs.front());
      h->jobs.pop_front();
    }
    job->work();
  }
}

Helper* helper() {
  Helper* h = g_helper.load(std::memory_order_acquire);
  if (h || g_no_helper.load(std::memory_order_relaxed)) return h;
  static const bool once = [] {
    pthread_atfork(nullptr, nullptr, [] {
      g_helper.store(nullptr);
      g_no_helper.store(false);
    });
    return true;
  }();
  (void)once;
  auto* mine = new Helper;
  if (!g_helper.compare_exchange_strong(h, mine)) {  // another thread started one first
    delete mine;
    return h;
  }
  try {
    std::thread(helper_loop, mine).detach();
  } catch (const std::system_error&) {
    g_no_helper.store(true);
    g_helper.store(nullptr);
    return nullptr;  // `mine` stays allocated: a concurrent share may hold it
  }
  return mine;
}

}  // namespace

void crc32c_share(std::shared_ptr<Crc32cJob> job) {
  Helper* h = helper();
  if (!h) return;
  {
    std::lock_guard<std::mutex> lock(h->mu);
    h->jobs.push_back(std::move(job));
  }
  h->cv.notify_one();
}

}  // namespace edgert
