// Intra-op thread pool. parallel_for splits [0, n) into chunks run by the pool's workers and the
// calling thread; it returns when all are done. Workers sleep on a condition variable between
// calls (no spinning once a run returns). Results must not depend on the thread count: callers
// split work so every output element is computed by exactly one chunk, in a fixed order.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace edgert {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // total threads including the caller; >= 1
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }
  // Calls fn(begin, end) over disjoint ranges covering [0, n), each at least `grain` long
  // (except the last). Runs inline when n is small or the pool has one thread, when called from
  // inside a parallel region (nesting), or when another thread's region holds the pool (so
  // concurrent runs never wait on each other). An exception thrown by fn is rethrown here.
  void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

 private:
  void worker_loop(int index);
  int threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // one parallel region at a time (concurrent runs take turns per op)
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  const std::function<void(size_t, size_t)>* fn_ = nullptr;
  size_t n_ = 0, chunk_ = 0, next_ = 0;
  int pending_ = 0;
  int active_ = 0;            // workers taking part in the current region (index < active_)
  std::exception_ptr error_;  // first exception thrown by fn in the current region
  unsigned generation_ = 0;
  bool stop_ = false;
};

}  // namespace edgert
