// A Postfix policy request (SMTPD_POLICY_README), with typed fields for every attribute
// Postfix 2.1 to 3.12 sends. Unknown attributes are kept, in order, and otherwise ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rcptguard::protocol {

/// The SMTP command being evaluated. BDAT arrives as DATA (Postfix 3.4+).
enum class protocol_state : std::uint8_t {
  unknown,
  connect,
  ehlo,
  helo,
  mail,
  rcpt,
  data,
  end_of_message,
  vrfy,
  etrn,
};

/// Postfix's spelling of a state ("END-OF-MESSAGE"); "UNKNOWN" for protocol_state::unknown.
std::string_view to_string(protocol_state state);
/// Case-insensitive; protocol_state::unknown when the text is not a state Postfix sends.
protocol_state parse_protocol_state(std::string_view text);

struct attribute {
  std::string name;
  std::string value;

  bool operator==(const attribute&) const = default;
};

/// Numbers (recipient_count, size, encryption_keysize, client_port, server_port) are 0 when
/// unknown: Postfix sends 0 or nothing when it has no value, "unknown" for a port behind
/// postscreen or XCLIENT, and the parser keeps anything that is not a decimal in range as 0
/// rather than refuse the request (protocol/parser.cpp, set_number).
struct policy_request {
  // Postfix 2.1
  std::string request;  ///< always "smtpd_access_policy" from smtpd
  protocol_state state = protocol_state::unknown;
  std::string protocol_name;
  std::string helo_name;
  std::string queue_id;
  std::string sender;
  std::string recipient;
  std::uint32_t recipient_count = 0;  ///< 2.3+
  std::string client_address;
  std::string client_name;
  std::string reverse_client_name;  ///< 2.3+
  std::string instance;
  // Postfix 2.2
  std::string sasl_method;
  std::string sasl_username;
  std::string sasl_sender;
  std::uint64_t size = 0;
  std::string ccert_subject;
  std::string ccert_issuer;
  std::string ccert_fingerprint;
  // Postfix 2.3
  std::string encryption_protocol;
  std::string encryption_cipher;
  std::uint32_t encryption_keysize = 0;
  std::string etrn_domain;
  // Postfix 2.5
  bool stress = false;  ///< "stress=yes" while smtpd runs under overload
  // Postfix 2.9
  std::string ccert_pubkey_fingerprint;
  // Postfix 3.0
  std::uint16_t client_port = 0;
  // Postfix 3.1
  std::string policy_context;
  // Postfix 3.2
  std::string server_address;
  std::uint16_t server_port = 0;
  // Postfix 3.8
  std::string compatibility_level;
  std::string mail_version;
  // Postfix 3.12
  std::string tls_sni;

  /// Attributes this build does not know, in arrival order (first value of each name only).
  std::vector<attribute> unknown;

  /// Back to the default state, keeping string capacity so a connection's requests reuse memory.
  void clear();

  /// Field-by-field equality, so tests can compare whole requests.
  bool operator==(const policy_request&) const = default;
};

}  // namespace rcptguard::protocol
