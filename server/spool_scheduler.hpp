// The daemon's spool scanner: one background thread that scans the mail spool every
// spool.interval, keeps the scan state in the database on a connection of its own, and hands
// the strongest evidence per recipient to the network thread (boost::asio::post), where the
// decision engine lives. A scan reads files for seconds; the network thread never waits for it.
#pragma once

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/text.hpp"
#include "common/time.hpp"
#include "config/config.hpp"
#include "decision/engine.hpp"
#include "scanner/scanner.hpp"

namespace rcptguard::server {

/// (recipient, evidence) pairs of one scan, and the scan's time.
using spool_evidence_list = std::vector<std::pair<std::string, decision::spool_evidence>>;
using spool_publish = std::function<void(spool_evidence_list, time_point)>;

/// The [spool] settings as scanner options. The settings table is the one source of defaults
/// for the daemon and for `rcptguard scan`. Map entries were validated when the settings
/// loaded; one that still does not parse throws std::invalid_argument naming it. Inline, so
/// that `rcptguard scan` does not link the scheduler.
inline scanner::scan_options scan_options_from(const spool_settings& settings) {
  scanner::scan_options options;
  options.roots.assign(settings.roots.begin(), settings.roots.end());
  options.domains = settings.domains;
  for (const std::string& text : settings.map) {
    auto entry = scanner::parse_mapping(text);
    if (!entry) {
      throw std::invalid_argument("spool.map entry '" + sanitize_for_log(text) +
                                  "' is not USER=ADDRESS or /PATH=ADDRESS");
    }
    options.mapping.push_back(std::move(*entry));
  }
  options.evidence.min_repeats = settings.min_repeats;
  options.evidence.window = settings.window;
  options.retention = settings.retention;
  options.check_owner = settings.check_owner;
  options.limits.max_message_bytes = settings.max_message_bytes;
  options.limits.max_header_bytes = settings.max_header_bytes;
  options.limits.max_mime_depth = settings.max_mime_depth;
  options.limits.max_mime_parts = settings.max_mime_parts;
  options.limits.max_time_per_file = settings.max_time_per_file;
  return options;
}

class spool_scheduler {
 public:
  /// `publish` runs on `io`'s thread, once per scan that found evidence. `database` is
  /// store.path; the daemon has already opened (and migrated) it.
  spool_scheduler(boost::asio::io_context& io, spool_settings settings, std::string database,
                  std::shared_ptr<spdlog::logger> log, spool_publish publish);
  spool_scheduler(const spool_scheduler&) = delete;
  spool_scheduler& operator=(const spool_scheduler&) = delete;
  ~spool_scheduler();

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

 private:
  struct database_state;

  void run();
  void scan(database_state& db);
  void log_report(const scanner::scan_report& report, std::size_t evidence_count);
  /// False when stop was requested before the next scan is due.
  bool wait_for_next_scan(std::chrono::steady_clock::time_point scan_end);

  boost::asio::io_context& io_;
  const std::string database_;
  const std::shared_ptr<spdlog::logger> log_;
  const spool_publish publish_;

  std::mutex mutex_;  ///< guards settings_ and stopping_
  std::condition_variable wake_;
  spool_settings settings_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace rcptguard::server
