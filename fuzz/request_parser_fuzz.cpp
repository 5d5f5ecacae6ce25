// Fuzz target: protocol::request_parser, the bytes a policy client sends. The input is one
// connection's byte stream. It is fed as a session would (each complete request taken and
// cleared, the connection closed at the first error), whole, byte by byte and in pieces whose
// sizes come from the input, under the default limits and under small limits derived from the
// input; every way of feeding must give the same outcomes (each request, or the error and the
// byte it stops at). Each request is checked against the limits, and a reply echoing its values
// must still be one well-formed line (protocol/reply.hpp). May include: protocol/, common/.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/check.hpp"
#include "protocol/limits.hpp"
#include "protocol/parser.hpp"
#include "protocol/reply.hpp"
#include "protocol/request.hpp"

namespace {

using namespace rcptguard::protocol;
using rcptguard::fuzz::fnv1a;
using rcptguard::fuzz::valid_utf8;

struct outcome {
  parse_status status = parse_status::need_more;  ///< need_more: the stream ended mid-request
  parse_error error = parse_error::none;
  std::size_t end = 0;  ///< stream offset just past the bytes this outcome consumed
  policy_request request;

  bool operator==(const outcome&) const = default;
};

constexpr std::array text_fields{
    &policy_request::request,           &policy_request::protocol_name,
    &policy_request::helo_name,         &policy_request::queue_id,
    &policy_request::sender,            &policy_request::recipient,
    &policy_request::client_address,    &policy_request::client_name,
    &policy_request::reverse_client_name, &policy_request::instance,
    &policy_request::sasl_method,       &policy_request::sasl_username,
    &policy_request::sasl_sender,       &policy_request::ccert_subject,
    &policy_request::ccert_issuer,      &policy_request::ccert_fingerprint,
    &policy_request::encryption_protocol, &policy_request::encryption_cipher,
    &policy_request::etrn_domain,       &policy_request::ccert_pubkey_fingerprint,
    &policy_request::policy_context,    &policy_request::server_address,
    &policy_request::compatibility_level, &policy_request::mail_version,
    &policy_request::tls_sni,
};

bool clean_value(std::string_view value, const limits& bounds) {
  return value.size() < bounds.max_line && value.find('\n') == std::string_view::npos &&
         value.find('\0') == std::string_view::npos;
}

void check_request(const policy_request& r, const limits& bounds) {
  FUZZ_CHECK(r.request == "smtpd_access_policy");
  for (const auto field : text_fields) FUZZ_CHECK(clean_value(r.*field, bounds));
  FUZZ_CHECK(r.unknown.size() < bounds.max_attributes);
  for (std::size_t i = 0; i < r.unknown.size(); ++i) {
    FUZZ_CHECK(!r.unknown[i].name.empty());
    FUZZ_CHECK(clean_value(r.unknown[i].name, bounds) && clean_value(r.unknown[i].value, bounds));
    for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(r.unknown[j].name != r.unknown[i].name);
  }
}

bool is_reply_verb(std::string_view verb) {
  if (verb == "DUNNO" || verb == "WARN" || verb == "DEFER_IF_PERMIT" || verb == "DEFER" ||
      verb == "PREPEND") {
    return true;
  }
  return verb.size() == 3 && verb[0] == '4' && verb[1] >= '0' && verb[1] <= '9' &&
         verb[2] >= '0' && verb[2] <= '9' && verb != "421";
}

// One line "action=VERB[ text]" and the empty line: nothing a peer sends may split or extend it.
void check_reply(const policy_action& action) {
  std::string out;
  format_reply(action, out);
  FUZZ_CHECK(out.starts_with("action="));
  FUZZ_CHECK(out.size() >= 9 && out.ends_with("\n\n"));
  const std::string_view line = std::string_view(out).substr(0, out.size() - 2);
  for (const char c : line) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  FUZZ_CHECK(valid_utf8(line));
  const std::string_view after = line.substr(7);
  FUZZ_CHECK(is_reply_verb(after.substr(0, after.find(' '))));
  // verb, an enhanced code, the text: "action=DEFER_IF_PERMIT 4.999.999 <300 bytes>"
  FUZZ_CHECK(line.size() <= 7 + 15 + 1 + 9 + 1 + max_reply_text);
}

void check_replies(const policy_request& r) {
  policy_action action;
  // Every verb, and two values outside the enum, with the peer's bytes as code and text.
  action.verb = static_cast<action_verb>(r.recipient_count % 8);
  action.code = r.helo_name;
  action.text = r.recipient;
  if (!r.sender.empty()) action.text.append(" ").append(r.sender);
  check_reply(action);
  // The same bytes as an operator's configured action.
  policy_action configured;
  if (parse_configured_action(r.sender, configured) == action_error::none) {
    FUZZ_CHECK(configured.verb == action_verb::defer_if_permit ||
               configured.verb == action_verb::defer || configured.verb == action_verb::smtp_code);
    check_reply(configured);
  }
}

// Feeds `input` in pieces of next_size() bytes as a session's read loop does.
template <typename NextSize>
std::vector<outcome> feed(std::string_view input, const limits& bounds, NextSize next_size,
                          bool check) {
  request_parser parser(bounds);
  policy_request request;
  std::vector<outcome> outcomes;
  std::size_t offset = 0;
  while (offset < input.size()) {
    std::size_t start = offset;
    std::string_view piece = input.substr(offset, next_size());
    offset += piece.size();
    while (!piece.empty()) {
      const parse_result step = parser.feed(piece, request);
      FUZZ_CHECK(step.consumed <= piece.size());
      if (step.status == parse_status::need_more) {
        FUZZ_CHECK(step.consumed == piece.size() && step.error == parse_error::none);
        FUZZ_CHECK(parser.in_request());
        break;
      }
      FUZZ_CHECK(step.consumed > 0);
      FUZZ_CHECK(!parser.in_request());
      start += step.consumed;
      if (step.status == parse_status::error) {
        FUZZ_CHECK(step.error != parse_error::none);
        FUZZ_CHECK(to_string(step.error) != "unknown_error");
        outcomes.push_back({step.status, step.error, start, {}});
        return outcomes;  // the session closes the connection
      }
      FUZZ_CHECK(step.error == parse_error::none);
      if (check) {
        check_request(request, bounds);
        check_replies(request);
      }
      outcomes.push_back({step.status, step.error, start, request});
      request.clear();
      piece.remove_prefix(step.consumed);
    }
  }
  if (parser.in_request()) outcomes.push_back({parse_status::need_more, {}, input.size(), {}});
  return outcomes;
}

void report_difference(const char* schedule, const std::vector<outcome>& whole,
                       const std::vector<outcome>& other) {
  std::fprintf(stderr, "request_parser: %s feeding differs: %zu outcomes whole, %zu %s\n",
               schedule, whole.size(), other.size(), schedule);
  for (std::size_t i = 0; i < whole.size() && i < other.size(); ++i) {
    if (whole[i] == other[i]) continue;
    std::fprintf(stderr,
                 "  outcome %zu: whole status %d error %s end %zu; %s status %d error %s end %zu\n",
                 i, static_cast<int>(whole[i].status), to_string(whole[i].error).data(),
                 whole[i].end, schedule, static_cast<int>(other[i].status),
                 to_string(other[i].error).data(), other[i].end);
    break;
  }
}

void check_limits(std::string_view input, const limits& bounds) {
  const std::vector<outcome> whole =
      feed(input, bounds, [&] { return input.size(); }, true);
  const std::vector<outcome> bytewise = feed(input, bounds, [] { return std::size_t{1}; }, false);
  if (bytewise != whole) {
    report_difference("byte-by-byte", whole, bytewise);
    std::abort();
  }
  // Piece sizes read from the input itself, 1 to 64 bytes, now and then a large one.
  std::size_t cursor = 0;
  const auto chosen = [&] {
    const auto b = static_cast<unsigned char>(input[cursor++ % input.size()]);
    return b >= 0xF0 ? std::size_t{1024} : std::size_t{1} + b % 64;
  };
  const std::vector<outcome> pieces = feed(input, bounds, chosen, false);
  if (pieces != whole) {
    report_difference("chunked", whole, pieces);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_limits(input, limits{});
  // Small limits, so every limit is met at and around its edge.
  const std::uint64_t h = fnv1a(input);
  limits small;
  small.max_line = 1 + h % 96;
  small.max_attributes = (h >> 8) % 12;
  small.max_request = 1 + (h >> 16) % 700;
  check_limits(input, small);
  return 0;
}
