// [alerts] command: a program run once per alert (an episode opening, and escalating to defer)
// with the alert's JSON object on its stdin, so a security team can be paged while a flood is
// happening. One worker thread does all process work: posix_spawn without a shell, stdin fed
// from a pipe, stdout to /dev/null, the first bytes of stderr captured for the log, a timeout
// enforced on the whole process group, every child reaped. The network thread only queues.
// Children run as the daemon's user (after the privilege drop), in its environment and sandbox.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "scanner/safe_open.hpp"

namespace rcptguard::daemon {

namespace limits {
/// After SIGTERM at the timeout, the process group has this long before SIGKILL: enough for a
/// mailer or curl to give up cleanly, short enough to keep a shutdown well inside systemd's.
inline constexpr std::chrono::seconds alert_command_kill_grace{2};
/// Bytes of a run's stderr kept for the log; the rest is read and discarded, so a chatty
/// program never blocks on a full pipe.
inline constexpr std::size_t alert_command_stderr_bytes = 4096;
}  // namespace limits

struct alert_command_stats {
  std::uint64_t started = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;     ///< non-zero exit, or a signal the timeout did not send
  std::uint64_t timed_out = 0;  ///< reached alerts.command_timeout and was killed
  std::uint64_t dropped = 0;    ///< not run: the queue was full, or the daemon was stopping
  std::uint64_t spawn_errors = 0;

  /// Alerts the security team may not have received.
  std::uint64_t failures() const { return failed + timed_out + dropped + spawn_errors; }
};

class alert_command {
 public:
  /// Starts the worker thread; `settings.command` is the argv and must not be empty. Throws
  /// std::system_error when the thread's wake-up pipe cannot be made.
  alert_command(const alerts_settings& settings, std::shared_ptr<spdlog::logger> log);
  alert_command(const alert_command&) = delete;
  alert_command& operator=(const alert_command&) = delete;
  /// stop(): no child outlives its owner unreaped.
  ~alert_command();

  /// Queues one run with `json` and a newline on its stdin; `recipient` names it in log lines.
  /// Never blocks on the worker: a full queue, or a stopped command, drops the alert (logged
  /// and counted). Returns whether it was queued.
  bool submit(std::string recipient, std::string json);

  /// Refuses new alerts, drops those still waiting, lets each running child finish within its
  /// timeout (then SIGTERM, SIGKILL), reaps it and joins the thread. Harmless twice.
  void stop();

  alert_command_stats stats() const;

 private:
  struct job {
    std::string recipient;
    std::string input;
  };
  struct child;

  void run();
  /// Starts waiting jobs in free slots; false once stop() was called and nothing runs.
  bool start_waiting(std::vector<child>& running);
  void start(job&& j, std::vector<child>& running);
  /// Feeds stdin, reads stderr, reaps, and sends the timeout's signals that are due.
  static void tend(child& c, std::chrono::steady_clock::time_point now);
  static void read_errors(child& c);
  /// Logs and counts a reaped child.
  void finish(child& c);
  void wake();

  const std::vector<std::string> argv_;
  const std::chrono::milliseconds timeout_;
  const std::size_t concurrency_;
  const std::size_t queue_limit_;
  const std::shared_ptr<spdlog::logger> log_;

  std::mutex mutex_;
  std::deque<job> waiting_;
  bool stopping_ = false;
  /// submit() and stop() write a byte here so the worker's poll() returns.
  scanner::unique_fd wake_read_;
  scanner::unique_fd wake_write_;

  std::atomic<std::uint64_t> started_{0};
  std::atomic<std::uint64_t> succeeded_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> timed_out_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> spawn_errors_{0};

  std::thread thread_;
};

}  // namespace rcptguard::daemon
