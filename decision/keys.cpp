// Address and client-network normalisation (see keys.hpp).
#include "decision/keys.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

namespace rcptguard::decision {

namespace {

char fold(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool starts_with_folded(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (fold(s[i]) != prefix[i]) return false;
  }
  return true;
}

bool ends_with_folded(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         starts_with_folded(s.substr(s.size() - suffix.size()), suffix);
}

// Where the extension starts in `local`, or npos. Postfix never splits "owner-foo" or
// "foo-request" on '-' (split_addr.c), so list addresses keep their identity.
std::size_t extension_start(std::string_view local, std::string_view delimiters) {
  const std::size_t at = local.find_first_of(delimiters);
  if (at == std::string_view::npos || at == 0) return std::string_view::npos;
  if (local[at] == '-' &&
      (starts_with_folded(local, "owner-") || ends_with_folded(local, "-request"))) {
    return std::string_view::npos;
  }
  return at;
}

void append_folded(std::string_view s, std::string& out) {
  for (const char c : s) out.push_back(fold(c));
}

}  // namespace

void normalise_address(std::string_view address, std::string_view delimiters, std::string& out) {
  out.clear();
  if (address == "<>") return;
  const std::size_t at = address.rfind('@');
  const std::string_view local = at == std::string_view::npos ? address : address.substr(0, at);
  const std::size_t cut =
      delimiters.empty() ? std::string_view::npos : extension_start(local, delimiters);
  append_folded(local.substr(0, cut), out);
  if (at != std::string_view::npos) append_folded(address.substr(at), out);
}

void normalise_client(std::string_view address, unsigned ipv6_prefix, std::string& out) {
  out.clear();
  // inet_pton needs a terminated string; a client address never comes near this size.
  std::array<char, INET6_ADDRSTRLEN + 1> text{};
  std::array<unsigned char, 16> bytes{};
  const bool fits = address.size() < text.size();
  if (fits) std::memcpy(text.data(), address.data(), address.size());
  if (!fits || address.find(':') == std::string_view::npos ||
      inet_pton(AF_INET6, text.data(), bytes.data()) != 1) {
    append_folded(address, out);
    return;
  }
  constexpr std::array<unsigned char, 12> v4_mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(v4_mapped.begin(), v4_mapped.end(), bytes.begin())) {
    std::array<char, INET_ADDRSTRLEN> v4{};
    inet_ntop(AF_INET, bytes.data() + 12, v4.data(), v4.size());
    out.append(v4.data());
    return;
  }
  const unsigned prefix = std::min(ipv6_prefix, 128U);
  for (unsigned bit = prefix; bit < 128; ++bit) {
    bytes[bit / 8] = static_cast<unsigned char>(bytes[bit / 8] & ~(0x80U >> (bit % 8)));
  }
  std::array<char, INET6_ADDRSTRLEN> v6{};
  inet_ntop(AF_INET6, bytes.data(), v6.data(), v6.size());
  out.append(v6.data());
  if (prefix < 128) {
    std::array<char, 4> digits{};
    const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), prefix).ptr;
    out.push_back('/');
    out.append(digits.data(), end);
  }
}

}  // namespace rcptguard::decision
