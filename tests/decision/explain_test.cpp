// The numbers in verdict texts: short, and never "0" for a baseline that is merely small.
#include <gtest/gtest.h>

#include <string>

#include "decision/signals.hpp"

namespace rcptguard::decision {
namespace {

std::string shown(double value) {
  std::string out;
  append_number(out, value);
  return out;
}

TEST(AppendNumber, RoundsToWholeNumbersFromTen) {
  EXPECT_EQ(shown(240.0), "240");
  EXPECT_EQ(shown(12.6), "13");
}

TEST(AppendNumber, KeepsOneDecimalBelowTen) {
  EXPECT_EQ(shown(6.0), "6");
  EXPECT_EQ(shown(0.083), "0.1");
  EXPECT_EQ(shown(2.26), "2.3");
}

TEST(AppendNumber, TinyBaselinesKeepTwoSignificantDigits) {
  EXPECT_EQ(shown(0.0042), "0.0042");
  EXPECT_EQ(shown(0.049), "0.049");
  EXPECT_EQ(shown(0.0), "0");
}

}  // namespace
}  // namespace rcptguard::decision
