// Accepts policy connections on any mix of TCP endpoints and unix sockets, enforces the client
// allowlist and the connection cap, and keeps the set of live sessions for shutdown.
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "server/session.hpp"

namespace rcptguard::server {

struct unix_socket_options {
  unsigned mode = 0660;
  std::string group;  ///< empty: keep the process's group
};

class listener_set {
 public:
  using allow_fn = std::function<bool(const boost::asio::ip::address&)>;

  listener_set(boost::asio::io_context& io, session_context& context, allow_fn allow_client);
  listener_set(const listener_set&) = delete;
  listener_set& operator=(const listener_set&) = delete;
  ~listener_set();

  /// Binds a TCP endpoint; port 0 picks a free port (see bound_tcp_ports). Throws
  /// std::runtime_error naming the endpoint and the reason.
  void bind_tcp(const std::string& host, std::uint16_t port);
  /// Binds a unix socket. An existing path is replaced only if it is a socket nobody listens on.
  void bind_unix(const std::string& path, const unix_socket_options& options);

  void start_accepting();
  /// Stops accepting and closes idle sessions; busy ones close after their reply.
  void shutdown();

  void set_max_connections(std::size_t max) { max_connections_ = max; }
  std::vector<std::uint16_t> bound_tcp_ports() const;
  std::size_t open_sessions() const { return sessions_.size(); }

 private:
  void accept_tcp(boost::asio::ip::tcp::acceptor& acceptor);
  void accept_unix(boost::asio::local::stream_protocol::acceptor& acceptor);
  bool admit(const std::string& peer);
  void retry_accept_later(const boost::system::error_code& ec, std::function<void()> accept_again);
  template <typename Socket>
  void launch(Socket socket, std::string peer);

  boost::asio::io_context& io_;
  session_context& context_;
  allow_fn allow_client_;
  std::size_t max_connections_ = 1024;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> tcp_acceptors_;
  std::vector<std::unique_ptr<boost::asio::local::stream_protocol::acceptor>> unix_acceptors_;
  std::vector<std::string> unix_paths_;
  std::unordered_set<session_base*> sessions_;
  std::uint64_t next_id_ = 1;
  bool accepting_ = false;
  std::chrono::steady_clock::time_point last_cap_log_{};
  std::uint64_t cap_refusals_since_log_ = 0;
};

}  // namespace rcptguard::server
