// Text helpers for untrusted bytes: what may be logged, echoed to Postfix, or used as a key.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rcptguard {

/// A printable, length-capped copy of untrusted bytes for log lines: control bytes and
/// non-ASCII become '?', and a cut is marked with "...". Never lets a peer forge a log line.
std::string sanitize_for_log(std::string_view untrusted, std::size_t max_bytes = 100);

/// How much of one untrusted name (an address, a path, a reason) a log line, table or error
/// message quotes: an address is at most 256 bytes (RFC 5321), paths rarely more.
inline constexpr std::size_t max_printable = 320;

/// sanitize_for_log() at max_printable: the one way the daemon and the commands quote a name.
inline std::string printable(std::string_view untrusted) {
  return sanitize_for_log(untrusted, max_printable);
}

/// Replaces every byte sequence that is not valid UTF-8, and every C0 control or DEL, with '?'.
/// Truncates at max_bytes on a code point boundary. Postfix treats a non-UTF-8 reply as a
/// failed exchange when SMTPUTF8 is on, and a CR or LF would split the reply.
std::string sanitize_for_reply(std::string_view untrusted, std::size_t max_bytes);

/// ASCII lower-casing; mail keys are compared case-insensitively on the ASCII range only.
std::string ascii_lower(std::string_view s);

}  // namespace rcptguard
