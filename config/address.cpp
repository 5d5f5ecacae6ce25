// Listen endpoint and CIDR parsing; see address.hpp.
#include "config/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>

#include "common/text.hpp"

namespace rcptguard {

namespace {

constexpr std::string_view inet_scheme = "inet:";
constexpr std::string_view unix_scheme = "unix:";
constexpr std::size_t max_host_name = 253;  // RFC 1035 2.3.4, without the trailing dot

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Decimal digits only: a sign, a space or a hex prefix is a typo, not a port.
std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (const char c : s) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// inet_pton needs a NUL-terminated string; a copy also stops it reading past the view.
bool to_bytes(int family, std::string_view text, std::uint8_t* out) {
  const std::string copy{text};
  return inet_pton(family, copy.c_str(), out) == 1;
}

std::string to_text(int family, const std::uint8_t* bytes) {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  if (inet_ntop(family, bytes, buf.data(), static_cast<socklen_t>(buf.size())) == nullptr) {
    return {};
  }
  return std::string{buf.data()};
}

bool is_host_name(std::string_view s) {
  if (s.empty() || s.size() > max_host_name || s.front() == '-' || s.front() == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.';
  });
}

std::optional<endpoint> parse_inet(std::string_view rest, std::string& error) {
  endpoint ep;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) {
      error = "missing ']' after the IPv6 address";
      return std::nullopt;
    }
    const std::string_view address = rest.substr(1, close - 1);
    std::array<std::uint8_t, 16> bytes{};
    if (!to_bytes(AF_INET6, address, bytes.data())) {
      error = "'" + sanitize_for_log(address) + "' is not an IPv6 address";
      return std::nullopt;
    }
    ep.host = to_text(AF_INET6, bytes.data());
    if (close + 1 >= rest.size() || rest[close + 1] != ':') {
      error = "expected ':PORT' after ']'";
      return std::nullopt;
    }
    port_text = rest.substr(close + 2);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      error = "expected inet:HOST:PORT";
      return std::nullopt;
    }
    const std::string_view host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      error = "an IPv6 address needs brackets: inet:[ADDRESS]:PORT";
      return std::nullopt;
    }
    if (host.empty()) {
      error = "missing host; use 0.0.0.0 or [::] for every address";
      return std::nullopt;
    }
    const bool looks_numeric =
        std::all_of(host.begin(), host.end(), [](char c) { return is_digit(c) || c == '.'; });
    std::array<std::uint8_t, 4> bytes{};
    if (looks_numeric) {
      if (!to_bytes(AF_INET, host, bytes.data())) {
        error = "'" + sanitize_for_log(host) + "' is not an IPv4 address";
        return std::nullopt;
      }
    } else if (!is_host_name(host)) {
      error = "'" + sanitize_for_log(host) + "' is not a host name";
      return std::nullopt;
    }
    ep.host = ascii_lower(host);
  }
  const auto port = parse_port(port_text);
  if (!port) {
    error = "'" + sanitize_for_log(port_text) + "' is not a port (0 to 65535)";
    return std::nullopt;
  }
  ep.port = *port;
  return ep;
}

std::optional<endpoint> parse_unix(std::string_view path, std::string& error) {
  if (path.empty() || path.front() != '/') {
    error = "a unix socket path must be absolute";
    return std::nullopt;
  }
  if (path.find('\0') != std::string_view::npos) {
    error = "a unix socket path must not contain NUL";
    return std::nullopt;
  }
  // sun_path is fixed-size; a longer path would only fail later, at bind time.
  constexpr std::size_t max_path = sizeof(sockaddr_un{}.sun_path) - 1;
  if (path.size() > max_path) {
    error = "a unix socket path may have at most " + std::to_string(max_path) + " bytes";
    return std::nullopt;
  }
  endpoint ep;
  ep.kind = endpoint_kind::unix_socket;
  ep.path = std::string{path};
  return ep;
}

bool prefix_matches(const std::uint8_t* a, const std::uint8_t* b, unsigned prefix) {
  const unsigned whole = prefix / 8;
  if (!std::equal(a, a + whole, b)) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xffU << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

// Zeroes every bit after `prefix`.
void mask_host_bits(std::uint8_t* bytes, std::size_t size, unsigned prefix) {
  for (std::size_t i = 0; i < size; ++i) {
    const std::size_t first_bit = i * 8;
    if (first_bit >= prefix) {
      bytes[i] = 0;
    } else if (first_bit + 8 > prefix) {
      bytes[i] &= static_cast<std::uint8_t>(0xffU << (8 - (prefix - first_bit)));
    }
  }
}

}  // namespace

std::optional<endpoint> parse_endpoint(std::string_view text, std::string& error) {
  if (text.starts_with(inet_scheme)) return parse_inet(text.substr(inet_scheme.size()), error);
  if (text.starts_with(unix_scheme)) return parse_unix(text.substr(unix_scheme.size()), error);
  error = "expected inet:HOST:PORT, inet:[IPV6]:PORT or unix:/PATH";
  return std::nullopt;
}

std::optional<cidr> parse_cidr(std::string_view text, std::string& error) {
  const auto slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  cidr net;
  if (to_bytes(AF_INET, address, net.bytes.data())) {
    net.is_v6 = false;
  } else if (to_bytes(AF_INET6, address, net.bytes.data())) {
    net.is_v6 = true;
  } else {
    error = "'" + sanitize_for_log(address) + "' is not an IPv4 or IPv6 address";
    return std::nullopt;
  }
  const unsigned max_prefix = net.is_v6 ? 128 : 32;
  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto bad_prefix = [&] {
      error = "the prefix length must be a number from 0 to " + std::to_string(max_prefix);
      return std::nullopt;
    };
    if (digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), is_digit)) {
      return bad_prefix();
    }
    prefix = 0;
    for (const char c : digits) prefix = prefix * 10 + static_cast<unsigned>(c - '0');
    if (prefix > max_prefix) return bad_prefix();
  }
  net.prefix = static_cast<std::uint8_t>(prefix);
  const std::size_t size = net.is_v6 ? 16 : 4;
  const auto given = net.bytes;
  mask_host_bits(net.bytes.data(), size, prefix);
  if (net.bytes != given) {
    error = "host bits are set; did you mean " +
            to_text(net.is_v6 ? AF_INET6 : AF_INET, net.bytes.data()) + "/" +
            std::to_string(prefix) + "?";
    return std::nullopt;
  }
  return net;
}

bool cidr::contains(std::span<const std::uint8_t> address) const {
  if (address.size() == 4) {
    return !is_v6 && prefix_matches(address.data(), bytes.data(), prefix);
  }
  if (address.size() != 16) return false;
  if (is_v6) return prefix_matches(address.data(), bytes.data(), prefix);
  constexpr std::array<std::uint8_t, 12> v4_mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::equal(v4_mapped.begin(), v4_mapped.end(), address.begin()) &&
         prefix_matches(address.data() + 12, bytes.data(), prefix);
}

bool cidr::contains(std::string_view address) const {
  std::array<std::uint8_t, 16> buf{};
  if (to_bytes(AF_INET, address, buf.data())) return contains(std::span{buf.data(), 4});
  if (to_bytes(AF_INET6, address, buf.data())) return contains(std::span{buf.data(), 16});
  return false;
}

bool same_socket(const endpoint& a, const endpoint& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == endpoint_kind::unix_socket) return a.path == b.path;
  const auto wildcard = [](const std::string& host) { return host == "0.0.0.0" || host == "::"; };
  return a.port != 0 && a.port == b.port &&
         (a.host == b.host || wildcard(a.host) || wildcard(b.host));
}

}  // namespace rcptguard
