// The Prometheus endpoint (metrics.listen): HTTP/1.1 on the daemon's io_context (Boost.Beast),
// answering GET and HEAD /metrics with the text a callback renders on the network thread, so
// reading the network thread's counters needs no lock and a scrape never blocks it.
//
// Bounded like the policy listener, for the same reason (a scraper is a network peer): peers
// outside metrics.allow_clients are closed at once; at most max_connections at a time, newer
// ones refused; request headers at most max_header_bytes and no body; each request must arrive,
// and each reply be read, within timeout. Anything else is answered 404 (another path) or 405
// (another method), or closed without an answer (a malformed or oversized request).
#pragma once

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/address.hpp"
#include "daemon/accept_loop.hpp"

namespace rcptguard::daemon {

/// Counts for tests and for the log; read on the network thread.
struct metrics_service_stats {
  std::uint64_t scrapes = 0;       ///< 200 replies to GET or HEAD /metrics
  std::uint64_t not_found = 0;     ///< 404 and 405 replies
  std::uint64_t not_allowed = 0;   ///< peers outside metrics.allow_clients
  std::uint64_t over_limit = 0;    ///< refused at max_connections
  std::uint64_t bad_requests = 0;  ///< malformed, oversized or too slow: closed without a reply
};

class metrics_service {
 public:
  /// Scrapers served at once; Prometheus keeps one connection per target.
  static constexpr std::size_t max_connections = 8;
  /// Request line and headers; a scrape sends a few hundred bytes.
  static constexpr std::size_t max_header_bytes = 8 * 1024;
  /// For each request to arrive (from the end of the previous reply) and each reply to be read.
  static constexpr std::chrono::seconds timeout{10};

  /// `render` returns the body of a scrape; it runs on `io`'s thread.
  metrics_service(boost::asio::io_context& io, std::shared_ptr<spdlog::logger> log,
                  std::function<std::string()> render);
  metrics_service(const metrics_service&) = delete;
  metrics_service& operator=(const metrics_service&) = delete;
  ~metrics_service();

  /// Binds HOST:PORT (an IP literal; port 0 picks a free port, see port()). Throws
  /// std::runtime_error naming the endpoint and the reason.
  void bind(const std::string& host, std::uint16_t port);
  /// The bound port.
  std::uint16_t port() const;
  /// The networks whose connections are served; at start-up and on reload.
  void set_allowlist(std::vector<cidr> networks);
  /// Starts accepting; after the privilege drop, with the policy listeners.
  void start();
  /// Stops accepting and closes every connection, so the io_context can run out of work.
  void stop();

  const metrics_service_stats& stats() const { return stats_; }

 private:
  class connection;

  void admit(boost::asio::ip::tcp::socket socket);
  bool allowed(const boost::asio::ip::address& address) const;
  /// Logs `line` (a refusal, a bad request, a failed accept) unless one was logged within the
  /// last 10 s: a misbehaving peer cannot flood the log. The next line says how many were not.
  void warn_limited(const std::string& line);

  std::shared_ptr<spdlog::logger> log_;
  std::function<std::string()> render_;
  accept_loop<boost::asio::ip::tcp::acceptor> listener_;
  std::vector<cidr> allowlist_;
  std::unordered_set<connection*> connections_;
  metrics_service_stats stats_;
  std::optional<std::chrono::steady_clock::time_point> last_warning_;
  std::uint64_t warnings_unlogged_ = 0;

  friend class connection;
};

}  // namespace rcptguard::daemon
