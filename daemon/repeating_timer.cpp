#include "daemon/repeating_timer.hpp"

#include <utility>

namespace rcptguard::daemon {

void repeating_timer::start(std::chrono::milliseconds interval, std::function<void()> tick) {
  stop();
  interval_ = interval;
  tick_ = std::move(tick);
  running_ = true;
  arm();
}

void repeating_timer::stop() {
  running_ = false;
  ++generation_;
  timer_.cancel();
}

void repeating_timer::arm() {
  timer_.expires_after(interval_);
  timer_.async_wait([this, armed = generation_](const boost::system::error_code& ec) {
    if (ec || !running_ || armed != generation_) return;
    tick_();
    // The tick may have stopped or restarted this timer.
    if (running_ && armed == generation_) arm();
  });
}

}  // namespace rcptguard::daemon
