// daemon/worker.hpp: the first round runs at once, a reload's interval reaches a wait in
// progress, and a stop ends a wait at once. No test here depends on how fast the machine is:
// the long interval is an hour, so only a wake-up can explain what is observed.
#include "daemon/worker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace rcptguard::daemon {
namespace {

using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return condition();
}

TEST(PeriodicWorker, FirstRoundAtOnceThenAStopEndsTheWait) {
  std::atomic<int> rounds{0};
  periodic_worker worker;
  worker.start(1h, [&] { ++rounds; });
  ASSERT_TRUE(eventually([&] { return rounds.load() == 1; }));
  EXPECT_TRUE(worker.running());
  worker.stop();  // returns although the next round is an hour away
  EXPECT_FALSE(worker.running());
  EXPECT_EQ(rounds.load(), 1);
  worker.stop();  // harmless twice
}

TEST(PeriodicWorker, ANewIntervalReachesTheWaitInProgress) {
  std::atomic<int> rounds{0};
  periodic_worker worker;
  worker.start(1h, [&] { ++rounds; });
  ASSERT_TRUE(eventually([&] { return rounds.load() == 1; }));
  worker.set_interval(1ms);
  EXPECT_TRUE(eventually([&] { return rounds.load() >= 3; }));
}

TEST(PeriodicWorker, ARoundSeesTheStopRequestAndStopWaitsForIt) {
  std::atomic<bool> entered{false};
  std::atomic<bool> finished{false};
  std::atomic<int> second{0};
  periodic_worker worker;
  worker.start(1h, [&] {
    entered = true;
    while (!worker.stop_requested()) std::this_thread::sleep_for(1ms);
    finished = true;
  });
  worker.start(1ms, [&] { ++second; });  // already running: ignored
  ASSERT_TRUE(eventually([&] { return entered.load(); }));
  worker.stop();
  EXPECT_TRUE(finished.load());
  EXPECT_EQ(second.load(), 0);
}

}  // namespace
}  // namespace rcptguard::daemon
