#include "common/text.hpp"

#include <gtest/gtest.h>

namespace rcptguard {
namespace {

TEST(SanitizeForLog, ReplacesControlAndNonAsciiBytes) {
  EXPECT_EQ(sanitize_for_log("a\nb\r\x01\xff"), "a?b???");
}

TEST(SanitizeForLog, MarksTruncation) {
  EXPECT_EQ(sanitize_for_log("abcdef", 3), "abc...");
  EXPECT_EQ(sanitize_for_log("abc", 3), "abc");
}

TEST(SanitizeForReply, KeepsValidUtf8AndReplacesInvalid) {
  EXPECT_EQ(sanitize_for_reply("J\xc3\xbcrgen", 100), "J\xc3\xbcrgen");
  EXPECT_EQ(sanitize_for_reply("a\xc3(b", 100), "a?(b");
  EXPECT_EQ(sanitize_for_reply("\xed\xa0\x80", 100), "???");  // a UTF-16 surrogate
  EXPECT_EQ(sanitize_for_reply("\xc0\xaf", 100), "??");       // overlong '/'
}

TEST(SanitizeForReply, NeverLetsALineBreakThrough) {
  EXPECT_EQ(sanitize_for_reply("bob@x\r\naction=OK", 100), "bob@x??action=OK");
}

TEST(SanitizeForReply, CutsOnACodePointBoundary) {
  EXPECT_EQ(sanitize_for_reply("ab\xc3\xbc", 3), "ab");
  EXPECT_EQ(sanitize_for_reply("ab\xc3\xbc", 4), "ab\xc3\xbc");
}

TEST(AsciiLower, FoldsOnlyAscii) {
  EXPECT_EQ(ascii_lower("Bob@EXAMPLE.test\xc3\x9c"), "bob@example.test\xc3\x9c");
}

}  // namespace
}  // namespace rcptguard
