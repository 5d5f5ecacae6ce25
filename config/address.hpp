// The two address syntaxes a settings file uses: listen endpoints and client CIDRs. Plain
// parsing on inet_pton so config/ stays free of Asio; server/ turns the results into sockets.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace rcptguard {

enum class endpoint_kind : std::uint8_t { inet, unix_socket };

struct endpoint {
  endpoint_kind kind = endpoint_kind::inet;
  /// inet: a lower-cased host name, or an address literal in canonical form, without brackets.
  std::string host;
  std::uint16_t port = 0;
  /// unix_socket: an absolute path that fits sockaddr_un.
  std::string path;

  bool operator==(const endpoint&) const = default;
};

/// "inet:HOST:PORT", "inet:[IPV6]:PORT" or "unix:/abs/path". On failure returns nullopt and
/// sets `error` to the reason.
std::optional<endpoint> parse_endpoint(std::string_view text, std::string& error);

/// Whether binding both would collide: one unix path, or one TCP port (not 0, which the kernel
/// picks afresh) on the same host or with either on a wildcard address (0.0.0.0, ::), which
/// takes the port on every address.
bool same_socket(const endpoint& a, const endpoint& b);

/// A network: address bytes with the host part zero, and a prefix length.
struct cidr {
  bool is_v6 = false;
  std::array<std::uint8_t, 16> bytes{};  ///< the first 4 are used for IPv4
  std::uint8_t prefix = 0;

  /// A textual IPv4 or IPv6 address; false when it is neither. An IPv4-mapped IPv6 address
  /// (::ffff:a.b.c.d) matches IPv4 networks, since a dual-stack socket reports IPv4 peers so.
  bool contains(std::string_view address) const;
  /// Network-order bytes: 4 for IPv4, 16 for IPv6; any other size is contained nowhere.
  bool contains(std::span<const std::uint8_t> address) const;

  bool operator==(const cidr&) const = default;
};

/// "ADDRESS/PREFIX", or a bare address meaning that one host. Host bits must be zero, so a
/// typo such as 10.0.0.1/8 is reported rather than silently widened. Sets `error` on failure.
std::optional<cidr> parse_cidr(std::string_view text, std::string& error);

}  // namespace rcptguard
