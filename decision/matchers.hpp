// Allow-list and class membership tests: address patterns and client networks. Built once from
// configuration; queried with already normalised keys or raw client addresses.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace rcptguard::decision {

/// Address patterns: "bob@example.test" (exact), "*@example.test" or "@example.test" (the
/// domain), or a glob with '*' and '?' ("noreply-*@*.example.test"). Patterns are normalised
/// like keys (case, extension), so they match what the engine counts.
class address_patterns {
 public:
  address_patterns() = default;
  address_patterns(const std::vector<std::string>& patterns, std::string_view delimiters);

  bool matches(std::string_view normalised_address) const;
  bool empty() const { return exact_.empty() && domains_.empty() && globs_.empty(); }

 private:
  // Transparent hashing lets a string_view look up without building a std::string.
  struct view_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using view_set = std::unordered_set<std::string, view_hash, std::equal_to<>>;

  view_set exact_;
  view_set domains_;
  std::vector<std::string> globs_;
};

/// Client networks in CIDR notation, IPv4 and IPv6; malformed entries are reported by
/// `invalid()` and never match.
class network_set {
 public:
  network_set() = default;
  explicit network_set(const std::vector<std::string>& networks);

  /// `client` is Postfix's client_address (not aggregated).
  bool contains(std::string_view client) const;
  const std::vector<std::string>& invalid() const { return invalid_; }
  bool empty() const { return networks_.empty(); }

 private:
  struct network {
    bool v6 = false;
    std::array<unsigned char, 16> bytes{};
    unsigned prefix = 0;
  };
  std::vector<network> networks_;
  std::vector<std::string> invalid_;
};

/// '*' matches any run (also empty), '?' one byte; no escapes. Iterative, so no pattern can
/// make it recurse or go exponential.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace rcptguard::decision
