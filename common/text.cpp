#include "common/text.hpp"

#include <algorithm>

namespace rcptguard {

namespace {

constexpr std::string_view truncation_mark = "...";

bool is_printable_ascii(unsigned char c) {
  return c >= 0x20 && c < 0x7f;
}

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not a valid, shortest-form
// sequence (RFC 3629: no surrogates, nothing above U+10FFFF, no overlong forms).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t len = 0;
  unsigned char min_second = 0x80;
  unsigned char max_second = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    len = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    len = 3;
    if (lead == 0xe0) min_second = 0xa0;
    if (lead == 0xed) max_second = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    len = 4;
    if (lead == 0xf0) min_second = 0x90;
    if (lead == 0xf4) max_second = 0x8f;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < min_second || byte(i + 1) > max_second) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return len;
}

}  // namespace

std::string sanitize_for_log(std::string_view untrusted, std::size_t max_bytes) {
  std::string out;
  const bool cut = untrusted.size() > max_bytes;
  const std::string_view kept = cut ? untrusted.substr(0, max_bytes) : untrusted;
  out.reserve(kept.size() + truncation_mark.size());
  for (const char c : kept) {
    out.push_back(is_printable_ascii(static_cast<unsigned char>(c)) ? c : '?');
  }
  if (cut) out.append(truncation_mark);
  return out;
}

std::string sanitize_for_reply(std::string_view untrusted, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(untrusted.size(), max_bytes));
  std::size_t i = 0;
  while (i < untrusted.size()) {
    const auto c = static_cast<unsigned char>(untrusted[i]);
    std::size_t len = utf8_sequence_length(untrusted, i);
    const bool control = c < 0x20 || c == 0x7f;
    const std::size_t emitted = (len == 0 || control) ? 1 : len;
    if (out.size() + emitted > max_bytes) break;
    if (len == 0 || control) {
      out.push_back('?');
      len = 1;
    } else {
      out.append(untrusted.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace rcptguard
