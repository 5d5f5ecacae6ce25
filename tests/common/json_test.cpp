// common/json.hpp: whatever bytes a sender puts into an address, a dumped line is valid JSON on
// one line, and values JSON cannot express become null.
#include "common/json.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace rcptguard {
namespace {

std::string quoted(const std::string& text) {
  return dump_json(json(text));
}

TEST(Json, EscapesWhatJsonRequires) {
  EXPECT_EQ(quoted("plain"), "\"plain\"");
  EXPECT_EQ(quoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(quoted("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(quoted(std::string{"\x00\x01\x1f", 3}), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7\"");  // valid UTF-8 kept
  EXPECT_EQ(quoted(""), "\"\"");
}

TEST(Json, InvalidUtf8IsReplacedNeverThrown) {
  const std::string replacement = "\xef\xbf\xbd";  // U+FFFD
  EXPECT_EQ(quoted("a\xffz"), "\"a" + replacement + "z\"");
  EXPECT_EQ(quoted("\xc3"), "\"" + replacement + "\"");  // truncated sequence
  // A quote byte never hides inside a broken sequence.
  EXPECT_EQ(quoted("\xc3\x22"), "\"" + replacement + "\\\"\"");
  EXPECT_NO_THROW(quoted("\xed\xa0\x80"));                     // surrogate
  EXPECT_EQ(quoted("\xc0\xaf").find('/'), std::string::npos);  // overlong '/' is not a '/'
  for (int byte = 0; byte < 256; ++byte) {
    const std::string one(1, static_cast<char>(byte));
    const std::string out = quoted(one);
    EXPECT_EQ(out.find('\n'), std::string::npos) << byte;
    EXPECT_NO_THROW((void)json::parse(out)) << byte;
  }
}

TEST(Json, KeysKeepTheirOrderAndNonFiniteNumbersAreNull) {
  const json object = {{"type", "episode"},
                       {"score", std::numeric_limits<double>::quiet_NaN()},
                       {"baseline", std::numeric_limits<double>::infinity()},
                       {"observed", 12.5},
                       {"attack", {"T1667", "AN1009"}}};
  EXPECT_EQ(dump_json(object), R"({"type":"episode","score":null,"baseline":null,"observed":12.5,)"
                               R"("attack":["T1667","AN1009"]})");
}

}  // namespace
}  // namespace rcptguard
