// The learned baseline: seasonality, robustness to past floods, cold start, rise cap, ceiling.
#include "decision/baseline.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

namespace rcptguard::decision {
namespace {

constexpr std::int64_t monday = 1699833600;  // 2023-11-13 00:00 UTC
constexpr std::int64_t hour = 3600;

// `hours` of history ending just before `now`, with `per_hour(i)` RCPTs in hour i (0 = oldest).
std::vector<hourly_count> history(std::int64_t now, int hours,
                                  const std::function<double(int)>& per_hour) {
  std::vector<hourly_count> out;
  const std::int64_t first = now / hour * hour - std::int64_t{hours} * hour;
  for (int i = 0; i < hours; ++i) {
    const double v = per_hour(i);
    if (v <= 0) continue;  // the store keeps only hours with traffic
    hourly_count h;
    h.hour_start = first + std::int64_t{i} * hour;
    h.attempted = static_cast<std::uint32_t>(std::lround(v));
    h.accepted = h.attempted;
    h.distinct_senders = std::max<std::uint32_t>(1, h.attempted / 2);
    out.push_back(h);
  }
  return out;
}

const baseline_settings config{};
const baseline_prior prior{};

TEST(Baseline, NoHistoryIsThePrior) {
  const baseline b = compute_baseline({}, monday + 4 * 7 * 24 * hour, prior, config, 250);
  EXPECT_EQ(b.history_hours, 0U);
  EXPECT_DOUBLE_EQ(b.hourly, prior.hourly);
  EXPECT_DOUBLE_EQ(b.daily, prior.daily);
}

TEST(Baseline, SteadyMailboxLearnsItsLevel) {
  const std::int64_t now = monday + 4 * 7 * 24 * hour;
  const auto h = history(now, 4 * 168, [](int) { return 120.0; });
  const baseline b = compute_baseline(h, now, prior, config, 250);
  EXPECT_NEAR(b.hourly, 120.0, 1e-9);
  EXPECT_NEAR(b.spread, 0.0, 1e-9);
  EXPECT_NEAR(b.daily, 24 * 120.0, 1e-9);
  EXPECT_NEAR(b.senders_hourly, 60.0, 1e-9);
}

TEST(Baseline, HourOfDayAware) {
  // 50 an hour from 09:00 to 17:00, 1 otherwise.
  const std::int64_t now_day = monday + 3 * 7 * 24 * hour;
  const auto per_hour = [](int i) { return (i % 24 >= 9 && i % 24 < 17) ? 50.0 : 1.0; };
  const auto h = history(now_day + 10 * hour, 3 * 168 + 10, per_hour);
  const baseline busy = compute_baseline(h, now_day + 10 * hour, prior, config, 250);
  const auto h_night = history(now_day + 2 * hour, 3 * 168 + 2, per_hour);
  const baseline night = compute_baseline(h_night, now_day + 2 * hour, prior, config, 250);
  EXPECT_NEAR(busy.hourly, 50.0, 1e-9);
  EXPECT_NEAR(night.hourly, 1.0, 1e-9);
}

TEST(Baseline, PastFloodDoesNotRaiseIt) {
  const std::int64_t now = monday + 4 * 7 * 24 * hour;
  // 10 an hour, but a whole flooded day (500 an hour) two weeks ago and a flooded hour yesterday.
  const auto h = history(now, 4 * 168, [](int i) {
    if (i >= 2 * 168 && i < 2 * 168 + 24) return 500.0;
    if (i == 4 * 168 - 24) return 2000.0;
    return 10.0;
  });
  const baseline b = compute_baseline(h, now, prior, config, 250);
  EXPECT_NEAR(b.hourly, 10.0, 1e-9);
  EXPECT_NEAR(b.daily, 240.0, 1e-9);
}

TEST(Baseline, ColdStartBlendsWithThePrior) {
  const std::int64_t now = monday + 12 * hour;
  const auto h = history(now, 12, [](int) { return 100.0; });
  const baseline b = compute_baseline(h, now, prior, config, 250);
  const double w = 12.0 / 24.0;  // of cold_start_hours
  EXPECT_EQ(b.history_hours, 12U);
  EXPECT_NEAR(b.hourly, w * 100.0 + (1 - w) * prior.hourly, 1e-9);
  // From the second day a busy account is judged by its own volume alone.
  const std::int64_t later = monday + 30 * hour;
  const baseline own =
      compute_baseline(history(later, 30, [](int) { return 100.0; }), later, prior, config, 250);
  EXPECT_NEAR(own.hourly, 100.0, 1e-9);
}

TEST(Baseline, SlowRampIsCappedPerDay) {
  // Exponential ramp from 5 to 40,000 an hour over four weeks (about +38 % a day, faster than
  // the 25 % cap).
  const std::int64_t now = monday + 4 * 7 * 24 * hour;
  const int hours = 4 * 168;
  const auto ramp = [&](int i) { return 5.0 * std::pow(8000.0, static_cast<double>(i) / hours); };
  const auto h = history(now, hours, ramp);
  const baseline b = compute_baseline(h, now, prior, config, 1e9);
  // The first full week ends at day 7; from there 21 days of at most +25 %.
  const double first_week_level = ramp(168);
  const double cap = first_week_level * std::pow(1.0 + config.max_rise_per_day, 21);
  EXPECT_LE(b.hourly, cap);
  EXPECT_LT(b.hourly, 0.5 * ramp(hours - 1));
  EXPECT_LE(b.daily, 24.0 * cap);
  EXPECT_LE(b.spread, b.hourly);
  // Without the cap the same history would have been learned almost entirely.
  baseline_settings uncapped = config;
  uncapped.max_rise_per_day = 1e9;
  EXPECT_GT(compute_baseline(h, now, prior, uncapped, 1e9).hourly, 1.5 * b.hourly);
}

TEST(Baseline, CeilingHoldsUnlessRaised) {
  const std::int64_t now = monday + 4 * 7 * 24 * hour;
  const auto h = history(now, 4 * 168, [](int) { return 2000.0; });
  EXPECT_DOUBLE_EQ(compute_baseline(h, now, prior, config, 250).hourly, 250.0);
  EXPECT_NEAR(compute_baseline(h, now, prior, config, 5000).hourly, 2000.0, 1e-9);
}

TEST(Prior, QuantileOfRecipientMeans) {
  const std::int64_t now = monday + 2 * 7 * 24 * hour;
  std::vector<recipient_history> all;
  for (int r = 0; r < 30; ++r) {
    recipient_history one;
    one.recipient = "r" + std::to_string(r) + "@example.test";
    one.hours = history(now, 2 * 168, [r](int) { return r < 20 ? 2.0 : 50.0; });
    all.push_back(one);
  }
  const baseline_prior p = compute_prior(all, now, config, prior);
  EXPECT_NEAR(p.hourly, 2.0, 1e-9);
  EXPECT_NEAR(p.daily, 48.0, 1e-9);
  // Too few recipients: keep the previous prior.
  all.resize(5);
  EXPECT_DOUBLE_EQ(compute_prior(all, now, config, prior).hourly, prior.hourly);
}

}  // namespace
}  // namespace rcptguard::decision
