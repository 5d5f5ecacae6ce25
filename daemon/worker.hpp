// One background thread that runs a round of work at once and then every interval until it is
// stopped: the shape of the daemon's spool scans and followed mail logs. A reload may change the
// interval while the thread waits; a stop ends a wait at once, and a round in progress finishes
// first (rounds are bounded by their own limits).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace rcptguard::daemon {

class periodic_worker {
 public:
  periodic_worker() = default;
  periodic_worker(const periodic_worker&) = delete;
  periodic_worker& operator=(const periodic_worker&) = delete;
  /// stop(): a worker never outlives what its round refers to.
  ~periodic_worker();

  /// Starts the thread; `round` runs at once, then `interval` after the end of each round. An
  /// exception from `round` is the round's own business: catch it there.
  void start(std::chrono::milliseconds interval, std::function<void()> round);

  /// The wait in progress recomputes its deadline from the new interval.
  void set_interval(std::chrono::milliseconds interval);

  /// Asks the thread to finish after the round in progress, without waiting for it.
  void request_stop();

  /// request_stop() and waits for the thread. Calling it again, or before start(), is harmless.
  void stop();

  bool stop_requested() const;
  bool running() const { return thread_.joinable(); }

 private:
  void run();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::chrono::milliseconds interval_{1000};
  bool stopping_ = false;
  std::function<void()> round_;
  std::thread thread_;
};

}  // namespace rcptguard::daemon
