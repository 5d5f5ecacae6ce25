// Names of the SMTP protocol states as Postfix spells them, and resetting a request for reuse.
#include "protocol/request.hpp"

#include <array>
#include <utility>

namespace rcptguard::protocol {

namespace {

constexpr std::array<std::pair<protocol_state, std::string_view>, 10> state_names{{
    {protocol_state::unknown, "UNKNOWN"},
    {protocol_state::connect, "CONNECT"},
    {protocol_state::ehlo, "EHLO"},
    {protocol_state::helo, "HELO"},
    {protocol_state::mail, "MAIL"},
    {protocol_state::rcpt, "RCPT"},
    {protocol_state::data, "DATA"},
    {protocol_state::end_of_message, "END-OF-MESSAGE"},
    {protocol_state::vrfy, "VRFY"},
    {protocol_state::etrn, "ETRN"},
}};

constexpr char ascii_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

// Postfix matches its keywords with strncasecmp, so a client that differs only in case is
// still speaking the protocol.
bool equals_ignoring_case(std::string_view text, std::string_view upper) {
  if (text.size() != upper.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (ascii_upper(text[i]) != upper[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view to_string(protocol_state state) {
  for (const auto& [value, name] : state_names) {
    if (value == state) return name;
  }
  return "UNKNOWN";
}

protocol_state parse_protocol_state(std::string_view text) {
  for (const auto& [value, name] : state_names) {
    if (equals_ignoring_case(text, name)) return value;
  }
  return protocol_state::unknown;
}

void policy_request::clear() {
  request.clear();
  state = protocol_state::unknown;
  protocol_name.clear();
  helo_name.clear();
  queue_id.clear();
  sender.clear();
  recipient.clear();
  recipient_count = 0;
  client_address.clear();
  client_name.clear();
  reverse_client_name.clear();
  instance.clear();
  sasl_method.clear();
  sasl_username.clear();
  sasl_sender.clear();
  size = 0;
  ccert_subject.clear();
  ccert_issuer.clear();
  ccert_fingerprint.clear();
  encryption_protocol.clear();
  encryption_cipher.clear();
  encryption_keysize = 0;
  etrn_domain.clear();
  stress = false;
  ccert_pubkey_fingerprint.clear();
  client_port = 0;
  policy_context.clear();
  server_address.clear();
  server_port = 0;
  compatibility_level.clear();
  mail_version.clear();
  tls_sni.clear();
  unknown.clear();
}

}  // namespace rcptguard::protocol
