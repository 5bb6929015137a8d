// The per-core int8 ceiling of the amx ISA's tile multiply, what its kernel efficiencies are quoted
// against (bench/peak_vnni.cpp measures vpdpbusd the same way).
// Build and run:  g++ -O2 -mamx-tile -mamx-int8 peak_amx.cpp && ./a.out
// Four independent tdpbusd chains (accumulator tiles 0-3) on A and B tiles loaded once: a
// throughput bound, 16 rows x 16 columns x 64 u8 x s8 products a tdpbusd. Linux wants the
// process to ask for the tile data first (arch_prctl ARCH_REQ_XCOMP_PERM).
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

int main() {
  if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) {
    std::printf("the OS refuses AMX tile data to this process\n");
    return 1;
  }
  alignas(64) static uint8_t a[1024], b[1024];
  alignas(64) static int32_t c[256];
  for (int i = 0; i < 1024; ++i) a[i] = uint8_t(i * 7), b[i] = uint8_t(i * 13);
  const TileConfig cfg;
  _tile_loadconfig(&cfg);
  _tile_loadd(4, a, 64);
  _tile_loadd(5, a, 64);
  _tile_loadd(6, b, 64);
  _tile_loadd(7, b, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const long iters = 2000000;
  const double t = now();
  for (long i = 0; i < iters; i++) {
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
  const double s = now() - t;
  _tile_stored(0, c, 64);
  _tile_release();
  std::printf("u8*s8 tdpbusd (AMX)       : %7.1f G MAC/s (checksum %d)\n",
              iters * 4.0 * 16 * 16 * 64 / s / 1e9, c[0]);
}
