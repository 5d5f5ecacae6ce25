#include "daemon/worker.hpp"

#include <utility>

namespace rcptguard::daemon {

periodic_worker::~periodic_worker() {
  stop();
}

void periodic_worker::start(std::chrono::milliseconds interval, std::function<void()> round) {
  if (thread_.joinable()) return;
  {
    const std::lock_guard lock(mutex_);
    interval_ = interval;
    stopping_ = false;
  }
  round_ = std::move(round);
  thread_ = std::thread([this] { run(); });
}

void periodic_worker::set_interval(std::chrono::milliseconds interval) {
  {
    const std::lock_guard lock(mutex_);
    interval_ = interval;
  }
  wake_.notify_all();
}

void periodic_worker::request_stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

void periodic_worker::stop() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

bool periodic_worker::stop_requested() const {
  const std::lock_guard lock(mutex_);
  return stopping_;
}

void periodic_worker::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    round_();
    const auto round_end = std::chrono::steady_clock::now();
    lock.lock();
    // The deadline is read afresh after every wake-up: a reload may have changed the interval.
    while (!stopping_ && std::chrono::steady_clock::now() < round_end + interval_) {
      wake_.wait_until(lock, round_end + interval_);
    }
  }
}

}  // namespace rcptguard::daemon
