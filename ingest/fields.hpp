// Scanning helpers shared by the Postfix and Sendmail parsers: "key=value" fields, "name[addr]"
// clients, queue ids. Views only, no allocation.
#pragma once

#include <cstdint>
#include <string_view>

namespace rcptguard::ingest::fields {

/// The value of `key` ("size=") found at the start of `text` or after a space or comma.
/// A value starting with '<' runs to its '>' (and on through ",<...>" lists); otherwise it
/// ends at ',' or, when `space_ends`, at ' '. Empty when absent.
std::string_view value(std::string_view text, std::string_view key, bool space_ends);

/// Like value(), but tells an absent key from an empty value.
bool find_value(std::string_view text, std::string_view key, bool space_ends,
                std::string_view& out);

/// "<a@b>" -> "a@b"; other text unchanged.
std::string_view strip_angles(std::string_view v);

/// Splits "name[addr]" or "name[addr]:port" (also "[addr]:port"); false without brackets.
bool split_client(std::string_view text, std::string_view& name, std::string_view& address);

/// Decimal digits at the start of `text`; 0 when there are none.
std::uint64_t number(std::string_view text);

/// Whether `token` is a Postfix queue id: short upper-case hex, or a long id
/// (enable_long_queue_ids) of 12+ characters from Postfix's vowel-free alphabet, so words like
/// "warning" never match.
bool postfix_queue_id(std::string_view token);

/// Whether `token` is a Sendmail queue id: 12 to 16 letters and digits, at least 4 of them digits.
bool sendmail_queue_id(std::string_view token);

/// `text` after `prefix` when it starts with it.
inline bool consume(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) return false;
  text.remove_prefix(prefix.size());
  return true;
}

}  // namespace rcptguard::ingest::fields
