#include "runtime/crc32c.h"

#include <array>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

#include <pthread.h>
#include <sched.h>

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
constexpr size_t kBlock = 8192;

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
