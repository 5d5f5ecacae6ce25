// An in-process server for the socket tests: a listener_set with a scripted request_handler,
// on an io_context run by its own thread, bound to loopback TCP (port 0) and a unix socket in a
// temporary directory. The test thread only touches the server through run_on_io(), so the
// network thread keeps sole ownership of sessions and counters, as in the daemon.
#pragma once

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "server/listener.hpp"
#include "server/request_handler.hpp"
#include "server/session.hpp"
#include "server/stats.hpp"
#include "tests/server/test_support.hpp"

namespace rcptguard::server_test {

/// A request_handler whose answers and faults the test scripts. Called on the network thread;
/// everything the test reads is atomic or behind a mutex.
class scripted_handler final : public server::request_handler {
 public:
  enum class behaviour : std::uint8_t {
    dunno,           ///< answer action=DUNNO, as the daemon does today
    echo_recipient,  ///< answer "action=WARN <recipient>", so a test can match replies to requests
  };

  std::atomic<behaviour> answer{behaviour::dunno};
  /// The next this-many requests throw instead of answering (an internal fault).
  std::atomic<int> faults_to_inject{0};
  /// The next this-many connection_closed calls throw after being counted.
  std::atomic<int> close_faults_to_inject{0};
  /// Nonzero: DUNNO replies carry an extra attribute of this many bytes (Postfix skips unknown
  /// reply attributes), for replies larger than any socket buffer.
  std::atomic<std::size_t> reply_padding{0};

  void handle(const protocol::policy_request& request, std::uint64_t connection_id,
              std::string& reply) override;
  void connection_closed(std::uint64_t connection_id) override;

  std::uint64_t handled() const { return handled_.load(); }
  /// connection_closed calls so far, over all connections.
  std::size_t closed_calls() const;
  /// Connections for which connection_closed came more than once (must stay zero).
  std::size_t closed_twice() const;

 private:
  std::atomic<std::uint64_t> handled_{0};
  mutable std::mutex mutex_;
  std::map<std::uint64_t, int> closed_;
};

struct harness_options {
  server::session_settings settings;
  server::connection_limits limits;
  bool unix_socket = true;
  std::string unix_path;  ///< empty: policy.sock in a fresh temporary directory
  server::unix_socket_options unix_options;
  server::listener_set::allow_fn allow_client = [](const boost::asio::ip::address&) {
    return true;
  };
  std::chrono::milliseconds watchdog_timeout = 15s;
};

class server_harness {
 public:
  explicit server_harness(harness_options options = {});
  server_harness(const server_harness&) = delete;
  server_harness& operator=(const server_harness&) = delete;
  ~server_harness();

  std::uint16_t tcp_port() const { return tcp_port_; }
  const std::string& unix_path() const { return unix_path_; }
  scripted_handler& handler() { return handler_; }

  test_client connect_tcp() const { return test_client::tcp(tcp_port_); }
  test_client connect_unix() const { return test_client::unix_socket(unix_path_); }

  /// Runs `f` on the network thread and waits for it; false (and a test failure) if the
  /// network thread did not get to it within io_timeout.
  bool run_on_io(std::function<void()> f);

  /// A copy of the counters, taken on the network thread.
  server::server_stats stats();
  std::size_t open_sessions();
  std::size_t idle_sessions();
  /// listener_set::shutdown(), as the daemon calls it on SIGTERM.
  void shutdown();
  /// Replaces the settings every session reads, as the daemon does on SIGHUP.
  void update_settings(const server::session_settings& settings);
  /// Exceptions that escaped io_context::run(); the daemon would have exited on the first.
  int escaped_exceptions() const { return escaped_exceptions_.load(); }
  /// True once io_context::run() has returned because no work was left (a drained shutdown).
  bool wait_until_drained(std::chrono::milliseconds timeout);

  /// Every captured log line, formatted "<level>: <message>".
  std::vector<std::string> log_lines() const;
  bool logged(std::string_view needle) const;

 private:
  harness_options options_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_sink_;
  scripted_handler handler_;
  server::server_stats stats_;
  server::session_context context_;
  boost::asio::io_context io_{1};
  std::unique_ptr<temp_dir> dir_;
  std::unique_ptr<server::listener_set> listeners_;
  std::uint16_t tcp_port_ = 0;
  std::string unix_path_;
  std::atomic<bool> watchdog_fired_{false};
  std::atomic<int> escaped_exceptions_{0};
  std::promise<void> drained_;
  std::future<void> drained_future_;
  std::thread io_thread_;
  std::unique_ptr<watchdog> watchdog_;
};

}  // namespace rcptguard::server_test
