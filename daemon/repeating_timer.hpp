// A task the network thread runs every interval (the daemon's housekeeping and its SUMMARY line)
// until stopped or restarted.
//
// Why not a bare steady_timer re-armed from its own handler: Asio's cancel() cannot recall a
// completion that is already queued. A stop that lands between the expiry and its handler (two
// events in one pass of the loop, e.g. SIGTERM and a housekeeping tick) would see the handler run
// with success and re-arm, so io_context::run() never returns and the daemon hangs at shutdown;
// a restart in that gap would leave two chains ticking. Here each arming carries a generation,
// and a completion from an older one does nothing.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

namespace rcptguard::daemon {

class repeating_timer {
 public:
  explicit repeating_timer(boost::asio::io_context& io) : timer_(io) {}
  repeating_timer(const repeating_timer&) = delete;
  repeating_timer& operator=(const repeating_timer&) = delete;

  /// Runs `tick` `interval` from now and then every `interval` after each tick ends; replaces
  /// any earlier start. On the io_context's thread only, like every call here.
  void start(std::chrono::milliseconds interval, std::function<void()> tick);

  /// No tick runs after this returns, even one whose expiry is already queued.
  void stop();

 private:
  void arm();

  boost::asio::steady_timer timer_;
  std::chrono::milliseconds interval_{};
  std::function<void()> tick_;
  std::uint64_t generation_ = 0;
  bool running_ = false;
};

}  // namespace rcptguard::daemon
