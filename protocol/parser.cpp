// The policy request parser: LF-framed name=value lines into a policy_request, bounded by
// limits that are checked before a byte is buffered. This is the per-request hot path, so it
// scans with memchr, dispatches through a constexpr table and reuses the request's strings.
//
// Byte accounting, for every limit: max_line counts the bytes of a line before its LF, a
// trailing CR included (so the carried-over line buffer never exceeds max_line bytes);
// max_request counts every byte of the request, LFs and the closing empty line included.
#include "protocol/parser.hpp"

#include <array>
#include <charconv>
#include <cstring>
#include <type_traits>
#include <utility>

namespace rcptguard::protocol {

namespace {

constexpr std::string_view expected_request_type = "smtpd_access_policy";

// Values never fail a request (see set_number), so a setter has nothing to report.
using attribute_setter = void (*)(policy_request&, std::string_view);

template <auto field>
void set_text(policy_request& out, std::string_view value) {
  (out.*field).assign(value);
}

// Strict about framing, liberal about values: a number Postfix cannot know arrives as "name=",
// "name=0" or, behind postscreen or XCLIENT, "name=unknown" (client_port, server_port), and
// XCLIENT lets through a port no TCP connection has (99999). Refusing such a request would close
// the connection without a reply: Postfix retries, then applies its default_action to real mail.
// So anything that is not a decimal in the field's range (from_chars rejects signs, spaces, hex
// and overflow) is kept as 0, Postfix's own "not available", which the engine reads as unknown.
template <auto field>
void set_number(policy_request& out, std::string_view value) {
  using number = std::remove_reference_t<decltype(out.*field)>;
  number parsed = 0;
  const char* const end = value.data() + value.size();
  const auto [stop, status] = std::from_chars(value.data(), end, parsed);
  out.*field = status == std::errc{} && stop == end ? parsed : number{0};
}

void set_state(policy_request& out, std::string_view value) {
  out.state = parse_protocol_state(value);
}

void set_stress(policy_request& out, std::string_view value) {
  out.stress = value == "yes";
}

struct known_attribute {
  std::string_view name;
  attribute_setter set;
};

// In the order Postfix 3.7 writes them (Postfix 3.8+ additions last): the lookup starts after
// the previous match, so a real request finds each name at the first comparison.
constexpr std::array known_attributes{
    known_attribute{"request", set_text<&policy_request::request>},
    known_attribute{"protocol_state", set_state},
    known_attribute{"protocol_name", set_text<&policy_request::protocol_name>},
    known_attribute{"client_address", set_text<&policy_request::client_address>},
    known_attribute{"client_name", set_text<&policy_request::client_name>},
    known_attribute{"client_port", set_number<&policy_request::client_port>},
    known_attribute{"reverse_client_name", set_text<&policy_request::reverse_client_name>},
    known_attribute{"server_address", set_text<&policy_request::server_address>},
    known_attribute{"server_port", set_number<&policy_request::server_port>},
    known_attribute{"helo_name", set_text<&policy_request::helo_name>},
    known_attribute{"sender", set_text<&policy_request::sender>},
    known_attribute{"recipient", set_text<&policy_request::recipient>},
    known_attribute{"recipient_count", set_number<&policy_request::recipient_count>},
    known_attribute{"queue_id", set_text<&policy_request::queue_id>},
    known_attribute{"instance", set_text<&policy_request::instance>},
    known_attribute{"size", set_number<&policy_request::size>},
    known_attribute{"etrn_domain", set_text<&policy_request::etrn_domain>},
    known_attribute{"stress", set_stress},
    known_attribute{"sasl_method", set_text<&policy_request::sasl_method>},
    known_attribute{"sasl_username", set_text<&policy_request::sasl_username>},
    known_attribute{"sasl_sender", set_text<&policy_request::sasl_sender>},
    known_attribute{"ccert_subject", set_text<&policy_request::ccert_subject>},
    known_attribute{"ccert_issuer", set_text<&policy_request::ccert_issuer>},
    known_attribute{"ccert_fingerprint", set_text<&policy_request::ccert_fingerprint>},
    known_attribute{"ccert_pubkey_fingerprint",
                    set_text<&policy_request::ccert_pubkey_fingerprint>},
    known_attribute{"encryption_protocol", set_text<&policy_request::encryption_protocol>},
    known_attribute{"encryption_cipher", set_text<&policy_request::encryption_cipher>},
    known_attribute{"encryption_keysize", set_number<&policy_request::encryption_keysize>},
    known_attribute{"policy_context", set_text<&policy_request::policy_context>},
    known_attribute{"compatibility_level", set_text<&policy_request::compatibility_level>},
    known_attribute{"mail_version", set_text<&policy_request::mail_version>},
    known_attribute{"tls_sni", set_text<&policy_request::tls_sni>},
};

static_assert(known_attributes.size() <= 64, "seen_mask_ has one bit per known attribute");
static_assert(known_attributes[0].name == "request", "finish_request checks bit 0");

constexpr std::uint64_t bit(std::size_t index) {
  return std::uint64_t{1} << index;
}

struct violation {
  std::size_t offset = 0;  ///< of the offending byte within the segment
  parse_error error = parse_error::none;
};

// The first byte of a segment (`content` line bytes, then the LF if `taken` includes one) that
// breaks a limit or the syntax. Where one byte breaks several rules, the earlier check names it.
violation first_violation(const limits& bounds, std::string_view carried, std::size_t request_bytes,
                          std::size_t attribute_count, std::string_view content,
                          std::size_t taken) {
  violation found{taken, parse_error::none};
  const auto note = [&found](std::size_t offset, parse_error error) {
    if (offset < found.offset) found = {offset, error};
  };
  const std::size_t request_room = bounds.max_request - request_bytes;
  if (taken > request_room) note(request_room, parse_error::request_too_large);
  if (const void* nul = std::memchr(content.data(), '\0', content.size()); nul != nullptr) {
    note(static_cast<std::size_t>(static_cast<const char*>(nul) - content.data()),
         parse_error::nul_byte);
  }
  if (attribute_count >= bounds.max_attributes) {
    // A lone CR may still turn out to be the empty line of a CRLF client; any other byte
    // starts one attribute too many.
    const std::size_t lone_cr = carried.empty() && !content.empty() && content[0] == '\r' ? 1 : 0;
    if (content.size() > lone_cr) note(lone_cr, parse_error::too_many_attributes);
  }
  const std::size_t line_room = bounds.max_line - carried.size();
  if (content.size() > line_room) note(line_room, parse_error::line_too_long);
  return found;
}

}  // namespace

std::string_view to_string(parse_error error) {
  switch (error) {
    case parse_error::none:
      return "none";
    case parse_error::line_too_long:
      return "line_too_long";
    case parse_error::too_many_attributes:
      return "too_many_attributes";
    case parse_error::request_too_large:
      return "request_too_large";
    case parse_error::missing_equals:
      return "missing_equals";
    case parse_error::empty_name:
      return "empty_name";
    case parse_error::nul_byte:
      return "nul_byte";
    case parse_error::wrong_request_type:
      return "wrong_request_type";
  }
  return "unknown_error";
}

request_parser::request_parser(limits bounds) : bounds_(bounds) {}

void request_parser::reset() {
  line_.clear();
  request_bytes_ = 0;
  attribute_count_ = 0;
  seen_mask_ = 0;
  next_lookup_ = 0;
}

parse_result request_parser::feed(std::string_view bytes, policy_request& out) {
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::string_view rest = bytes.substr(pos);
    const auto* lf = static_cast<const char*>(std::memchr(rest.data(), '\n', rest.size()));
    const std::size_t content_size =
        lf != nullptr ? static_cast<std::size_t>(lf - rest.data()) : rest.size();
    const std::string_view content = rest.substr(0, content_size);
    const std::size_t taken = lf != nullptr ? content_size + 1 : content_size;

    const violation broken =
        first_violation(bounds_, line_, request_bytes_, attribute_count_, content, taken);
    if (broken.error != parse_error::none) {
      reset();
      return {parse_status::error, pos + broken.offset + 1, broken.error};
    }
    request_bytes_ += taken;
    pos += taken;
    if (lf == nullptr) {
      line_.append(content);
      break;
    }

    // A line that arrived whole is parsed in place; only a line split across feeds is copied.
    std::string_view line = content;
    if (!line_.empty()) {
      line_.append(content);
      line = line_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    if (line.empty()) {
      const parse_error error = finish_request(out);
      reset();
      if (error != parse_error::none) return {parse_status::error, pos, error};
      return {parse_status::complete, pos, parse_error::none};
    }
    ++attribute_count_;
    const parse_error error = finish_line(line, out);
    line_.clear();
    if (error != parse_error::none) {
      reset();
      return {parse_status::error, pos, error};
    }
  }
  return {parse_status::need_more, bytes.size(), parse_error::none};
}

parse_error request_parser::finish_line(std::string_view line, policy_request& out) {
  const std::size_t equals = line.find('=');
  if (equals == std::string_view::npos) return parse_error::missing_equals;
  if (equals == 0) return parse_error::empty_name;
  const std::string_view name = line.substr(0, equals);
  const std::string_view value = line.substr(equals + 1);

  std::size_t index = next_lookup_;
  for (std::size_t tried = 0; tried < known_attributes.size(); ++tried) {
    if (known_attributes[index].name == name) {
      next_lookup_ = index + 1 == known_attributes.size() ? 0 : index + 1;
      if ((seen_mask_ & bit(index)) != 0) return parse_error::none;
      seen_mask_ |= bit(index);
      known_attributes[index].set(out, value);
      return parse_error::none;
    }
    index = index + 1 == known_attributes.size() ? 0 : index + 1;
  }

  for (const attribute& kept : out.unknown) {
    if (kept.name == name) return parse_error::none;
  }
  out.unknown.push_back({std::string(name), std::string(value)});
  return parse_error::none;
}

parse_error request_parser::finish_request(const policy_request& out) const {
  // The seen bit, not just the value, so a stale `out` the caller forgot to clear can't pass.
  if ((seen_mask_ & bit(0)) == 0 || out.request != expected_request_type) {
    return parse_error::wrong_request_type;
  }
  return parse_error::none;
}

}  // namespace rcptguard::protocol
