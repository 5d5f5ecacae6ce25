#include "config/safety.hpp"

#include "config/address.hpp"

namespace rcptguard {

namespace {

// "0660": four octal digits, as chmod takes them.
std::string octal_mode(std::uint32_t mode) {
  std::string text(4, '0');
  for (std::size_t k = 4; k-- > 0; mode >>= 3U) text[k] = static_cast<char>('0' + (mode & 7U));
  return text;
}

bool is_loopback(const std::string& host) {
  std::string error;
  static const auto v4 = parse_cidr("127.0.0.0/8", error);
  static const auto v6 = parse_cidr("::1", error);
  return v4->contains(host) || v6->contains(host);
}

/// The entry of `allow_clients` that admits every address (a /0), or "".
std::string admits_everyone(const std::vector<std::string>& allow_clients) {
  for (const auto& entry : allow_clients) {
    std::string error;
    const auto net = parse_cidr(entry, error);
    if (net && net->prefix == 0) return entry;
  }
  return {};
}

/// An inet endpoint on an address other hosts can reach.
bool reachable_from_other_hosts(const std::string& text) {
  std::string error;
  const auto ep = parse_endpoint(text, error);
  return ep && ep->kind == endpoint_kind::inet && !is_loopback(ep->host);
}

}  // namespace

std::size_t descriptors_needed(const config& c) {
  return c.server.max_connections + descriptors_besides_connections;
}

std::vector<std::string> unsafe_settings(const config& c, std::uint64_t file_limit) {
  std::vector<std::string> found;
  const std::string open_network = admits_everyone(c.server.allow_clients);
  for (const auto& text : c.server.listen) {
    std::string error;
    const auto ep = parse_endpoint(text, error);
    if (!ep) continue;
    if (reachable_from_other_hosts(text) && !open_network.empty()) {
      found.push_back("server.listen \"" + text +
                      "\" is reachable from other hosts and server.allow_clients admits every "
                      "address (\"" +
                      open_network +
                      "\"): anyone who reaches the port can read verdicts and add to the "
                      "counts; list the MX hosts instead");
    }
    if (ep->kind == endpoint_kind::unix_socket && (c.server.unix_socket_mode & 0007U) != 0) {
      found.push_back("server.unix_socket_mode " + octal_mode(c.server.unix_socket_mode) +
                      " lets every local user connect to \"" + ep->path +
                      "\" (read verdicts, add to the counts, hold connections); use 0660 with "
                      "server.unix_socket_group");
    }
  }
  const std::string open_metrics = admits_everyone(c.metrics.allow_clients);
  if (reachable_from_other_hosts(c.metrics.listen) && !open_metrics.empty()) {
    found.push_back("metrics.listen \"" + c.metrics.listen +
                    "\" is reachable from other hosts and metrics.allow_clients admits every "
                    "address (\"" +
                    open_metrics +
                    "\"): anyone who reaches the port can read the traffic volumes and the "
                    "daemon's state; list the Prometheus servers instead");
  }
  if (descriptors_needed(c) > file_limit) {
    const std::uint64_t room = file_limit > descriptors_besides_connections
                                   ? file_limit - descriptors_besides_connections
                                   : 0;
    found.push_back("server.max_connections " + std::to_string(c.server.max_connections) +
                    " needs about " + std::to_string(descriptors_needed(c)) +
                    " file descriptors but the limit is " + std::to_string(file_limit) +
                    ": connections beyond about " + std::to_string(room) +
                    " are refused at accept; raise the limit (LimitNOFILE=, ulimit -n) or lower "
                    "server.max_connections");
  }
  return found;
}

}  // namespace rcptguard
