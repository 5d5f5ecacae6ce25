// Accepts policy connections on any mix of TCP endpoints and unix sockets, enforces the client
// allowlist and the connection caps, and keeps the set of live sessions for shutdown.
//
// The caps must not let idle connections lock Postfix out: an smtpd process that needs a verdict
// must get in even when some local user has opened max_connections sockets and sits on them.
// So at a cap the longest-idle session gives way (Postfix's policy client reconnects and resends
// when its idle connection was closed); only when every session is mid-request is the new one
// refused. The per-client cap bounds what one TCP address can hold, and a client at it displaces
// only its own sessions, never another client's.
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/session.hpp"
#include "server/stats.hpp"

namespace rcptguard::server {

/// Connection caps; zero max_per_client means no per-address cap.
struct connection_limits {
  std::size_t max_connections = 1024;
  std::size_t max_per_client = 0;
};

struct unix_socket_options {
  unsigned mode = 0660;
  std::string group;  ///< empty: keep the process's group
};

/// Makes way for a unix socket at `path`: removes a stale socket (one nobody accepts on); throws
/// std::runtime_error if the path is anything else (a live socket, a file, a directory, a
/// symlink), which is never replaced.
void remove_stale_socket(const std::string& path);

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

  void set_connection_limits(const connection_limits& limits) { limits_ = limits; }
  std::vector<std::uint16_t> bound_tcp_ports() const;
  std::size_t open_sessions() const { return sessions_.size(); }
  /// Sessions waiting between requests: those a cap may close to make room.
  std::size_t idle_sessions() const;

 private:
  void accept_tcp(boost::asio::ip::tcp::acceptor& acceptor);
  void accept_unix(boost::asio::local::stream_protocol::acceptor& acceptor);
  /// Makes room for a new connection from `client` (empty for unix sockets) by evicting an
  /// idle session if a cap is reached; false if it must be refused.
  bool admit(const std::string& client, const std::string& peer);
  /// The longest-idle session, among those of `client` when it is not empty.
  session_base* longest_idle(const std::string& client) const;
  void note_cap(drop_reason refusal, const std::string& client, bool evicted,
                const std::string& peer);
  void accept_failed(const boost::system::error_code& ec, int listen_fd,
                     std::function<void()> accept_again);
  template <typename Socket>
  void launch(Socket socket, std::string client, std::string peer);

  boost::asio::io_context& io_;
  session_context& context_;
  allow_fn allow_client_;
  connection_limits limits_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> tcp_acceptors_;
  std::vector<std::unique_ptr<boost::asio::local::stream_protocol::acceptor>> unix_acceptors_;
  std::vector<std::string> unix_paths_;
  /// Live sessions and the TCP address each came from (empty for unix sockets).
  std::unordered_map<session_base*, std::string> sessions_;
  std::unordered_map<std::string, std::size_t> sessions_per_client_;
  std::uint64_t next_id_ = 1;
  bool accepting_ = false;
  /// Cap events come thousands per second under attack; they are logged as one line per
  /// interval and kind, with the counts since the last line.
  struct cap_log {
    std::chrono::steady_clock::time_point last{};
    std::uint64_t evicted = 0;
    std::uint64_t refused = 0;
  };
  cap_log global_cap_log_;
  cap_log client_cap_log_;
  cap_log fd_log_;
  /// A descriptor held back so that at EMFILE one connection can still be accepted and closed
  /// at once: the client is refused instead of hanging in the backlog.
  int reserve_fd_ = -1;
};

}  // namespace rcptguard::server
