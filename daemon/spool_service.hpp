// The daemon's spool scanner: one background thread that scans the mail spool every
// spool.interval, reads its stored state once (read-only), hands each scan's rows to the
// store's writer thread and the strongest evidence per recipient to the network thread
// (boost::asio::post), where the decision engine lives. A scan reads files for seconds; the network thread never waits for it.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/time.hpp"
#include "config/config.hpp"
#include "daemon/worker.hpp"
#include "decision/engine.hpp"
#include "scanner/scanner.hpp"
#include "store/writer.hpp"

namespace rcptguard::daemon {

/// (recipient, evidence) pairs of one scan, and the scan's time.
using spool_evidence_list = std::vector<std::pair<std::string, decision::spool_evidence>>;
using spool_publish = std::function<void(spool_evidence_list, time_point)>;
/// Hands a scan's rows to the store's writer thread (persistence::submit); false when stopped.
using spool_save = std::function<bool(store::database_job)>;

/// How the scanner is keeping up, for the metrics; status() reads it from any thread.
struct spool_scan_status {
  std::uint64_t scans = 0;     ///< scans completed (their rows handed to the writer)
  std::uint64_t failures = 0;  ///< scans that failed; logged and retried at the next interval
  std::optional<time_point> last_scan_end;  ///< wall clock; empty until the first scan completes
  std::chrono::milliseconds last_scan_duration{0};
};

class spool_service {
 public:
  /// `publish` runs on `io`'s thread, once per scan that found evidence. `database` is
  /// store.path; the daemon has already opened (and migrated) it.
  spool_service(boost::asio::io_context& io, spool_settings settings, std::string database,
                std::shared_ptr<spdlog::logger> log, spool_publish publish, spool_save save);
  spool_service(const spool_service&) = delete;
  spool_service& operator=(const spool_service&) = delete;
  ~spool_service() = default;

  /// Starts the scanning thread; the first scan begins at once. Calling it again does nothing.
  void start();

  /// A reload: the next scan uses `settings`, and a changed interval applies to the wait in
  /// progress. spool.enabled is not looked at here; it applies on restart.
  void reconfigure(spool_settings settings);

  /// Asks the thread to finish after the scan in progress, without waiting for it: the
  /// network thread calls this when shutdown begins.
  void request_stop();

  /// request_stop() and waits for the thread. A scan in progress finishes first (each file is
  /// bounded by spool.max_time_per_file); a wait between scans ends at once.
  void stop();

  spool_scan_status status() const;

 private:
  struct database_state;

  void round(database_state& db);
  void scan(database_state& db);
  void log_report(const scanner::scan_report& report, std::size_t evidence_count);

  boost::asio::io_context& io_;
  const std::string database_;
  const std::shared_ptr<spdlog::logger> log_;
  const spool_publish publish_;
  const spool_save save_;
  // Shared with the save job, which completes on the writer's thread.
  std::shared_ptr<std::atomic<bool>> saving_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<std::atomic<bool>> reload_ = std::make_shared<std::atomic<bool>>(false);

  // Written by the scanning thread, read by status().
  std::atomic<std::uint64_t> scans_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::int64_t> last_scan_end_us_{0};  ///< since the epoch; 0: none yet
  std::atomic<std::int64_t> last_scan_duration_ms_{0};

  std::mutex mutex_;  ///< guards settings_
  spool_settings settings_;
  /// Last member: its thread is joined before the members it uses go.
  periodic_worker worker_;
};

}  // namespace rcptguard::daemon
