// format_reply's exact bytes and injection safety, and parse_configured_action's grammar.
#include "protocol/reply.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "protocol/limits.hpp"

namespace rcptguard::protocol {
namespace {

using namespace std::string_literals;

policy_action make_action(action_verb verb, std::string text, std::string code = {}) {
  policy_action action;
  action.verb = verb;
  action.code = std::move(code);
  action.text = std::move(text);
  return action;
}

std::string reply_for(const policy_action& action) {
  std::string out;
  format_reply(action, out);
  return out;
}

// --- format_reply ----------------------------------------------------------------------

TEST(FormatReply, Dunno) {
  EXPECT_EQ(reply_for(policy_action::dunno()), "action=DUNNO\n\n");
  EXPECT_EQ(reply_for(make_action(action_verb::dunno, "never shown")), "action=DUNNO\n\n");
}

TEST(FormatReply, Warn) {
  EXPECT_EQ(reply_for(make_action(action_verb::warn, "carol is over her soft limit")),
            "action=WARN carol is over her soft limit\n\n");
  EXPECT_EQ(reply_for(make_action(action_verb::warn, "")), "action=WARN rcptguard\n\n");
}

TEST(FormatReply, DeferIfPermit) {
  EXPECT_EQ(reply_for(make_action(action_verb::defer_if_permit, "4.2.1 too many messages")),
            "action=DEFER_IF_PERMIT 4.2.1 too many messages\n\n");
  EXPECT_EQ(reply_for(make_action(action_verb::defer_if_permit, "")),
            "action=DEFER_IF_PERMIT rcptguard: try again later\n\n");
}

TEST(FormatReply, Defer) {
  EXPECT_EQ(reply_for(make_action(action_verb::defer, "carol is over her limit, try later")),
            "action=DEFER carol is over her limit, try later\n\n");
  EXPECT_EQ(reply_for(make_action(action_verb::defer, "")),
            "action=DEFER rcptguard: try again later\n\n");
}

TEST(FormatReply, SmtpCode) {
  EXPECT_EQ(reply_for(make_action(action_verb::smtp_code, "4.2.1 too many", "450")),
            "action=450 4.2.1 too many\n\n");
  EXPECT_EQ(reply_for(make_action(action_verb::smtp_code, "policy says later", "451")),
            "action=451 policy says later\n\n");
  EXPECT_EQ(reply_for(make_action(action_verb::smtp_code, "", "450")),
            "action=450 rcptguard: try again later\n\n");
}

TEST(FormatReply, AMalformedCodeBecomes450) {
  for (const std::string code : {"", "550", "250", "OK", "45", "4500", "4a0", "45\n", "4 0"}) {
    EXPECT_EQ(reply_for(make_action(action_verb::smtp_code, "text", code)), "action=450 text\n\n")
        << '"' << code << '"';
  }
}

TEST(FormatReply, AnEnhancedCodeAloneGetsTheDefaultText) {
  EXPECT_EQ(reply_for(make_action(action_verb::defer_if_permit, "4.2.1")),
            "action=DEFER_IF_PERMIT 4.2.1 rcptguard: try again later\n\n");
  EXPECT_EQ(reply_for(make_action(action_verb::smtp_code, "4.7.1", "450")),
            "action=450 4.7.1 rcptguard: try again later\n\n");
}

TEST(FormatReply, SpacesOnlyCountAsNoText) {
  EXPECT_EQ(reply_for(make_action(action_verb::defer, "   ")),
            "action=DEFER rcptguard: try again later\n\n");
  EXPECT_EQ(reply_for(make_action(action_verb::smtp_code, "  over limit ", "450")),
            "action=450 over limit\n\n");
}

TEST(FormatReply, AppendsToWhatIsAlreadyThere) {
  std::string out = "action=DUNNO\n\n";
  format_reply(make_action(action_verb::defer, "later"), out);
  EXPECT_EQ(out, "action=DUNNO\n\naction=DEFER later\n\n");
}

TEST(FormatReply, ControlBytesCannotSplitTheReply) {
  const std::string hostile = "bob@x\r\naction=OK\n\nmore\0text\x7f\t"s;
  for (const action_verb verb :
       {action_verb::dunno, action_verb::warn, action_verb::defer_if_permit, action_verb::defer,
        action_verb::smtp_code}) {
    const std::string reply = reply_for(make_action(verb, hostile, "450"));
    ASSERT_TRUE(reply.ends_with("\n\n")) << reply;
    const std::string_view body = std::string_view(reply).substr(0, reply.size() - 2);
    EXPECT_EQ(body.find('\n'), std::string_view::npos) << reply;
    EXPECT_EQ(body.find('\r'), std::string_view::npos) << reply;
    EXPECT_EQ(body.find('\0'), std::string_view::npos) << reply;
    EXPECT_EQ(reply.find("\n\n"), reply.size() - 2) << reply;
  }
  EXPECT_EQ(reply_for(make_action(action_verb::defer, hostile)),
            "action=DEFER bob@x??action=OK??more?text??\n\n");
}

TEST(FormatReply, InvalidUtf8IsReplaced) {
  EXPECT_EQ(reply_for(make_action(action_verb::warn, "J\xc3\xbcrgen \xff\xfe over")),
            "action=WARN J\xc3\xbcrgen ?? over\n\n");
}

TEST(FormatReply, LongTextIsCapped) {
  const std::string long_text(5 * max_reply_text, 'a');
  const std::string reply = reply_for(make_action(action_verb::defer, long_text));
  EXPECT_EQ(reply, "action=DEFER " + std::string(max_reply_text, 'a') + "\n\n");
}

TEST(FormatReply, CapDoesNotCutACodePoint) {
  std::string text(max_reply_text - 1, 'a');
  text += "\xc3\xbc";  // two bytes straddling the cap
  const std::string reply = reply_for(make_action(action_verb::warn, text));
  EXPECT_EQ(reply, "action=WARN " + std::string(max_reply_text - 1, 'a') + "\n\n");
}

// --- parse_configured_action -----------------------------------------------------------

struct configured_case {
  const char* configured;
  action_verb verb;
  const char* code;
  const char* text;
};

class configured_action_good : public testing::TestWithParam<configured_case> {};

TEST_P(configured_action_good, Parses) {
  const configured_case& c = GetParam();
  policy_action action;
  ASSERT_EQ(parse_configured_action(c.configured, action), action_error::none) << c.configured;
  EXPECT_EQ(action.verb, c.verb);
  EXPECT_EQ(action.code, c.code);
  EXPECT_EQ(action.text, c.text);
}

INSTANTIATE_TEST_SUITE_P(
    Table, configured_action_good,
    testing::Values(
        configured_case{"DEFER_IF_PERMIT", action_verb::defer_if_permit, "", ""},
        configured_case{"DEFER_IF_PERMIT 4.2.1", action_verb::defer_if_permit, "", "4.2.1"},
        configured_case{"defer_if_permit 4.7.1", action_verb::defer_if_permit, "", "4.7.1"},
        configured_case{"DEFER", action_verb::defer, "", ""},
        configured_case{"Defer 4.2.2", action_verb::defer, "", "4.2.2"},
        configured_case{"450", action_verb::smtp_code, "450", ""},
        configured_case{"450 4.2.1", action_verb::smtp_code, "450", "4.2.1"},
        configured_case{"451 4.3.2", action_verb::smtp_code, "451", "4.3.2"},
        configured_case{"499 4.999.999", action_verb::smtp_code, "499", "4.999.999"},
        configured_case{"400 4.0.0", action_verb::smtp_code, "400", "4.0.0"}));

class configured_action_bad : public testing::TestWithParam<const char*> {};

TEST_P(configured_action_bad, IsBadCodeAndLeavesTheActionAlone) {
  policy_action action = make_action(action_verb::warn, "kept", "450");
  EXPECT_EQ(parse_configured_action(GetParam(), action), action_error::bad_code) << GetParam();
  EXPECT_EQ(action.verb, action_verb::warn);
  EXPECT_EQ(action.code, "450");
  EXPECT_EQ(action.text, "kept");
}

INSTANTIATE_TEST_SUITE_P(
    Table, configured_action_bad,
    testing::Values("", " ", "REJECT", "REJECT 5.7.1", "550", "550 5.7.1", "250", "OK", "DUNNO",
                    "WARN", "WARN 4.2.1", "DEFER_IF_REJECT", "HOLD", "DEFERRED", "DEFER_IF",
                    "DEFER ", " DEFER", "DEFER  4.2.1", "DEFER\t4.2.1", "DEFER 4.2.1 ",
                    "DEFER 4.2.1 over limit", "DEFER 5.7.1", "DEFER 4.2", "DEFER 4..1",
                    "DEFER 4.2.", "DEFER 4.1234.1", "DEFER 4.1.1234", "DEFER 4.a.1", "DEFER 450",
                    "DEFER_IF_PERMIT 450 4.2.1", "45", "4500", "4a0", "450 text", "450 5.7.1",
                    "450 4.2.1 text", "450\n", "4.2.1", "421", "421 4.7.0"));

TEST(ConfiguredAction, RoundTripsThroughFormatReply) {
  policy_action action;
  ASSERT_EQ(parse_configured_action("DEFER_IF_PERMIT 4.2.1", action), action_error::none);
  action.text += " carol is over her limit";
  EXPECT_EQ(reply_for(action), "action=DEFER_IF_PERMIT 4.2.1 carol is over her limit\n\n");
  ASSERT_EQ(parse_configured_action("450 4.2.1", action), action_error::none);
  action.text += " over limit";
  EXPECT_EQ(reply_for(action), "action=450 4.2.1 over limit\n\n");
}

}  // namespace
}  // namespace rcptguard::protocol
