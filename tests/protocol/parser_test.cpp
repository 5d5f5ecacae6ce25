// request_parser: framing, typed attributes, error kinds, each limit at its edge, and
// independence from how the bytes are split across reads.
#include "protocol/parser.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace rcptguard::protocol {
namespace {

using namespace std::string_literals;

constexpr std::string_view request_line = "request=smtpd_access_policy\n";

std::string with_request_line(std::string_view lines) {
  return std::string(request_line).append(lines);
}

struct outcome {
  parse_status status = parse_status::need_more;
  parse_error error = parse_error::none;
  std::size_t consumed = 0;  ///< over all feeds
  policy_request request;
};

// Feeds `input` in pieces ending at the given offsets (then the rest), stopping at the first
// result that is not need_more, as a connection's read loop would.
outcome feed_split(std::string_view input, const std::vector<std::size_t>& cuts,
                   limits bounds = {}) {
  request_parser parser(bounds);
  outcome result;
  std::size_t start = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  for (const std::size_t end : ends) {
    const parse_result step = parser.feed(input.substr(start, end - start), result.request);
    result.consumed += step.consumed;
    result.status = step.status;
    result.error = step.error;
    if (step.status != parse_status::need_more) break;
    EXPECT_EQ(step.consumed, end - start);
    start = end;
  }
  return result;
}

outcome feed_whole(std::string_view input, limits bounds = {}) {
  return feed_split(input, {}, bounds);
}

outcome feed_bytewise(std::string_view input, limits bounds = {}) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
  return feed_split(input, cuts, bounds);
}

void expect_same(const outcome& expected, const outcome& actual) {
  EXPECT_EQ(actual.status, expected.status);
  EXPECT_EQ(actual.error, expected.error);
  EXPECT_EQ(actual.consumed, expected.consumed);
  EXPECT_EQ(actual.request, expected.request);
}

// A request of exactly `total` bytes, padded with unknown attributes of at most `max_line`.
std::string request_of_size(std::size_t total, std::size_t max_line) {
  std::string out(request_line);
  std::size_t remaining = total - out.size() - 1;
  constexpr std::size_t shortest_line = 3;  // "p=\n"
  while (remaining > 0) {
    std::size_t line = std::min(remaining, max_line + 1);
    if (remaining - line > 0 && remaining - line < shortest_line) line = remaining - shortest_line;
    out.append("p=").append(line - shortest_line, 'a').append("\n");
    remaining -= line;
  }
  out.append("\n");
  return out;
}

// --- well-formed input -----------------------------------------------------------------

TEST(RequestParser, ParsesAMinimalRequest) {
  const outcome result = feed_whole("request=smtpd_access_policy\n\n");
  EXPECT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.error, parse_error::none);
  EXPECT_EQ(result.consumed, 29U);
  EXPECT_EQ(result.request.request, "smtpd_access_policy");
  EXPECT_EQ(result.request.state, protocol_state::unknown);
}

TEST(RequestParser, RecognisesEveryPostfixAttribute) {
  const outcome result = feed_whole(
      "request=smtpd_access_policy\n"
      "protocol_state=RCPT\n"
      "protocol_name=ESMTP\n"
      "helo_name=client.example.test\n"
      "queue_id=AC3C110A0B8\n"
      "sender=sender@remote.example\n"
      "recipient=alice@example.test\n"
      "recipient_count=7\n"
      "client_address=192.0.2.1\n"
      "client_name=client.example.test\n"
      "reverse_client_name=ptr.example.test\n"
      "instance=2f5f.6b08d7af.aa4ee.0\n"
      "sasl_method=PLAIN\n"
      "sasl_username=alice\n"
      "sasl_sender=owner@example.test\n"
      "size=12345678901\n"
      "ccert_subject=subject\n"
      "ccert_issuer=issuer\n"
      "ccert_fingerprint=AA:BB\n"
      "encryption_protocol=TLSv1.3\n"
      "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
      "encryption_keysize=256\n"
      "etrn_domain=example.test\n"
      "stress=yes\n"
      "ccert_pubkey_fingerprint=CC:DD\n"
      "client_port=58280\n"
      "policy_context=submission\n"
      "server_address=2001:db8::1\n"
      "server_port=2525\n"
      "compatibility_level=3.6\n"
      "mail_version=3.12.0\n"
      "tls_sni=mx.example.test\n"
      "\n");
  ASSERT_EQ(result.status, parse_status::complete);
  const policy_request& r = result.request;
  EXPECT_EQ(r.request, "smtpd_access_policy");
  EXPECT_EQ(r.state, protocol_state::rcpt);
  EXPECT_EQ(r.protocol_name, "ESMTP");
  EXPECT_EQ(r.helo_name, "client.example.test");
  EXPECT_EQ(r.queue_id, "AC3C110A0B8");
  EXPECT_EQ(r.sender, "sender@remote.example");
  EXPECT_EQ(r.recipient, "alice@example.test");
  EXPECT_EQ(r.recipient_count, 7U);
  EXPECT_EQ(r.client_address, "192.0.2.1");
  EXPECT_EQ(r.client_name, "client.example.test");
  EXPECT_EQ(r.reverse_client_name, "ptr.example.test");
  EXPECT_EQ(r.instance, "2f5f.6b08d7af.aa4ee.0");
  EXPECT_EQ(r.sasl_method, "PLAIN");
  EXPECT_EQ(r.sasl_username, "alice");
  EXPECT_EQ(r.sasl_sender, "owner@example.test");
  EXPECT_EQ(r.size, 12345678901U);
  EXPECT_EQ(r.ccert_subject, "subject");
  EXPECT_EQ(r.ccert_issuer, "issuer");
  EXPECT_EQ(r.ccert_fingerprint, "AA:BB");
  EXPECT_EQ(r.encryption_protocol, "TLSv1.3");
  EXPECT_EQ(r.encryption_cipher, "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(r.encryption_keysize, 256U);
  EXPECT_EQ(r.etrn_domain, "example.test");
  EXPECT_TRUE(r.stress);
  EXPECT_EQ(r.ccert_pubkey_fingerprint, "CC:DD");
  EXPECT_EQ(r.client_port, 58280U);
  EXPECT_EQ(r.policy_context, "submission");
  EXPECT_EQ(r.server_address, "2001:db8::1");
  EXPECT_EQ(r.server_port, 2525U);
  EXPECT_EQ(r.compatibility_level, "3.6");
  EXPECT_EQ(r.mail_version, "3.12.0");
  EXPECT_EQ(r.tls_sni, "mx.example.test");
  EXPECT_TRUE(r.unknown.empty());
}

TEST(RequestParser, EmptyNumbersAreZero) {
  const outcome result = feed_whole(with_request_line(
      "recipient_count=\nsize=\nencryption_keysize=\nclient_port=\nserver_port=\n\n"));
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.request, feed_whole(with_request_line("\n")).request);
}

TEST(RequestParser, NumbersAcceptTheirFullRange) {
  const outcome result = feed_whole(with_request_line(
      "recipient_count=4294967295\nsize=18446744073709551615\nencryption_keysize=0\n"
      "client_port=65535\nserver_port=00025\n\n"));
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.request.recipient_count, 4294967295U);
  EXPECT_EQ(result.request.size, 18446744073709551615U);
  EXPECT_EQ(result.request.encryption_keysize, 0U);
  EXPECT_EQ(result.request.client_port, 65535U);
  EXPECT_EQ(result.request.server_port, 25U);
}

// Every numeric attribute of the protocol, with what Postfix's source can put there: nothing, 0,
// "unknown" (client_port and server_port behind postscreen or XCLIENT), the largest value, a
// port XCLIENT lets through (99999), and garbage. A value is never a reason to refuse the
// request: what is not a decimal in range is kept as 0, "unknown", and the rest of the request
// is parsed as usual.
struct number_attribute {
  const char* name;
  std::uint64_t max = 0;  ///< of the field's type
  std::uint64_t (*read)(const policy_request&) = nullptr;
};

TEST(RequestParser, NumbersThatAreNotDecimalsInRangeAreUnknown) {
  const std::vector<number_attribute> attributes{
      {"recipient_count", 4294967295U,
       [](const policy_request& r) -> std::uint64_t { return r.recipient_count; }},
      {"size", 18446744073709551615U,
       [](const policy_request& r) -> std::uint64_t { return r.size; }},
      {"encryption_keysize", 4294967295U,
       [](const policy_request& r) -> std::uint64_t { return r.encryption_keysize; }},
      {"client_port", 65535U,
       [](const policy_request& r) -> std::uint64_t { return r.client_port; }},
      {"server_port", 65535U,
       [](const policy_request& r) -> std::uint64_t { return r.server_port; }},
  };
  for (const number_attribute& a : attributes) {
    const std::string max = std::to_string(a.max);
    std::string over = max;
    for (std::size_t i = over.size(); i-- > 0;) {  // max + 1 in decimal, without overflow
      if (over[i] != '9') {
        ++over[i];
        break;
      }
      over[i] = '0';
      if (i == 0) over.insert(0, "1");
    }
    struct value_case {
      std::string text;
      std::uint64_t want;
    };
    const std::vector<value_case> values{
        {"", 0},
        {"0", 0},
        {"unknown", 0},
        {"UNKNOWN", 0},
        {"1", 1},
        {"00025", 25},
        {"25\r", 25},  // CRLF framing: the CR is not part of the value
        {max, a.max},
        {over, 0},
        {"99999", a.max >= 99999 ? 99999U : 0U},
        {"184467440737095516160000", 0},
        {"-1", 0},
        {"+1", 0},
        {" 1", 0},
        {"1 ", 0},
        {"1k", 0},
        {"0x10", 0},
        {"1.5", 0},
        {"\xff", 0},
    };
    for (const value_case& v : values) {
      const std::string input =
          with_request_line("protocol_state=RCPT\n" + std::string(a.name) + "=" + v.text +
                            "\nrecipient=bob@example.test\n\n");
      SCOPED_TRACE(std::string(a.name) + "=" + v.text);
      const outcome result = feed_whole(input);
      ASSERT_EQ(result.status, parse_status::complete) << to_string(result.error);
      EXPECT_EQ(a.read(result.request), v.want);
      EXPECT_EQ(result.consumed, input.size());
      // The attributes around it are parsed as usual; the name is known, so it is not listed
      // among the unknown attributes whatever its value.
      EXPECT_EQ(result.request.state, protocol_state::rcpt);
      EXPECT_EQ(result.request.recipient, "bob@example.test");
      EXPECT_TRUE(result.request.unknown.empty());
      expect_same(result, feed_bytewise(input));
    }
  }
}

TEST(RequestParser, AnUnknownNumberStillTakesTheFirstValue) {
  // First value wins whether or not it was a number: a later duplicate cannot fill it in.
  const outcome result =
      feed_whole(with_request_line("client_port=unknown\nclient_port=25\nsize=7\nsize=x\n\n"));
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.request.client_port, 0U);
  EXPECT_EQ(result.request.size, 7U);
}

TEST(RequestParser, StressIsTrueOnlyForYes) {
  const auto stress_of = [](std::string_view value) {
    const outcome result = feed_whole(with_request_line("stress=" + std::string(value) + "\n\n"));
    EXPECT_EQ(result.status, parse_status::complete);
    return result.request.stress;
  };
  EXPECT_TRUE(stress_of("yes"));
  EXPECT_FALSE(stress_of(""));
  EXPECT_FALSE(stress_of("no"));
  EXPECT_FALSE(stress_of("YES"));
  EXPECT_FALSE(stress_of("yes "));
}

TEST(RequestParser, ProtocolStateIsCaseInsensitiveAndUnknownIsNoError) {
  const auto state_of = [](std::string_view value) {
    const outcome result =
        feed_whole(with_request_line("protocol_state=" + std::string(value) + "\n\n"));
    EXPECT_EQ(result.status, parse_status::complete);
    return result.request.state;
  };
  EXPECT_EQ(state_of("END-OF-MESSAGE"), protocol_state::end_of_message);
  EXPECT_EQ(state_of("rcpt"), protocol_state::rcpt);
  EXPECT_EQ(state_of("BDAT"), protocol_state::unknown);
  EXPECT_EQ(state_of(""), protocol_state::unknown);
}

TEST(RequestParser, ValueKeepsEverythingAfterTheFirstEquals) {
  const outcome result = feed_whole(with_request_line("sender=a=b==\nrecipient=\n\n"));
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.request.sender, "a=b==");
  EXPECT_EQ(result.request.recipient, "");
}

TEST(RequestParser, ToleratesCrlf) {
  const std::string crlf =
      "request=smtpd_access_policy\r\nprotocol_state=RCPT\r\nrecipient=bob@example.test\r\n"
      "size=42\r\n\r\n";
  const outcome result = feed_whole(crlf);
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.consumed, crlf.size());
  EXPECT_EQ(result.request.state, protocol_state::rcpt);
  EXPECT_EQ(result.request.recipient, "bob@example.test");
  EXPECT_EQ(result.request.size, 42U);
  expect_same(result, feed_bytewise(crlf));
}

TEST(RequestParser, StripsOnlyOneTrailingCr) {
  const outcome result = feed_whole(with_request_line("sender=a\r\r\n\n"));
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.request.sender, "a\r");
}

TEST(RequestParser, FirstValueWinsForKnownAttributes) {
  const outcome result = feed_whole(with_request_line(
      "recipient=first@example.test\nrecipient=second@example.test\nsize=1\nsize=2\n"
      "protocol_state=RCPT\nprotocol_state=DATA\nrequest=other\n\n"));
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.request.recipient, "first@example.test");
  EXPECT_EQ(result.request.size, 1U);
  EXPECT_EQ(result.request.state, protocol_state::rcpt);
  EXPECT_EQ(result.request.request, "smtpd_access_policy");
}

TEST(RequestParser, IgnoredDuplicateIsNotValidated) {
  const outcome result = feed_whole(with_request_line("size=1\nsize=not-a-number\n\n"));
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.request.size, 1U);
}

TEST(RequestParser, KeepsUnknownAttributesInOrderFirstValueOnly) {
  const outcome result = feed_whole(with_request_line(
      "x_future=1\nrecipient=r@example.test\nx_other=\nx_future=2\nRecipient=upper\n\n"));
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.request.recipient, "r@example.test");
  const std::vector<attribute> expected{{"x_future", "1"}, {"x_other", ""}, {"Recipient", "upper"}};
  EXPECT_EQ(result.request.unknown, expected);
}

TEST(RequestParser, AttributesInAnyOrder) {
  const outcome result = feed_whole(
      "tls_sni=sni\nsize=9\nrecipient=r\nrequest=smtpd_access_policy\nprotocol_state=MAIL\n\n");
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.request.tls_sni, "sni");
  EXPECT_EQ(result.request.size, 9U);
  EXPECT_EQ(result.request.recipient, "r");
  EXPECT_EQ(result.request.state, protocol_state::mail);
}

// --- malformed input -------------------------------------------------------------------

struct malformed_case {
  const char* label;
  std::string input;
  parse_error error;
};

class malformed_request : public testing::TestWithParam<malformed_case> {};

TEST_P(malformed_request, FailsWithTheExactErrorWhateverTheSplit) {
  const malformed_case& c = GetParam();
  const outcome whole = feed_whole(c.input);
  EXPECT_EQ(whole.status, parse_status::error);
  EXPECT_EQ(whole.error, c.error) << to_string(whole.error);
  const outcome bytewise = feed_bytewise(c.input);
  EXPECT_EQ(bytewise.status, parse_status::error);
  EXPECT_EQ(bytewise.error, c.error) << to_string(bytewise.error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, malformed_request,
    testing::Values(
        malformed_case{"no_equals", with_request_line("recipient\n\n"),
                       parse_error::missing_equals},
        malformed_case{"no_equals_first", "garbage\n", parse_error::missing_equals},
        malformed_case{"space_line", with_request_line(" \n\n"), parse_error::missing_equals},
        malformed_case{"double_cr", "\r\r\n", parse_error::missing_equals},
        malformed_case{"empty_name", "=value\n", parse_error::empty_name},
        malformed_case{"bare_equals", with_request_line("=\n\n"), parse_error::empty_name},
        malformed_case{"nul_in_value", with_request_line("sender=a\0b\n\n"s),
                       parse_error::nul_byte},
        malformed_case{"nul_in_name", "requ\0est=x\n"s, parse_error::nul_byte},
        malformed_case{"nul_alone", "\0"s, parse_error::nul_byte},
        malformed_case{"nul_before_equals_missing", "abc\0\n"s, parse_error::nul_byte},
        malformed_case{"empty_request", "\n", parse_error::wrong_request_type},
        malformed_case{"empty_request_crlf", "\r\n", parse_error::wrong_request_type},
        malformed_case{"no_request_attribute", "protocol_state=RCPT\n\n",
                       parse_error::wrong_request_type},
        malformed_case{"other_request_type", "request=smtpd_other\n\n",
                       parse_error::wrong_request_type},
        malformed_case{"request_type_case", "request=SMTPD_ACCESS_POLICY\n\n",
                       parse_error::wrong_request_type},
        malformed_case{"request_type_empty", "request=\n\n", parse_error::wrong_request_type},
        malformed_case{"request_type_second", "request=x\nrequest=smtpd_access_policy\n\n",
                       parse_error::wrong_request_type}),
    [](const testing::TestParamInfo<malformed_case>& param) { return param.param.label; });

TEST(RequestParser, RejectsAStaleRequestTypeTheCallerForgotToClear) {
  request_parser parser;
  policy_request request;
  request.request = "smtpd_access_policy";
  const parse_result result = parser.feed("recipient=a\n\n", request);
  EXPECT_EQ(result.status, parse_status::error);
  EXPECT_EQ(result.error, parse_error::wrong_request_type);
}

TEST(RequestParser, ErrorNamesAreStable) {
  EXPECT_EQ(to_string(parse_error::none), "none");
  EXPECT_EQ(to_string(parse_error::line_too_long), "line_too_long");
  EXPECT_EQ(to_string(parse_error::too_many_attributes), "too_many_attributes");
  EXPECT_EQ(to_string(parse_error::request_too_large), "request_too_large");
  EXPECT_EQ(to_string(parse_error::missing_equals), "missing_equals");
  EXPECT_EQ(to_string(parse_error::empty_name), "empty_name");
  EXPECT_EQ(to_string(parse_error::nul_byte), "nul_byte");
  EXPECT_EQ(to_string(parse_error::wrong_request_type), "wrong_request_type");
}

// --- limits ----------------------------------------------------------------------------

TEST(RequestParserLimits, LineAtTheLimitPasses) {
  const limits bounds;
  const std::string line = "p=" + std::string(bounds.max_line - 2, 'a');
  const outcome result = feed_whole(with_request_line(line + "\n\n"), bounds);
  ASSERT_EQ(result.status, parse_status::complete);
  ASSERT_EQ(result.request.unknown.size(), 1U);
  EXPECT_EQ(result.request.unknown[0].value.size(), bounds.max_line - 2);
}

TEST(RequestParserLimits, LineOverTheLimitFailsAtItsExtraByte) {
  const limits bounds;
  const std::string input =
      with_request_line("p=" + std::string(bounds.max_line - 1, 'a') + "\n\n");
  const outcome whole = feed_whole(input, bounds);
  EXPECT_EQ(whole.status, parse_status::error);
  EXPECT_EQ(whole.error, parse_error::line_too_long);
  EXPECT_EQ(whole.consumed, request_line.size() + bounds.max_line + 1);

  // Byte by byte: max_line bytes are still fine, the next one fails before any LF arrives.
  request_parser parser(bounds);
  policy_request request;
  const std::size_t last_good = request_line.size() + bounds.max_line;
  for (std::size_t i = 0; i < last_good; ++i) {
    ASSERT_EQ(parser.feed(input.substr(i, 1), request).status, parse_status::need_more) << i;
  }
  const parse_result failed = parser.feed(input.substr(last_good, 1), request);
  EXPECT_EQ(failed.status, parse_status::error);
  EXPECT_EQ(failed.error, parse_error::line_too_long);
}

TEST(RequestParserLimits, TrailingCrCountsTowardsTheLine) {
  const limits bounds;
  const std::string fits = "p=" + std::string(bounds.max_line - 3, 'a') + "\r\n\r\n";
  EXPECT_EQ(feed_whole(with_request_line(fits), bounds).status, parse_status::complete);
  const std::string too_long = "p=" + std::string(bounds.max_line - 2, 'a') + "\r\n\r\n";
  EXPECT_EQ(feed_whole(with_request_line(too_long), bounds).error, parse_error::line_too_long);
}

TEST(RequestParserLimits, LongestLineMayArriveInPieces) {
  const limits bounds{.max_line = 32, .max_attributes = 4, .max_request = 1024};
  const std::string input = with_request_line("sender=" + std::string(25, 's') + "\n\n");
  std::vector<std::size_t> cuts;
  for (std::size_t i = request_line.size() + 1; i < input.size(); i += 3) cuts.push_back(i);
  const outcome result = feed_split(input, cuts, bounds);
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.request.sender, std::string(25, 's'));
}

TEST(RequestParserLimits, AttributeCountAtTheLimitPasses) {
  const limits bounds;
  std::string lines;
  for (std::size_t i = 1; i < bounds.max_attributes; ++i) lines += "size=1\n";  // duplicates count
  const outcome lf = feed_whole(with_request_line(lines + "\n"), bounds);
  EXPECT_EQ(lf.status, parse_status::complete);
  // The closing empty line of a CRLF client is not one attribute too many.
  const outcome crlf = feed_bytewise(with_request_line(lines + "\r\n"), bounds);
  EXPECT_EQ(crlf.status, parse_status::complete);
}

TEST(RequestParserLimits, AttributeCountOverTheLimitFailsAtTheExtraLine) {
  const limits bounds;
  std::string lines;
  for (std::size_t i = 1; i < bounds.max_attributes; ++i) lines += "size=1\n";
  const std::string input = with_request_line(lines + "x=1\n\n");
  const outcome whole = feed_whole(input, bounds);
  EXPECT_EQ(whole.status, parse_status::error);
  EXPECT_EQ(whole.error, parse_error::too_many_attributes);
  // Detected at the first byte of the extra line, before it is buffered.
  EXPECT_EQ(whole.consumed, request_line.size() + lines.size() + 1);
  EXPECT_EQ(feed_bytewise(input, bounds).error, parse_error::too_many_attributes);
  EXPECT_EQ(feed_bytewise(with_request_line(lines + "\rx=1\n\n"), bounds).error,
            parse_error::too_many_attributes);
}

TEST(RequestParserLimits, RequestSizeAtTheLimitPasses) {
  const limits bounds;
  const std::string input = request_of_size(bounds.max_request, bounds.max_line);
  ASSERT_EQ(input.size(), bounds.max_request);
  const outcome result = feed_whole(input, bounds);
  EXPECT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.consumed, bounds.max_request);
}

TEST(RequestParserLimits, RequestSizeOverTheLimitFailsAtTheExtraByte) {
  const limits bounds;
  const std::string input = request_of_size(bounds.max_request + 1, bounds.max_line);
  ASSERT_EQ(input.size(), bounds.max_request + 1);
  const outcome whole = feed_whole(input, bounds);
  EXPECT_EQ(whole.status, parse_status::error);
  EXPECT_EQ(whole.error, parse_error::request_too_large);
  EXPECT_EQ(whole.consumed, bounds.max_request + 1);
  EXPECT_EQ(feed_bytewise(input, bounds).error, parse_error::request_too_large);
}

TEST(RequestParserLimits, SmallCustomLimitsAtTheEdge) {
  const limits bounds{.max_line = 30, .max_attributes = 2, .max_request = 60};
  EXPECT_EQ(feed_whole("request=smtpd_access_policy\nsender=s\n\n", bounds).status,
            parse_status::complete);
  EXPECT_EQ(feed_whole("request=smtpd_access_policy\nsender=s\nx=\n\n", bounds).error,
            parse_error::too_many_attributes);
  const std::string thirty = "request=smtpd_access_policy\nsender=" + std::string(23, 's') + "\n\n";
  ASSERT_EQ(thirty.size(), 60U);
  EXPECT_EQ(feed_whole(thirty, bounds).status, parse_status::complete);
  EXPECT_EQ(
      feed_whole("request=smtpd_access_policy\nsender=" + std::string(24, 's') + "\n\n", bounds)
          .error,
      parse_error::line_too_long);
  const limits tight_request{.max_line = 30, .max_attributes = 2, .max_request = 59};
  EXPECT_EQ(feed_whole(thirty, tight_request).error, parse_error::request_too_large);
}

// --- feeding and reuse -----------------------------------------------------------------

constexpr std::string_view typical_request =
    "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
    "client_address=127.0.0.1\nclient_name=localhost\nclient_port=58280\n"
    "helo_name=client.example.test\nsender=sender@remote.example\n"
    "recipient=alice@example.test\nrecipient_count=0\nqueue_id=\nsize=0\nstress=\n"
    "x_unknown=1\nrecipient=dup@example.test\n\n";

TEST(RequestParserFeeding, ByteByByteEqualsOneFeed) {
  const outcome whole = feed_whole(typical_request);
  ASSERT_EQ(whole.status, parse_status::complete);
  expect_same(whole, feed_bytewise(typical_request));
}

TEST(RequestParserFeeding, RandomSplitsEqualOneFeed) {
  const std::vector<std::string> inputs{
      std::string(typical_request),          "request=smtpd_access_policy\r\nrecipient=a\r\n\r\n",
      with_request_line("size=12x\n\n"),     with_request_line("line-without-equals\n\n"),
      with_request_line("sender=a\0b\n\n"s),
  };
  // A fixed seed, so a failing split can be reproduced.
  std::mt19937 random(20240601);  // NOLINT(cert-msc32-c,cert-msc51-cpp)
  for (const std::string& input : inputs) {
    const outcome whole = feed_whole(input);
    for (int round = 0; round < 200; ++round) {
      std::vector<std::size_t> cuts;
      std::uniform_int_distribution<std::size_t> position(1, input.size() - 1);
      const std::size_t count = std::uniform_int_distribution<std::size_t>(0, 8)(random);
      for (std::size_t i = 0; i < count; ++i) cuts.push_back(position(random));
      std::sort(cuts.begin(), cuts.end());
      cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
      expect_same(whole, feed_split(input, cuts));
    }
  }
}

TEST(RequestParserFeeding, LeavesTheNextRequestUnconsumed) {
  const std::string first = "request=smtpd_access_policy\nrecipient=a@example.test\n\n";
  const std::string second = "request=smtpd_access_policy\nrecipient=b@example.test\n\n";
  const std::string stream = first + second + "request=smtpd_acc";
  request_parser parser;
  policy_request request;

  parse_result result = parser.feed(stream, request);
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.consumed, first.size());
  EXPECT_EQ(request.recipient, "a@example.test");
  EXPECT_FALSE(parser.in_request());

  request.clear();
  const std::string_view rest = std::string_view(stream).substr(result.consumed);
  result = parser.feed(rest, request);
  ASSERT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(result.consumed, second.size());
  EXPECT_EQ(request.recipient, "b@example.test");

  request.clear();
  result = parser.feed(rest.substr(result.consumed), request);
  EXPECT_EQ(result.status, parse_status::need_more);
  EXPECT_EQ(result.consumed, std::string_view("request=smtpd_acc").size());
  EXPECT_TRUE(parser.in_request());
  result = parser.feed("ess_policy\n\n", request);
  EXPECT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(request.request, "smtpd_access_policy");
}

TEST(RequestParserFeeding, EmptyFeedNeedsMore) {
  request_parser parser;
  policy_request request;
  const parse_result result = parser.feed("", request);
  EXPECT_EQ(result.status, parse_status::need_more);
  EXPECT_EQ(result.consumed, 0U);
  EXPECT_FALSE(parser.in_request());
}

TEST(RequestParserFeeding, StartsAfreshAfterAnError) {
  request_parser parser;
  policy_request request;
  ASSERT_EQ(parser.feed("size=1\nbroken\n", request).error, parse_error::missing_equals);
  EXPECT_FALSE(parser.in_request());
  request.clear();
  const parse_result result = parser.feed("request=smtpd_access_policy\nsize=2\n\n", request);
  EXPECT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(request.size, 2U);
}

TEST(RequestParserFeeding, ResetDropsAPartialRequest) {
  request_parser parser;
  policy_request request;
  ASSERT_EQ(parser.feed("request=smtpd_access_policy\nrecipient=half", request).status,
            parse_status::need_more);
  EXPECT_TRUE(parser.in_request());
  parser.reset();
  request.clear();
  EXPECT_FALSE(parser.in_request());
  const parse_result result = parser.feed("request=smtpd_access_policy\nrecipient=b\n\n", request);
  EXPECT_EQ(result.status, parse_status::complete);
  EXPECT_EQ(request.recipient, "b");
}

TEST(RequestParserFeeding, CountsAreResetBetweenRequests) {
  const limits bounds{.max_line = 64, .max_attributes = 2, .max_request = 64};
  const std::string request_text = "request=smtpd_access_policy\nsize=1\n\n";
  request_parser parser(bounds);
  policy_request request;
  for (int i = 0; i < 5; ++i) {
    request.clear();
    const parse_result result = parser.feed(request_text, request);
    ASSERT_EQ(result.status, parse_status::complete) << i;
    EXPECT_EQ(request.size, 1U);
  }
}

}  // namespace
}  // namespace rcptguard::protocol
