// How long a sleeping thread takes to start running once woken: what the first split op of a run
// waits for when the session's workers went to sleep after the previous run (edgert's pool
// spins only while a run is active). A worker blocks on a condition variable; the main thread
// sleeps `gap` microseconds, notifies, and spins until the worker has stamped the time.
// Build and run:  g++ -O2 -pthread wake_latency.cpp && ./a.out
// Prints, for each gap, the median and p90 latency in microseconds over 200 wake-ups.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;

int main() {
  std::mutex mu;
  std::condition_variable cv;
  long go = 0;                          // guarded by mu; -1 stops the worker
  std::atomic<int64_t> woke{0};         // the worker's clock when it ran, 0 until then
  std::thread worker([&] {
    long seen = 0;
    for (;;) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return go != seen; });
      seen = go;
      if (seen < 0) return;
      woke.store(Clock::now().time_since_epoch().count(), std::memory_order_release);
    }
  });
  for (int gap_us : {0, 100, 1000, 10000}) {
    std::vector<double> lat;
    for (int i = 0; i < 200; ++i) {
      std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
      woke.store(0);
      const int64_t t0 = Clock::now().time_since_epoch().count();
      {
        std::lock_guard<std::mutex> lock(mu);
        ++go;
      }
      cv.notify_one();
      int64_t t1;
      while ((t1 = woke.load(std::memory_order_acquire)) == 0) {
      }
      lat.push_back(std::chrono::duration<double, std::micro>(Clock::duration(t1 - t0)).count());
    }
    std::sort(lat.begin(), lat.end());
    std::printf("idle %5d us before the wake-up: latency median %7.1f us, p90 %7.1f us\n", gap_us,
                lat[lat.size() / 2], lat[lat.size() * 9 / 10]);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    go = -1;
  }
  cv.notify_one();
  worker.join();
}
