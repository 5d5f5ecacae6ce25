// The daemon's numbers in one value (daemon_snapshot), gathered once per SUMMARY/FINAL log line
// and once per Prometheus scrape by the same function, so the two cannot disagree; and that value
// in the Prometheus text exposition format, version 0.0.4. Pure: no clock, no I/O, no Asio.
#pragma once

#include <optional>
#include <string>

#include "common/time.hpp"
#include "daemon/alert_command.hpp"
#include "daemon/cluster_service.hpp"
#include "daemon/mail_log_service.hpp"
#include "daemon/spool_service.hpp"
#include "decision/engine.hpp"
#include "server/stats.hpp"
#include "store/writer.hpp"

namespace rcptguard::daemon {

/// Everything the SUMMARY line and /metrics report, read on the network thread.
struct daemon_snapshot {
  server::server_stats server;
  decision::engine_stats engine;
  store::writer_stats store;
  alert_command_stats commands;                  ///< zero when alerts.command is empty
  std::optional<spool_scan_status> spool;        ///< empty: the spool scanner is off
  std::optional<mail_log_service_stats> ingest;  ///< empty: no followed logs
  std::optional<cluster_service_stats> cluster;  ///< empty: no cluster store
  std::string version;
  time_point started{};  ///< when the daemon started
  time_point now{};      ///< when the snapshot was taken
};

/// Content-Type of format_metrics()'s text.
inline constexpr const char* metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// `s` in the Prometheus text format: a HELP and a TYPE line per family, then its samples.
std::string format_metrics(const daemon_snapshot& s);

/// A label value with backslash, double quote and line feed escaped, as the format requires.
std::string escape_label_value(std::string_view value);

}  // namespace rcptguard::daemon
