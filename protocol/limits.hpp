// Bounds on what a policy client may send, each checked before the allocation it guards.
#pragma once

#include <cstddef>

namespace rcptguard::protocol {

struct limits {
  /// One name=value line: the bytes before its LF, a trailing CR included. Postfix's own reader
  /// accepts 4 x line_length_limit (2048) per string (attr_scan_plain.c), so a real Postfix never
  /// sends more than this.
  std::size_t max_line = 8192;
  /// Attributes per request, duplicates included. Postfix 3.12 sends about 32.
  std::size_t max_attributes = 128;
  /// Bytes of one whole request including the closing empty line.
  std::size_t max_request = 65536;

  bool operator==(const limits&) const = default;
};

/// Upper bound of the text we put after an action verb: an SMTP reply line is 512 bytes
/// (RFC 5321 4.5.3.1.5) and Postfix prefixes "450 4.7.1 <recipient>: Recipient address rejected: ".
inline constexpr std::size_t max_reply_text = 300;

}  // namespace rcptguard::protocol
