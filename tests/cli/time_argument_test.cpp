// --since/--until values: every accepted form, the local time zone across DST changes (TZ set
// explicitly), and what is refused.
#include "cli/time_argument.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>

#include "tests/cli/cli_test_support.hpp"

namespace rcptguard::cli {
namespace {

using zone = testing::time_zone;

constexpr std::int64_t now = 1727784000;  // 2024-10-01T12:00:00Z

std::int64_t at(std::string_view text) {
  const time_argument t = parse_time_argument(text, now);
  EXPECT_TRUE(t.unix_seconds.has_value()) << text << ": " << t.problem;
  return t.unix_seconds.value_or(-1);
}

TEST(TimeArgument, DurationsAreBackFromNow) {
  EXPECT_EQ(at("7d"), now - 7 * 86400);
  EXPECT_EQ(at("24h"), now - 86400);
  EXPECT_EQ(at("90m"), now - 5400);
  EXPECT_EQ(at("30s"), now - 30);
  EXPECT_EQ(at("0s"), now);
}

TEST(TimeArgument, UtcAndOffsets) {
  const zone berlin("Europe/Berlin");  // must not matter
  EXPECT_EQ(at("2024-10-01T14:00Z"), 1727791200);
  EXPECT_EQ(at("2024-10-01T14:00:30Z"), 1727791230);
  EXPECT_EQ(at("2024-10-01 14:00z"), 1727791200);
  EXPECT_EQ(at("2024-10-01T16:00+02:00"), 1727791200);
  EXPECT_EQ(at("2024-10-01T09:30-04:30"), 1727791200);
  EXPECT_EQ(at("2024-10-01t14:00:00+00:00"), 1727791200);
  EXPECT_EQ(at("2024-02-29T00:00Z"), 1709164800);  // a leap day
}

TEST(TimeArgument, LocalTimeFollowsTz) {
  {
    const zone utc("UTC");
    EXPECT_EQ(at("2024-10-01"), 1727740800);
    EXPECT_EQ(at("2024-10-01T14:00"), 1727791200);
  }
  {
    const zone berlin("Europe/Berlin");  // CEST, +02:00
    EXPECT_EQ(at("2024-10-01"), 1727740800 - 7200);
    EXPECT_EQ(at("2024-10-01T14:00"), 1727791200 - 7200);
    EXPECT_EQ(at("2024-10-01 14:00"), 1727791200 - 7200);
    EXPECT_EQ(at("2024-10-01T14:00:30"), 1727791230 - 7200);
    EXPECT_EQ(at("2024-12-01T14:00"), at("2024-12-01T13:00Z"));  // CET, +01:00
  }
  {
    const zone new_york("America/New_York");  // EDT, -04:00
    EXPECT_EQ(at("2024-10-01T14:00"), 1727791200 + 4 * 3600);
  }
}

TEST(TimeArgument, DstChangesInBerlin) {
  const zone berlin("Europe/Berlin");
  // 2024-03-31: at 02:00 CET the clock jumps to 03:00 CEST. A day that is 23 hours long.
  EXPECT_EQ(at("2024-03-31T01:59:59"), at("2024-03-31T00:59:59Z"));
  EXPECT_EQ(at("2024-03-31T03:00"), at("2024-03-31T01:00Z"));
  EXPECT_EQ(at("2024-04-01") - at("2024-03-31"), 23 * 3600);
  const time_argument skipped = parse_time_argument("2024-03-31T02:30", now);
  EXPECT_FALSE(skipped.unix_seconds.has_value());
  EXPECT_NE(skipped.problem.find("does not exist"), std::string::npos) << skipped.problem;
  // 2024-10-27: at 03:00 CEST the clock goes back to 02:00 CET; 02:30 happens twice, and the
  // earlier one (CEST) is taken. That day is 25 hours long.
  EXPECT_EQ(at("2024-10-27T02:30"), at("2024-10-27T00:30Z"));
  EXPECT_EQ(at("2024-10-27T03:00"), at("2024-10-27T02:00Z"));
  EXPECT_EQ(at("2024-10-28") - at("2024-10-27"), 25 * 3600);
}

TEST(TimeArgument, MalformedIsRefused) {
  const zone utc("UTC");
  for (const char* bad : {"",
                          "yesterday",
                          "7 d",
                          "-7d",
                          "2024-10-1",
                          "24-10-01",
                          "2024/10/01",
                          "2024-13-01",
                          "2024-02-30",
                          "2023-02-29",
                          "2024-10-01T",
                          "2024-10-01T14",
                          "2024-10-01T24:00",
                          "2024-10-01T14:60",
                          "2024-10-01T14:00:60",
                          "2024-10-01T14:00:00.5",
                          "2024-10-01T14:00+2",
                          "2024-10-01T14:00+0200",
                          "2024-10-01T14:00+24:00",
                          "2024-10-01T14:00Z ",
                          " 2024-10-01",
                          "2024-10-01Z",
                          "1969-12-31T23:59Z",
                          "2024-10-01T14:00ZZ",
                          "2024-10-01  14:00"}) {
    const time_argument t = parse_time_argument(bad, now);
    EXPECT_FALSE(t.unix_seconds.has_value()) << '\'' << bad << '\'';
    EXPECT_EQ(t.problem, "malformed") << '\'' << bad << '\'';
  }
}

}  // namespace
}  // namespace rcptguard::cli
