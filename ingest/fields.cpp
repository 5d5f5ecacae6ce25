// Field scanning shared by the log parsers (see fields.hpp).
#include "ingest/fields.hpp"

namespace rcptguard::ingest::fields {

bool find_value(std::string_view text, std::string_view key, bool space_ends,
                std::string_view& out) {
  std::size_t at = 0;
  while (true) {
    at = text.find(key, at);
    if (at == std::string_view::npos) return false;
    if (at == 0 || text[at - 1] == ' ' || text[at - 1] == ',') break;
    at += key.size();
  }
  const std::size_t start = at + key.size();
  std::size_t end = start;
  if (end < text.size() && text[end] == '<') {
    while (true) {
      const std::size_t close = text.find('>', end);
      if (close == std::string_view::npos) {
        end = text.size();
        break;
      }
      end = close + 1;
      // Sendmail lists several recipients in one to=: "<a>,<b>".
      if (end + 1 < text.size() && text[end] == ',' && text[end + 1] == '<') {
        ++end;
        continue;
      }
      break;
    }
  } else {
    while (end < text.size() && text[end] != ',' && !(space_ends && text[end] == ' ')) ++end;
  }
  out = text.substr(start, end - start);
  return true;
}

std::string_view value(std::string_view text, std::string_view key, bool space_ends) {
  std::string_view out;
  find_value(text, key, space_ends, out);
  return out;
}

std::string_view strip_angles(std::string_view v) {
  if (v.size() >= 2 && v.front() == '<' && v.back() == '>') return v.substr(1, v.size() - 2);
  return v;
}

bool split_client(std::string_view text, std::string_view& name, std::string_view& address) {
  const std::size_t open = text.find('[');
  if (open == std::string_view::npos) return false;
  const std::size_t close = text.find(']', open);
  if (close == std::string_view::npos) return false;
  name = text.substr(0, open);
  while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
  address = text.substr(open + 1, close - open - 1);
  // Sendmail writes IPv6 clients as "[IPv6:2001:db8::1]".
  if (address.starts_with("IPv6:") || address.starts_with("ipv6:")) address.remove_prefix(5);
  return true;
}

std::uint64_t number(std::string_view text) {
  std::uint64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') break;
    // Saturate rather than wrap on absurd values from a corrupt line.
    if (v > (UINT64_MAX - 9) / 10) return UINT64_MAX;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

bool postfix_queue_id(std::string_view token) {
  if (token.size() < 5 || token.size() > 20) return false;
  bool hex = true;
  bool long_alphabet = token.size() >= 12;
  for (const char c : token) {
    const bool d = c >= '0' && c <= '9';
    const bool up = c >= 'A' && c <= 'Z';
    const bool low = c >= 'a' && c <= 'z';
    if (!d && !up && !low) return false;
    if (!d && !(c >= 'A' && c <= 'F')) hex = false;
    const bool vowel = c == 'A' || c == 'E' || c == 'I' || c == 'O' || c == 'U' || c == 'a' ||
                       c == 'e' || c == 'i' || c == 'o' || c == 'u';
    if (vowel) long_alphabet = false;
  }
  return hex || long_alphabet;
}

bool sendmail_queue_id(std::string_view token) {
  if (token.size() < 12 || token.size() > 16) return false;
  int digits = 0;
  for (const char c : token) {
    const bool d = c >= '0' && c <= '9';
    if (!d && !(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z')) return false;
    digits += d ? 1 : 0;
  }
  return digits >= 4;
}

}  // namespace rcptguard::ingest::fields
