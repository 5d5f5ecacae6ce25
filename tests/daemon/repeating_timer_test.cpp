// daemon/repeating_timer.hpp: ticks repeat; a stop or restart that lands after the expiry was
// queued but before its handler ran is still final (the shutdown hang this class exists for).
#include "daemon/repeating_timer.hpp"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <thread>

namespace rcptguard::daemon {
namespace {

using std::chrono::milliseconds;

TEST(RepeatingTimer, TicksUntilStoppedFromItsOwnTick) {
  boost::asio::io_context io;
  repeating_timer timer(io);
  int ticks = 0;
  timer.start(milliseconds(1), [&] {
    if (++ticks == 3) timer.stop();
  });
  io.run_for(std::chrono::seconds(10));
  EXPECT_EQ(ticks, 3);
  EXPECT_TRUE(io.stopped()) << "work left after the stop";
}

// The timer has expired before the loop runs, and the stop is posted first: one pass of the
// reactor queues the expiry behind the stop, so cancel() finds nothing to cancel and the
// completion arrives with success. It must neither tick nor re-arm, or run() never returns.
TEST(RepeatingTimer, AStopAfterTheExpiryWasQueuedIsFinal) {
  for (int round = 0; round < 20; ++round) {
    boost::asio::io_context io;
    repeating_timer timer(io);
    int ticks = 0;
    timer.start(milliseconds(0), [&] { ++ticks; });
    std::this_thread::sleep_for(milliseconds(2));
    boost::asio::post(io, [&] { timer.stop(); });
    io.run_for(std::chrono::seconds(2));
    EXPECT_EQ(ticks, 0) << "round " << round;
    ASSERT_TRUE(io.stopped()) << "round " << round << ": the timer re-armed after its stop";
  }
}

// A restart (a reload's new interval) in the same gap: the old chain ends, only the new ticks.
TEST(RepeatingTimer, ARestartAfterTheExpiryWasQueuedLeavesOneChain) {
  boost::asio::io_context io;
  repeating_timer timer(io);
  int old_ticks = 0;
  int new_ticks = 0;
  timer.start(milliseconds(0), [&] { ++old_ticks; });
  std::this_thread::sleep_for(milliseconds(2));
  boost::asio::post(io, [&] {
    timer.start(milliseconds(1), [&] {
      if (++new_ticks == 5) timer.stop();
    });
  });
  io.run_for(std::chrono::seconds(10));
  EXPECT_EQ(old_ticks, 0);
  EXPECT_EQ(new_ticks, 5);
  EXPECT_TRUE(io.stopped());
}

}  // namespace
}  // namespace rcptguard::daemon
