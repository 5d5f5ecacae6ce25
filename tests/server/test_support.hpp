// What the server tests share: a policy client on plain POSIX sockets whose every wait is bounded
// by poll(), a watchdog, a temporary directory, and polling with a deadline. Nothing here
// includes Asio, so the client sees the server exactly as Postfix would.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "tests/common/temp_dir.hpp"

namespace rcptguard::server_test {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// Longest any single client wait may take; far above what a passing test needs.
inline constexpr std::chrono::milliseconds io_timeout = 5s;

/// The one reply an undecided request gets.
inline constexpr std::string_view dunno_reply = "action=DUNNO\n\n";

/// A request shaped like the RCPT requests Postfix 3.7 sends, for `recipient`.
std::string rcpt_request(std::string_view recipient = "alice@example.test");

/// A request with only the attribute the protocol requires, plus `extra_lines` (each with LF).
std::string minimal_request(std::string_view extra_lines = "");

enum class read_status {
  reply,    ///< a complete reply ("...\n\n") arrived
  closed,   ///< the peer closed (EOF or reset) before a complete reply
  timeout,  ///< nothing conclusive within the timeout
  error,    ///< another socket error
};

struct read_result {
  read_status status = read_status::error;
  std::string bytes;  ///< the reply, or whatever arrived before close/timeout
};

/// One policy connection. Blocking only in poll() with a timeout, never in read or write.
class test_client {
 public:
  test_client() = default;
  test_client(const test_client&) = delete;
  test_client& operator=(const test_client&) = delete;
  test_client(test_client&& other) noexcept;
  test_client& operator=(test_client&& other) noexcept;
  ~test_client();

  /// receive_buffer > 0 fixes SO_RCVBUF before connecting, which also stops the kernel from
  /// growing the window, so a client that does not read backs up the server quickly.
  static test_client tcp(std::uint16_t port, const char* address = "127.0.0.1",
                         int receive_buffer = 0);
  /// The same from a chosen source address (any 127.x.y.z on Linux loopback), so one test can
  /// be several TCP clients.
  static test_client tcp_from(const char* source, std::uint16_t port,
                              const char* address = "127.0.0.1", int receive_buffer = 0);
  static test_client unix_socket(const std::string& path);

  bool connected() const { return fd_ >= 0; }
  /// errno of a failed connect, 0 after a successful one.
  int connect_error() const { return connect_error_; }

  /// Writes all of `bytes`; false if the peer closed or the write timed out.
  bool send(std::string_view bytes, std::chrono::milliseconds timeout = io_timeout);
  /// Reads up to and including the first empty line ("\n\n").
  read_result read_reply(std::chrono::milliseconds timeout = io_timeout);
  /// Waits for the peer to close; anything received meanwhile is returned in bytes.
  read_result read_until_closed(std::chrono::milliseconds timeout = io_timeout);
  /// send + read_reply, returning the reply or a readable description of what happened
  /// instead, so EXPECT_EQ(client.ask(...), dunno_reply) explains a failure by itself.
  std::string ask(std::string_view request);
  /// True if the peer has closed or sent something within `wait` (the socket became readable).
  bool readable_within(std::chrono::milliseconds wait);

  /// Half-closes: no more requests, replies still readable (what `printf ... | nc` does).
  void shutdown_write();

  /// Closes with FIN.
  void close();
  /// Closes with RST (SO_LINGER 0), as a crashing client would.
  void abort();

 private:
  explicit test_client(int fd, int error) : fd_(fd), connect_error_(error) {}

  int fd_ = -1;
  int connect_error_ = 0;
  std::string buffered_;  ///< bytes read past the last reply
};

std::string describe(const read_result& result);

/// Polls `condition` every few milliseconds until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = io_timeout);

/// Calls on_expiry (from its own thread) unless destroyed within `timeout`. A hang then fails
/// the test and unblocks it, instead of stalling CI until ctest's own timeout.
class watchdog {
 public:
  watchdog(std::chrono::milliseconds timeout, std::function<void()> on_expiry);
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog();

 private:
  std::mutex mutex_;
  std::condition_variable cancelled_;
  bool done_ = false;
  std::thread thread_;
};

using rcptguard::test_support::temp_dir;

/// A loopback TCP port that was free a moment ago (bound to port 0, then released).
std::uint16_t free_tcp_port();

}  // namespace rcptguard::server_test
