// The Prometheus text format (version 0.0.4) of a daemon_snapshot. Names follow the Prometheus
// conventions: the rcptguard_ prefix, _total on counters, seconds and bytes as base units, and
// one family with a label where the SUMMARY line has one field per kind (verdicts, drop reasons).
#include "daemon/metrics_text.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <iterator>
#include <string_view>

#include "protocol/parser.hpp"

namespace rcptguard::daemon {

namespace {

double seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

double unix_seconds(time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Appends families to one string. Each family is written whole (HELP, TYPE, samples), as the
// format requires; values are integers or the shortest exact spelling of a double.
class exposition {
 public:
  explicit exposition(std::string& out) : out_(out) {}

  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }

  template <typename Value>
  void sample(std::string_view name, Value value, std::string_view labels = {}) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
    }
  }

  void counter(std::string_view name, std::string_view help, std::uint64_t value) {
    family(name, "counter", help);
    sample(name, value);
  }

  template <typename Value>
  void gauge(std::string_view name, std::string_view help, Value value) {
    family(name, "gauge", help);
    sample(name, value);
  }

  void histogram(std::string_view name, std::string_view help,
                 const server::duration_histogram& h) {
    family(name, "histogram", help);
    const std::string bucket = std::string{name} + "_bucket";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.bounds_us.size(); ++i) {
      cumulative += h.buckets.at(i);
      const double le = static_cast<double>(h.bounds_us.at(i)) / 1e6;
      sample(bucket, cumulative, fmt::format("le=\"{}\"", le));
    }
    cumulative += h.buckets.back();
    sample(bucket, cumulative, "le=\"+Inf\"");
    sample(std::string{name} + "_sum", seconds(std::chrono::nanoseconds{h.sum_ns}));
    sample(std::string{name} + "_count", h.count);
  }

 private:
  std::string& out_;
};

void process_metrics(exposition& m, const daemon_snapshot& s) {
  m.family("rcptguard_build_info", "gauge", "Always 1; the version as a label.");
  m.sample("rcptguard_build_info", 1, "version=\"" + escape_label_value(s.version) + "\"");
  m.gauge("rcptguard_start_time_seconds", "When the daemon started, in seconds since the epoch.",
          unix_seconds(s.started));
  m.gauge("rcptguard_uptime_seconds", "Seconds since the daemon started.",
          seconds(s.now - s.started));
}

void request_metrics(exposition& m, const server::server_stats& st) {
  m.counter("rcptguard_requests_total", "Policy requests read in full and answered.", st.requests);
  m.family("rcptguard_verdicts_total", "counter",
           "Replies by verdict: dunno, warn, defer, flag (delivered with the flag header).");
  m.sample("rcptguard_verdicts_total", st.dunno, "verdict=\"dunno\"");
  m.sample("rcptguard_verdicts_total", st.warn, "verdict=\"warn\"");
  m.sample("rcptguard_verdicts_total", st.defer, "verdict=\"defer\"");
  m.sample("rcptguard_verdicts_total", st.flag, "verdict=\"flag\"");
  m.histogram("rcptguard_reply_latency_seconds",
              "From a request's last byte parsed to its whole reply written to the socket.",
              st.reply_latency);
  m.counter("rcptguard_internal_errors_answered_total",
            "Internal faults answered DUNNO (server.on_internal_error = fail-open).",
            st.internal_errors_answered);
  m.family("rcptguard_request_parse_errors_total", "counter",
           "Requests rejected as malformed or oversized, by reason; each closed the connection.");
  for (std::size_t i = 1; i < st.parse_errors.size(); ++i) {
    const std::string_view reason = protocol::to_string(static_cast<protocol::parse_error>(i));
    if (reason == "unknown_error") break;
    m.sample("rcptguard_request_parse_errors_total", st.parse_errors.at(i),
             fmt::format("reason=\"{}\"", reason));
  }
}

void connection_metrics(exposition& m, const server::server_stats& st) {
  m.counter("rcptguard_connections_accepted_total", "Policy connections accepted.",
            st.connections_accepted);
  m.gauge("rcptguard_connections_open", "Policy connections open now.", st.connections_open);
  m.gauge("rcptguard_connections_peak", "Most policy connections open at once since start.",
          st.peak_connections);
  m.counter("rcptguard_connections_evicted_total",
            "Idle policy connections closed to make room at a connection cap.",
            st.connections_evicted);
  m.counter("rcptguard_idle_timeouts_total",
            "Policy connections closed after server.idle_timeout without a request.",
            st.idle_timeouts);
  m.family("rcptguard_connections_dropped_total", "counter",
           "Policy connections refused or closed without a reply, by reason.");
  for (std::size_t i = 0; i < server::drop_reason_count; ++i) {
    m.sample("rcptguard_connections_dropped_total", st.drops.at(i),
             fmt::format("reason=\"{}\"", server::to_string(static_cast<server::drop_reason>(i))));
  }
}

void engine_metrics(exposition& m, const decision::engine_stats& e) {
  m.gauge("rcptguard_tracked_recipients", "Recipients whose windows are held in memory.",
          e.tracked_recipients);
  m.gauge("rcptguard_tracked_recipients_limit",
          "detection.max_tracked_recipients: the cap on tracked recipients.",
          e.max_tracked_recipients);
  m.counter("rcptguard_recipient_evictions_total",
            "Tracked recipients evicted at the cap to make room for new ones.",
            e.recipient_evictions);
  m.gauge("rcptguard_open_transactions", "RCPTs waiting for their END-OF-MESSAGE.",
          e.open_transactions);
  m.counter("rcptguard_transactions_rolled_back_total",
            "Transactions rolled back (new instance, closed connection, timeout, eviction).",
            e.transactions_rolled_back);
  m.gauge("rcptguard_open_episodes", "Alert episodes open now.", e.open_episodes);
  m.counter("rcptguard_monitor_would_defer_total",
            "WARN replies in monitor mode that enforce mode would have deferred.",
            e.monitor_would_defer);
  m.counter("rcptguard_correspondent_passes_total",
            "DUNNO replies to a known correspondent of a deferred recipient.",
            e.correspondent_passes);
}

void store_metrics(exposition& m, const store::writer_stats& w) {
  m.counter("rcptguard_store_records_written_total",
            "Engine records whose aggregate is committed to SQLite.", w.records_written);
  m.counter("rcptguard_store_records_dropped_total",
            "Engine records lost: refused by the database for their content, or still held at "
            "the end of the shutdown flush.",
            w.records_dropped);
  m.counter("rcptguard_store_keys_folded_total",
            "Sender, pair and flagged-sender keys folded beyond store.max_pending_keys.",
            w.keys_folded);
  m.counter("rcptguard_store_write_failures_total",
            "Failed transactions; each is retried with what arrived meanwhile.", w.write_failures);
  m.gauge("rcptguard_store_pending_keys", "Keys waiting for the writer or held for a retry.",
          w.queue_depth);
  m.gauge("rcptguard_store_last_flush_duration_seconds",
          "Duration of the writer's last committed transaction.", seconds(w.last_flush_duration));
  m.gauge("rcptguard_store_max_flush_duration_seconds",
          "Longest committed transaction of the writer since start.",
          seconds(w.max_flush_duration));
}

void alert_metrics(exposition& m, const alert_command_stats& c) {
  m.counter("rcptguard_alert_commands_total", "Runs of alerts.command started.", c.started);
  m.counter("rcptguard_alert_command_failures_total",
            "Alerts the command may not have delivered: failed, timed out, not started or "
            "dropped at a full queue.",
            c.failures());
}

void spool_metrics(exposition& m, const spool_scan_status& spool, const daemon_snapshot& s) {
  m.counter("rcptguard_spool_scans_total", "Spool scans completed.", spool.scans);
  m.counter("rcptguard_spool_scan_failures_total", "Spool scans that failed (logged, retried).",
            spool.failures);
  // Since start while no scan has completed, so a scanner that never finishes still shows.
  const time_point since = spool.last_scan_end.value_or(s.started);
  m.gauge("rcptguard_spool_scan_lag_seconds",
          "Seconds since the last spool scan completed (since start before the first).",
          seconds(s.now - since));
  m.gauge("rcptguard_spool_last_scan_duration_seconds", "Duration of the last spool scan.",
          seconds(spool.last_scan_duration));
}

void ingest_metrics(exposition& m, const mail_log_service_stats& in) {
  m.gauge("rcptguard_ingest_unread_bytes",
          "Bytes of the followed logs not yet read as the reader's last round began: how far "
          "behind the logs it is.",
          in.unread_bytes);
  m.gauge("rcptguard_ingest_queued_events",
          "Deliveries read from the logs and waiting for the network thread.", in.queued_events);
  m.counter("rcptguard_ingest_lines_total", "Lines read from the followed logs.", in.lines.lines);
  m.counter("rcptguard_ingest_events_fed_total", "Deliveries from the logs counted by the engine.",
            in.events_fed);
  m.counter("rcptguard_ingest_stale_events_total",
            "Deliveries skipped for being older than five minutes when read.", in.stale_events);
}

void cluster_metrics(exposition& m, const cluster_service_stats& c,
                     const decision::cluster_stats& engine) {
  m.gauge("rcptguard_cluster_up",
          "1 while the cluster store (Redis) answers and the other nodes' counts join verdicts.",
          c.connected ? 1 : 0);
  m.counter("rcptguard_cluster_faults_total",
            "Failed connects and rounds of the cluster store (each logged once per outage).",
            c.faults);
  m.counter("rcptguard_cluster_rounds_total", "Publish-and-read rounds completed.", c.rounds);
  m.gauge("rcptguard_cluster_round_duration_seconds", "Duration of the last round.",
          static_cast<double>(c.last_round_ms) / 1000.0);
  m.counter("rcptguard_cluster_refused_total",
            "RCPTs left out of the cluster's counts because cluster.max_keys was held.",
            c.refused_full);
  m.counter("rcptguard_cluster_dropped_total",
            "RCPTs, pairs and episode records left out of the cluster because the queue to the "
            "cluster thread was full.",
            c.dropped);
  m.gauge("rcptguard_cluster_recipients", "Recipients whose other nodes' counts the engine holds.",
          engine.recipients);
  m.counter("rcptguard_cluster_correspondents_shared_total",
            "Sender-recipient pairs this node added to the cluster's known correspondents.",
            c.correspondents_shared);
  m.counter("rcptguard_cluster_correspondents_refused_total",
            "Pairs not shared: cluster.max_correspondents senders held for the recipient, or "
            "too many waiting for the cluster thread.",
            c.correspondents_refused);
  m.counter("rcptguard_cluster_correspondents_read_total",
            "Known correspondents read from the cluster for recipients in an episode here.",
            c.correspondents_read);
  m.counter("rcptguard_cluster_releases_shared_total",
            "Operator releases made here and published for the other nodes.", c.releases_shared);
  m.counter("rcptguard_cluster_releases_taken_total",
            "Operator releases made on another node and applied to an episode here.",
            c.releases_taken);
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_metrics(const daemon_snapshot& s) {
  std::string out;
  out.reserve(8192);
  exposition m(out);
  process_metrics(m, s);
  request_metrics(m, s.server);
  connection_metrics(m, s.server);
  engine_metrics(m, s.engine);
  store_metrics(m, s.store);
  alert_metrics(m, s.commands);
  if (s.spool) spool_metrics(m, *s.spool, s);
  if (s.ingest) ingest_metrics(m, *s.ingest);
  if (s.cluster) cluster_metrics(m, *s.cluster, s.engine.cluster);
  return out;
}

}  // namespace rcptguard::daemon
