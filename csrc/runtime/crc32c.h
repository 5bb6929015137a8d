// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of .edgert files.
// crc32c(data, n, 0) of "123456789" is 0xE3069283; passing a previous result as `crc` continues
// it over more data. Chosen once at run time, the widest form the CPU runs: carry-less multiply
// folding (on 512-bit, 256-bit or 128-bit registers; short inputs take the SSE4.2 crc32
// instruction), the crc32 instruction alone, or a table. All give identical results.
// EDGERT_CRC=portable|sse42|pclmul|vpclmul256|vpclmul512 picks one for tests (ignored if the CPU
// does not run it).
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
const char* crc32c_variant();  // the form crc32c uses: one of EDGERT_CRC's names

// The CRC of A followed by B from crc32c(A) and crc32c(B) and B's length.
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b);

struct ZeroShift;

// crc32c(data, n) computed by several threads at once. Each calls work(), which checksums chunks
// until none are left to claim, so a thread that starts late (or never) only leaves more to the
// others. The owner then calls finish(): it checksums every chunk not done yet, including any a
// helper holds (twice the work for that chunk rather than waiting on a thread that may not be
// running), after which result() is valid. Helpers may still be reading: close() ends all
// claims and waits until none is; it must return before the data goes away.
class Crc32cJob {
 public:
  // Two runs of the three-chain form, three blocks of the 256-bit folding one (64 to 256 KiB
  // measured no faster).
  static constexpr size_t kChunk = size_t(48) << 10;
  Crc32cJob(const void* data, size_t n, size_t chunk = kChunk);
  ~Crc32cJob();
  void work();
  void finish();
  uint32_t result() const;
  void close();

 private:
  void checksum(size_t i);

  const uint8_t* data_;
  size_t chunk_, first_, count_;  // chunk 0 holds the first first_ bytes, every later one chunk_
  std::unique_ptr<std::atomic<uint32_t>[]> parts_;
  std::unique_ptr<std::atomic<bool>[]> done_;
  std::atomic<size_t> next_{0};    // the next chunk to claim
  std::atomic<int> readers_{0};    // threads inside work()
  std::unique_ptr<ZeroShift> own_shift_;  // the shift over chunk_ zero bytes, unless shared
  const ZeroShift* shift_;
};

// Hands the job to the process's helper thread, which calls work() on it: started on the first
// share, asleep while it has no job, and at the lowest priority (SCHED_IDLE where there is one)
// so that it only takes CPU time nothing else wants, never the loading thread's.
void crc32c_share(std::shared_ptr<Crc32cJob> job);

}  // namespace edgert
