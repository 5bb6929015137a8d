// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of .edgert files.
// crc32c(data, n, 0) of "123456789" is 0xE3069283; passing a previous result as `crc` continues
// it over more data. Uses the SSE4.2 crc32 instruction when the CPU has it (checked at run time),
// a table otherwise; both give identical results.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace edgert {

uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc = 0);  // the table form
bool crc32c_hardware();  // true when crc32c uses the CPU instruction

// The CRC of A followed by B from crc32c(A) and crc32c(B) and B's length.
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b);

struct ZeroShift;

// crc32c(data, n) computed by several threads at once: each calls work(), which checksums chunks
// until none are left, so a thread that starts late (or never) only leaves more to the others.
// wait() returns once every chunk is done, and result() is valid after it. A thread that finds
// no chunk left touches nothing but the job itself.
class Crc32cJob {
 public:
  static constexpr size_t kChunk = size_t(48) << 10;  // two runs of the three-chain form
  Crc32cJob(const void* data, size_t n, size_t chunk = kChunk);
  ~Crc32cJob();
  void work();
  void wait() const;
  uint32_t result() const;

 private:
  const uint8_t* data_;
  size_t chunk_, first_;  // chunk 0 holds the first first_ bytes, every later one chunk_
  std::vector<uint32_t> parts_;
  std::atomic<size_t> next_{0}, done_{0};
  std::unique_ptr<ZeroShift> own_shift_;  // the shift over chunk_ zero bytes, unless shared
  const ZeroShift* shift_;
};

// Hands the job to the process's helper thread, which calls work() on it: started on the first
// share, asleep while it has no job. The caller still calls work() and wait() itself.
void crc32c_share(std::shared_ptr<Crc32cJob> job);

}  // namespace edgert
