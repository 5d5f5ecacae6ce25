// Address patterns and CIDR sets (see matchers.hpp).
#include "decision/matchers.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "decision/keys.hpp"

namespace rcptguard::decision {

namespace {

// Parses an IPv4 or IPv6 address; false when it is neither.
bool parse_address(std::string_view text, bool& v6, std::array<unsigned char, 16>& bytes) {
  std::array<char, INET6_ADDRSTRLEN + 1> buf{};
  if (text.size() >= buf.size()) return false;
  std::memcpy(buf.data(), text.data(), text.size());
  bytes.fill(0);
  if (inet_pton(AF_INET, buf.data(), bytes.data()) == 1) {
    v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, buf.data(), bytes.data()) == 1) {
    v6 = true;
    return true;
  }
  return false;
}

bool prefix_equal(const std::array<unsigned char, 16>& a, const std::array<unsigned char, 16>& b,
                  unsigned prefix) {
  const unsigned whole = prefix / 8;
  if (std::memcmp(a.data(), b.data(), whole) != 0) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const unsigned mask = (0xffU << (8 - rest)) & 0xffU;
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

address_patterns::address_patterns(const std::vector<std::string>& patterns,
                                   std::string_view delimiters) {
  std::string normalised;
  for (const std::string& pattern : patterns) {
    normalise_address(pattern, delimiters, normalised);
    if (normalised.empty()) continue;
    const std::string_view view = normalised;
    if (view.starts_with("*@") && view.find_first_of("*?", 2) == std::string_view::npos) {
      domains_.emplace(view.substr(2));
    } else if (view.starts_with("@")) {
      domains_.emplace(view.substr(1));
    } else if (view.find_first_of("*?") != std::string_view::npos) {
      globs_.push_back(normalised);
    } else {
      exact_.insert(normalised);
    }
  }
}

bool address_patterns::matches(std::string_view address) const {
  if (exact_.find(address) != exact_.end()) return true;
  const std::size_t at = address.rfind('@');
  if (at != std::string_view::npos && domains_.find(address.substr(at + 1)) != domains_.end()) {
    return true;
  }
  for (const std::string& glob : globs_) {
    if (glob_match(glob, address)) return true;
  }
  return false;
}

network_set::network_set(const std::vector<std::string>& networks) {
  for (const std::string& entry : networks) {
    const std::string_view text = entry;
    const std::size_t slash = text.find('/');
    network net;
    if (!parse_address(text.substr(0, slash), net.v6, net.bytes)) {
      invalid_.push_back(entry);
      continue;
    }
    const unsigned width = net.v6 ? 128 : 32;
    net.prefix = width;
    if (slash != std::string_view::npos) {
      const std::string_view digits = text.substr(slash + 1);
      const auto [end, error] =
          std::from_chars(digits.data(), digits.data() + digits.size(), net.prefix);
      if (error != std::errc{} || end != digits.data() + digits.size() || net.prefix > width ||
          digits.empty()) {
        invalid_.push_back(entry);
        continue;
      }
    }
    networks_.push_back(net);
  }
}

bool network_set::contains(std::string_view client) const {
  if (networks_.empty()) return false;
  bool v6 = false;
  std::array<unsigned char, 16> bytes{};
  if (!parse_address(client, v6, bytes)) return false;
  for (const network& net : networks_) {
    if (net.v6 == v6 && prefix_equal(net.bytes, bytes, net.prefix)) return true;
  }
  return false;
}

}  // namespace rcptguard::decision
