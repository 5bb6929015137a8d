#include "runtime/threadpool.h"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>

#include <sched.h>
#include <sys/resource.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EDGERT_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define EDGERT_PAUSE() __asm__ __volatile__("yield")
#else
#define EDGERT_PAUSE() ((void)0)
#endif

namespace edgert {

thread_local bool ThreadPool::t_serial = false;

namespace {

// Set while this thread runs chunks of a region: a nested parallel_for must not wait for a
// pool that is busy running its caller.
thread_local bool t_in_region = false;

// How long a worker spins for the next region of an active run before it sleeps (and the caller
// for the workers inside a region before it waits on the condition variable), by default.
// Longer than a typical serial op between two parallel ones, short enough that a long serial
// stretch (or a run that is waiting on Python) costs little. EDGERT_SPIN_US sets it per pool
// (0: no spinning at all, as onnxruntime's allow_spinning=0).
constexpr int64_t kSpinUs = 200, kSpinUsMax = 100000;

}  // namespace

int64_t pool_spin_budget_us() {
  const char* env = std::getenv("EDGERT_SPIN_US");
  if (env == nullptr || *env == '\0') return kSpinUs;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(env, &end, 10);
  if (errno != 0 || *end != '\0' || v < 0 || v > kSpinUsMax)
    throw std::invalid_argument(std::string("EDGERT_SPIN_US=") + env +
                                ": expected whole microseconds from 0 to " +
                                std::to_string(kSpinUsMax));
  return v;
}

namespace {
// A worker preempted by the OS may mean more runnable threads than CPUs: spinning then only
// takes time from the thread it waits for, so spinning pauses for a while, 1 ms after a lone
// preemption (a kernel thread passing by: with 100 ms every time, this VM's two cores spun so
// rarely that MobileNetV2 0.35 ran slower on two threads than on one) and twice as long after
// each one that follows within kRecent, up to 100 ms (a busy machine).
constexpr auto kBackoffMin = std::chrono::milliseconds(1);
constexpr auto kBackoffMax = std::chrono::milliseconds(100);
constexpr auto kRecent = std::chrono::milliseconds(30);
// Workers read their preemption count (a getrusage system call, about 250 ns on the Zen 5 VM)
// once every this many regions and before they sleep, never between seeing a region and joining
// it: read around every spin, as before, it delayed each region's start by one call and its end,
// when the caller waited, by two (2 threads, a 14x14x40 -> 240 1x1 conv: 5.1-6.1 us against
// 4.6-4.7 without the calls, 6.7-6.9 on one thread; three rounds, old and new build alternating).
constexpr unsigned kPreemptCheckRegions = 16;

using Clock = std::chrono::steady_clock;

long preemptions() {
  struct rusage ru;
  return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nivcsw : 0;
}

int current_cpu() {
#ifdef __linux__
  return sched_getcpu();
#else
  return -1;
#endif
}

// A worker that finds itself on the CPU its caller runs on leaves it for the run. After the CPUs
// idled (a paced application between frames), the kernel tends to wake the worker on the
// caller's CPU; the two then share one CPU and the worker's spinning, or its chunks, take time
// from the caller: MobileNetV3-Small at 2 threads with 2 ms of idle before each run took
// 0.94-1.38 ms against 0.50-0.82 at one thread (the worker joined 17 % of the regions, 247 of
// its 1204 joins on the caller's CPU), and 0.34-0.37 back to back; with the move 0.60-0.74 (the
// same as one thread: the worker, woken late, still joins few regions). Its own affinity mask
// minus the caller's CPU (the kernel moves it at once); the mask is restored before it sleeps.
class Placement {
 public:
  Placement() {
#ifdef __linux__
    CPU_ZERO(&home_);
    valid_ = sched_getaffinity(0, sizeof(home_), &home_) == 0;
#endif
  }
  // True if the thread moved.
  bool avoid(int cpu) {
#ifdef __linux__
    if (!valid_ || cpu == avoided_ || cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &home_))
      return false;
    cpu_set_t other = home_;
    CPU_CLR(cpu, &other);
    if (CPU_COUNT(&other) == 0 || sched_setaffinity(0, sizeof(other), &other) != 0) return false;
    avoided_ = cpu;
    return true;
#else
    (void)cpu;
    return false;
#endif
  }
  void restore() {
#ifdef __linux__
    if (avoided_ >= 0) sched_setaffinity(0, sizeof(home_), &home_);
    avoided_ = -1;
#endif
  }

 private:
#ifdef __linux__
  cpu_set_t home_;
#endif
  bool valid_ = false;
  int avoided_ = -1;  // the CPU left out of this thread's mask, -1: none
};

}  // namespace

// Spins until pred() or the budget ends or keep_going() turns false; true if pred() held.
template <class Pred, class Keep>
bool ThreadPool::spin_until(Pred pred, Keep keep_going) {
  if (pred()) return true;
  if (spin_.count() == 0 || !keep_going()) return false;
  const Clock::time_point start = Clock::now();
  if (start.time_since_epoch().count() < no_spin_until_.load(std::memory_order_relaxed)) {
    return false;
  }
  for (unsigned i = 1;; ++i) {
    if (pred()) return true;
    if ((i & 63) == 0 && (!keep_going() || Clock::now() - start >= spin_)) return false;
    EDGERT_PAUSE();
  }
}

// The calling worker's involuntary context switches since `last` (its previous reading, updated
// here): any, and spinning backs off (see kBackoffMin).
void ThreadPool::note_preemptions(long& last) {
  const long count = preemptions();
  if (count != last) {  // (threads race on these: any of their values will do)
    const int64_t now = Clock::now().time_since_epoch().count();
    const int64_t min = std::chrono::duration_cast<Clock::duration>(kBackoffMin).count();
    const int64_t max = std::chrono::duration_cast<Clock::duration>(kBackoffMax).count();
    const int64_t recent = std::chrono::duration_cast<Clock::duration>(kRecent).count();
    const int64_t prev = last_preempted_.exchange(now, std::memory_order_relaxed);
    const int64_t backoff = now - prev < recent
        ? std::min(max, 2 * backoff_.load(std::memory_order_relaxed)) : min;
    backoff_.store(backoff, std::memory_order_relaxed);
    no_spin_until_.store(now + backoff, std::memory_order_relaxed);
  }
  last = count;
}

ThreadPool::ThreadPool(int threads)
    : threads_(std::max(threads, 1)),
      spin_(std::chrono::microseconds(pool_spin_budget_us())),
      ranges_(new Range[static_cast<size_t>(threads_)]) {}

// Workers start with the first region that can use them, under call_mu_: creating a session stays
// quick, and a session whose runs never split (small models) never starts a thread. A thread the
// system refuses is simply not there: the regions run on the threads that are.
void ThreadPool::start_workers() {
  started_ = true;
  workers_.reserve(threads_ - 1);
  try {
    for (int i = 0; i < threads_ - 1; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  } catch (const std::system_error&) {
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(size_t self) {
  for (size_t k = 0; k < parts_; ++k) {
    Range& r = ranges_[(self + k) % parts_];
    for (;;) {
      const size_t c = r.next.fetch_add(1, std::memory_order_relaxed);
      if (c >= r.end) break;
      const size_t begin = c * chunk_, end = std::min(n_, begin + chunk_);
      try {
        (*fn_)(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        for (size_t p = 0; p < parts_; ++p)  // stop handing out chunks
          ranges_[p].next.store(ranges_[p].end, std::memory_order_relaxed);
        return;
      }
    }
  }
}

void ThreadPool::worker_loop(int index) {
  t_in_region = true;  // a worker only ever runs chunks
  uint64_t seen = 0, woken = 0;
  long nivcsw = preemptions();
  unsigned regions = 0;
  Placement place;
  auto leave_caller = [&] {
    const int caller = caller_cpu_.load(std::memory_order_relaxed);
    // The move itself counts as an involuntary switch: not a preemption to back off for.
    if (caller >= 0 && current_cpu() == caller && place.avoid(caller)) nivcsw = preemptions();
  };
  for (;;) {
    auto fresh = [&] { return word_.load(std::memory_order_acquire) != seen; };
    auto keep = [&] {
      leave_caller();
      return runs_.load(std::memory_order_relaxed) > 0;
    };
    if (!spin_until(fresh, keep)) {
      note_preemptions(nivcsw);
      place.restore();
      std::unique_lock<std::mutex> lock(mu_);
      // seq_cst pairs with parallel_for's store of word_ then load of sleepers_: either it sees
      // us asleep and notifies, or we see its new word here.
      sleepers_.fetch_add(1);
      // No wake-up is on its way to this sleep yet. (Without this, a notifier that read
      // sleepers_ > 0 before a waking worker's decrement, but set waking_ after that worker had
      // cleared it, left waking_ set with nothing on its way: every later region skipped its
      // notify, the worker slept for good and the session ran serial; 1-3 in 20 two-thread
      // MobileNetV2 0.35 sessions within 200 runs.) A notify sent after this store takes mu_
      // first, so it finds this worker waiting.
      waking_.store(false);
      cv_work_.wait(lock, [&] {
        return stop_.load() || word_.load() != seen || wake_.load() != woken;
      });
      sleepers_.fetch_sub(1);
      waking_.store(false);
      woken = wake_.load();  // (a sleep adds no involuntary switch: nivcsw stays valid)
      lock.unlock();
      leave_caller();
    }
    if (stop_.load()) return;
    const uint64_t now = word_.load(std::memory_order_acquire);
    if (now == seen) continue;  // woken by prewake: spin for the run's next region
    seen = now;
    if (static_cast<uint64_t>(index) >= (seen & 0xffff)) continue;
    // Join the region if it is still open (a late worker finds it closed, or a newer one: the
    // next loop sees the newer word).
    const uint64_t region = (seen >> 16) & 0xffffffffu;
    uint64_t g = gate_.load(std::memory_order_acquire);
    bool joined = false;
    while ((g >> 32) == region && (g & kOpen)) {
      if (gate_.compare_exchange_weak(g, g + 1, std::memory_order_acq_rel)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    joins_.fetch_add(1, std::memory_order_relaxed);
    run_chunks(static_cast<size_t>(index) + 1);
    const uint64_t before = gate_.fetch_sub(1, std::memory_order_acq_rel);
    if ((before & kInside) == 1 && !(before & kOpen)) {  // the last one out of a closed region
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_one();
    }
    if (++regions % kPreemptCheckRegions == 0) note_preemptions(nivcsw);
  }
}

void ThreadPool::prewake() {
  caller_cpu_.store(current_cpu(), std::memory_order_relaxed);
  if (sleepers_.load() == 0 || waking_.exchange(true)) return;  // all awake, or being woken
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_.fetch_add(1);
  }
  cv_work_.notify_all();
}

// A region of few chunks leaves one thread a chunk more (7 chunks: 4 against 3) or a shorter last
// chunk to the other (56 rows in 10s: 30 against 26), and the other thread waits for it: with
// under 8 chunks a thread, stealing at the end cannot even that out. MobileNetV3-Small at 2
// threads had its depthwise convs in 7 chunks of 2-4 rows, its SE multiplies in 3 and its 56x56
// depthwise conv in 6 uneven ones. Chunks of a little less than the grain asked for cost
// less than that wait: 28 rows in 14 chunks of 2.
size_t ThreadPool::balanced_chunk(size_t n, size_t chunk, size_t parts) {
  if (parts < 2 || chunk == 0 || chunk >= n) return chunk;
  // The most items any thread's share holds for chunks of length c.
  auto busiest = [&](size_t c) {
    const size_t chunks = (n + c - 1) / c, p = std::min(parts, chunks);
    size_t most = 0;
    for (size_t i = 0; i < p; ++i) {
      const size_t b = chunks * i / p * c, e = std::min(n, chunks * (i + 1) / p * c);
      most = std::max(most, e - b);
    }
    return most;
  };
  const size_t limit = 8 * parts;
  size_t chunks = (n + chunk - 1) / chunk;
  if (chunks >= limit) return chunk;
  size_t best = chunk, best_load = busiest(chunk);
  const size_t floor = (chunk + 1) / 2;
  // For each chunk count from the grain's up to the limit, its most even length (k = chunks:
  // the same count, even), or half the grain's length where that is shorter.
  for (size_t k = chunks; k <= limit && k <= n; ++k) {
    const size_t c = std::max(floor, (n + k - 1) / k);  // (at most k <= limit chunks)
    const size_t load = busiest(c);
    if (load < best_load || (load == best_load && c > best)) best = c, best_load = load;
    if (c == floor) break;
  }
  return best;
}

void ThreadPool::parallel_for(size_t n, size_t grain,
                              const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  // About 16 chunks per thread (no smaller than grain): a thread that finishes its range takes
  // chunks from the others', so the threads end at most a chunk apart even when one core runs
  // slower (the second core here often runs 5-10 % slower than the first; with 4 chunks per
  // thread a 12544x96x24 GEMM scaled 1.35x on 2 threads, with 16 1.63-1.71x). The split depends
  // only on n, grain and threads_, never on timing.
  size_t target = static_cast<size_t>(threads_) * 16;
  size_t chunk = std::max(grain, (n + target - 1) / target);
  if (threads_ == 1 || chunk >= n || t_in_region || t_serial) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> call(call_mu_, std::try_to_lock);
  if (!call.owns_lock()) {
    fn(0, n);
    return;
  }
  if (!started_) start_workers();
  chunk = balanced_chunk(n, chunk, workers_.size() + 1);
  size_t chunks = (n + chunk - 1) / chunk;
  uint64_t active = std::min<size_t>(chunks - 1, workers_.size());
  fn_ = &fn;
  n_ = n;
  chunk_ = chunk;
  parts_ = static_cast<size_t>(active) + 1;
  for (size_t p = 0; p < parts_; ++p) {
    ranges_[p].next.store(chunks * p / parts_, std::memory_order_relaxed);
    ranges_[p].end = chunks * (p + 1) / parts_;
  }
  error_ = nullptr;
  const uint64_t region = (word_.load(std::memory_order_relaxed) >> 16) + 1;
  gate_.store((region & 0xffffffffu) << 32 | kOpen, std::memory_order_relaxed);
  uint64_t word = region << 16 | active;
  caller_cpu_.store(current_cpu(), std::memory_order_relaxed);
  word_.store(word);  // seq_cst: see worker_loop
  if (sleepers_.load() > 0 && !waking_.exchange(true)) {
    { std::lock_guard<std::mutex> lock(mu_); }
    cv_work_.notify_all();
  }

  t_in_region = true;
  run_chunks(0);
  t_in_region = false;
  // Every chunk is taken: close the region and wait for the workers inside it only.
  gate_.fetch_and(~kOpen, std::memory_order_acq_rel);
  auto done = [&] { return (gate_.load(std::memory_order_acquire) & kInside) == 0; };
  if (!spin_until(done, [] { return true; })) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_done_.wait(lock, done);
  }
  fn_ = nullptr;
  std::exception_ptr err;
  {
    std::lock_guard<std::mutex> lock(mu_);
    err = error_;
    error_ = nullptr;
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace edgert
