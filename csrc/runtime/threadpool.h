// Intra-op thread pool. parallel_for splits [0, n) into chunks run by the pool's workers and the
// calling thread; it returns when all are done. Results must not depend on the thread count:
// callers split work so every output element is computed by exactly one chunk.
//
// Waking a sleeping thread costs tens of microseconds, more than many ops take, so while a run
// is active (between RunScope's construction and destruction) idle workers spin briefly
// (bounded, with pause) waiting for the next region before they fall back to the condition
// variable. When no run is active nobody spins: an idle session uses no CPU.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace edgert {

// The workers' spin budget in microseconds: EDGERT_SPIN_US (whole microseconds, 0 to 100000; 0:
// workers sleep as soon as a region ends), 200 when unset. std::invalid_argument naming the
// variable for any other value.
int64_t pool_spin_budget_us();

class ThreadPool {
 public:
  // threads: total threads including the caller, >= 1. Reads EDGERT_SPIN_US (std::invalid_argument
  // for a value that is not 0 to 100000).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }
  // Regions that a worker joined, since the pool was made (a statistic: relaxed, any order).
  uint64_t worker_joins() const { return joins_.load(std::memory_order_relaxed); }
  // Calls fn(begin, end) over disjoint ranges covering [0, n), each at least `grain` long
  // (except the last), or at least half of it where a region has few chunks that the threads
  // would otherwise share unevenly (see balanced_chunk). Runs inline when n is small or the pool
  // has one thread, when called from inside a parallel region (nesting), or when another
  // thread's region holds the pool (so concurrent runs never wait on each other). An exception
  // thrown by fn is rethrown here.
  void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);
  // The chunk length parallel_for uses for n items split among `parts` threads when its grain
  // and spread rules give `chunk`: where that makes fewer than 8 chunks a thread, of one length
  // per chunk count (its most even one, but no shorter than ceil(chunk / 2)) the one whose
  // contiguous shares, as parallel_for hands them out, leave the busiest thread the fewest
  // items, the longest of those; never a busier thread than `chunk` gives. Depends on n, chunk
  // and parts only.
  static size_t balanced_chunk(size_t n, size_t chunk, size_t parts);

  // Wakes sleeping workers so that they spin, ready for the coming regions of a run (call it
  // inside a RunScope, before the run's ops): a worker asleep since the last run otherwise
  // joins its first region tens of microseconds late, which the caller then waits out.
  void prewake();

  // Marks a run active for its lifetime: workers may spin between this run's regions.
  class RunScope {
   public:
    explicit RunScope(ThreadPool& p) : p_(p) { p_.runs_.fetch_add(1, std::memory_order_relaxed); }
    ~RunScope() { p_.runs_.fetch_sub(1, std::memory_order_relaxed); }
    RunScope(const RunScope&) = delete;
    RunScope& operator=(const RunScope&) = delete;

   private:
    ThreadPool& p_;
  };

  // While alive, parallel_for on this thread runs inline: for ops too small to be worth a split
  // (the executor measures which ones are).
  class SerialScope {
   public:
    explicit SerialScope(bool on) : prev_(t_serial) { t_serial = prev_ || on; }
    ~SerialScope() { t_serial = prev_; }
    SerialScope(const SerialScope&) = delete;
    SerialScope& operator=(const SerialScope&) = delete;

   private:
    bool prev_;
  };

 private:
  static thread_local bool t_serial;
  void start_workers();  // with call_mu_ held
  void worker_loop(int index);
  void run_chunks(size_t self);
  template <class Pred, class Keep>
  bool spin_until(Pred pred, Keep keep_going);
  void note_preemptions(long& last);  // a worker's, see threadpool.cc
  int threads_;
  std::chrono::microseconds spin_;  // the spin budget (EDGERT_SPIN_US, see threadpool.cc)
  std::vector<std::thread> workers_;
  bool started_ = false;  // guarded by call_mu_
  std::mutex call_mu_;  // one parallel region at a time (concurrent runs take turns per op)
  std::mutex mu_;       // guards sleeping, error_ and the condition variables
  std::condition_variable cv_work_, cv_done_;
  // The region: written by the caller before it publishes word_, stable until every worker
  // that joined it (see gate_) has left.
  const std::function<void(size_t, size_t)>* fn_ = nullptr;
  size_t n_ = 0, chunk_ = 0;
  // The region's chunks split into one contiguous range per participant (0: the caller, 1 + i:
  // worker i), each taken from its front by its owner, then by whoever has finished its own:
  // consecutive ops give a thread the same part of the image, which its cache still holds.
  struct alignas(64) Range {
    std::atomic<size_t> next{0};
    size_t end = 0;
  };
  std::unique_ptr<Range[]> ranges_;
  size_t parts_ = 0;
  // Who is inside the region: (region counter, low 32 bits) << 32 | kOpen | workers inside. A
  // worker joins only while the region is open; the caller closes it once every chunk is taken
  // and waits only for the workers inside, so a worker still waking from sleep, or descheduled,
  // never holds a region up: it finds the region closed and skips it.
  static constexpr uint64_t kOpen = uint64_t{1} << 31, kInside = kOpen - 1;
  std::atomic<uint64_t> gate_{0};
  // (region counter << 16) | workers taking part (index < that count): one word, so a worker
  // never pairs a region with another region's worker count.
  std::atomic<uint64_t> word_{0};
  std::atomic<int> sleepers_{0};
  // A wake-up is on its way (set by whoever notifies, cleared by a worker once awake and by one
  // going to sleep): regions starting meanwhile skip their own notify, a system call each
  // (several microseconds on a VM, paid by the caller) that would only repeat it.
  std::atomic<bool> waking_{false};
  std::atomic<uint64_t> wake_{0};  // bumped (under mu_) by prewake
  std::atomic<int> runs_{0};  // active RunScopes
  std::atomic<int> caller_cpu_{-1};  // the caller's CPU at its last region or prewake (-1: unknown)
  std::atomic<uint64_t> joins_{0};  // see worker_joins
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> no_spin_until_{0};  // steady_clock ticks: spinning backs off until then
  std::atomic<int64_t> last_preempted_{0};  // steady_clock ticks of the last preemption seen
  std::atomic<int64_t> backoff_{0};         // the last back-off, in steady_clock ticks
  std::exception_ptr error_;  // first exception thrown by fn in the current region
};

}  // namespace edgert
