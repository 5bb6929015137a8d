#include "runtime/threadpool.h"

#include <algorithm>

namespace edgert {

// Set while this thread runs chunks of a region: a nested parallel_for must not wait for a
// pool that is busy running its caller.
static thread_local bool t_in_region = false;

ThreadPool::ThreadPool(int threads) : threads_(std::max(threads, 1)) {
  workers_.reserve(threads_ - 1);
  for (int i = 0; i < threads_ - 1; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
  t_in_region = true;  // a worker only ever runs chunks
  unsigned seen = 0;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_work_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    if (index >= active_) continue;
    while (next_ < n_) {
      size_t begin = next_;
      size_t end = std::min(n_, begin + chunk_);
      next_ = end;
      lock.unlock();
      try {
        (*fn_)(begin, end);
      } catch (...) {
        lock.lock();
        if (!error_) error_ = std::current_exception();
        next_ = n_;  // stop handing out chunks
        continue;
      }
      lock.lock();
    }
    if (--pending_ == 0) cv_done_.notify_one();
  }
}

void ThreadPool::parallel_for(size_t n, size_t grain,
                              const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  // About 4 chunks per thread balances uneven chunks; the split depends only on n, grain and
  // threads_, never on timing.
  size_t target = static_cast<size_t>(threads_) * 4;
  size_t chunk = std::max(grain, (n + target - 1) / target);
  if (threads_ == 1 || chunk >= n || t_in_region) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> call(call_mu_, std::try_to_lock);
  if (!call.owns_lock()) {
    fn(0, n);
    return;
  }
  size_t chunks = (n + chunk - 1) / chunk;
  std::unique_lock<std::mutex> lock(mu_);
  fn_ = &fn;
  n_ = n;
  chunk_ = chunk;
  next_ = 0;
  error_ = nullptr;
  active_ = static_cast<int>(std::min<size_t>(chunks - 1, workers_.size()));
  pending_ = active_;
  ++generation_;
  lock.unlock();
  cv_work_.notify_all();

  t_in_region = true;
  lock.lock();
  while (next_ < n_) {
    size_t begin = next_;
    size_t end = std::min(n_, begin + chunk_);
    next_ = end;
    lock.unlock();
    try {
      fn(begin, end);
    } catch (...) {
      lock.lock();
      if (!error_) error_ = std::current_exception();
      next_ = n_;
      continue;
    }
    lock.lock();
  }
  t_in_region = false;
  cv_done_.wait(lock, [&] { return pending_ == 0; });
  fn_ = nullptr;
  std::exception_ptr err = error_;
  error_ = nullptr;
  lock.unlock();
  if (err) std::rethrow_exception(err);
}

}  // namespace edgert
