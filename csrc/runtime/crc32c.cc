#include "runtime/crc32c.h"

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
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

#if defined(__x86_64__)
// Three crc32 chains over consecutive blocks hide the instruction's 3-cycle latency (one chain
// runs at a third of the throughput). Chains join by moving a CRC over a block of zero bytes, a
// linear map of the 32-bit state, kept as four byte-indexed tables.
constexpr size_t kBlock = 8192;

struct ZeroShift {
  uint32_t t[4][256];
};

__attribute__((target("sse4.2"))) ZeroShift make_zero_shift() {
  uint64_t basis[32];
  for (int i = 0; i < 32; ++i) basis[i] = uint64_t(1) << i;
  for (size_t step = 0; step < kBlock / 8; ++step) {
    for (auto& b : basis) b = _mm_crc32_u64(b, 0);  // 32 independent chains
  }
  ZeroShift z;
  for (int j = 0; j < 4; ++j) {
    for (uint32_t v = 0; v < 256; ++v) {
      uint32_t r = 0;
      for (int b = 0; b < 8; ++b) {
        if (v >> b & 1) r ^= static_cast<uint32_t>(basis[8 * j + b]);
      }
      z.t[j][v] = r;
    }
  }
  return z;
}

inline uint32_t shift(const ZeroShift& z, uint32_t c) {
  return z.t[0][c & 0xff] ^ z.t[1][(c >> 8) & 0xff] ^ z.t[2][(c >> 16) & 0xff] ^ z.t[3][c >> 24];
}

__attribute__((target("sse4.2"))) uint32_t crc_sse42(const uint8_t* p, size_t n, uint32_t c) {
  uint64_t c64 = c;
  if (n >= 3 * kBlock) {
    static const ZeroShift z = make_zero_shift();
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
      c64 = shift(z, shift(z, uint32_t(a)) ^ uint32_t(b)) ^ uint32_t(d);
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

bool have_sse42() {
  static const bool yes = __builtin_cpu_supports("sse4.2");
  return yes;
}
#endif

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

bool crc32c_hardware() {
#if defined(__x86_64__)
  return have_sse42();
#else
  return false;
#endif
}

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
#if defined(__x86_64__)
  if (have_sse42()) return ~crc_sse42(static_cast<const uint8_t*>(data), n, ~crc);
#endif
  return crc32c_portable(data, n, crc);
}

}  // namespace edgert
