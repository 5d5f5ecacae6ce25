// Duration spelling: every unit, the bare-seconds form, and what must be refused.
#include "config/duration.hpp"

#include <gtest/gtest.h>

namespace rcptguard {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

TEST(ParseDuration, AcceptsEveryUnit) {
  EXPECT_EQ(parse_duration("500ms"), milliseconds{500});
  EXPECT_EQ(parse_duration("10s"), 10s);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("2h"), 2h);
  EXPECT_EQ(parse_duration("60d"), 60 * 24h);
  EXPECT_EQ(parse_duration("0s"), 0s);
}

TEST(ParseDuration, ANumberWithoutUnitIsSeconds) {
  EXPECT_EQ(parse_duration("30"), 30s);
}

TEST(ParseDuration, RefusesEverythingElse) {
  for (const char* bad : {"", "s", "10x", "1.5s", "-1s", "+1s", "10 s", " 10s", "10s ", "10S",
                          "10sec", "1h30m", "0x10s"}) {
    EXPECT_EQ(parse_duration(bad), std::nullopt) << bad;
  }
}

TEST(ParseDuration, RefusesWhatDoesNotFit) {
  EXPECT_EQ(parse_duration("9223372036854775807ms"), milliseconds{9223372036854775807});
  EXPECT_EQ(parse_duration("9223372036854775808ms"), std::nullopt);
  EXPECT_TRUE(parse_duration("106751991167d"));
  EXPECT_EQ(parse_duration("106751991168d"), std::nullopt);
  EXPECT_EQ(parse_duration("99999999999999999999999999s"), std::nullopt);
}

TEST(FormatDuration, UsesTheLargestExactUnit) {
  EXPECT_EQ(format_duration(0ms), "0s");
  EXPECT_EQ(format_duration(1500ms), "1500ms");
  EXPECT_EQ(format_duration(300s), "5m");
  EXPECT_EQ(format_duration(90min), "90m");
  EXPECT_EQ(format_duration(24h), "1d");
  EXPECT_EQ(format_duration(3650 * 24h), "3650d");
}

TEST(FormatDuration, RoundTripsThroughParse) {
  for (const milliseconds d : {1ms, 999ms, 1000ms, 61000ms, 3600000ms, 86399999ms}) {
    EXPECT_EQ(parse_duration(format_duration(d)), d) << d.count();
  }
}

}  // namespace
}  // namespace rcptguard
