#include "daemon/daemon.hpp"

#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <csignal>
#include <memory>
#include <random>
#include <stdexcept>

#include "common/random.hpp"
#include "common/text.hpp"
#include "config/address.hpp"
#include "config/safety.hpp"
#include "daemon/alert_command.hpp"
#include "daemon/alert_file.hpp"
#include "daemon/cluster_service.hpp"
#include "daemon/control_service.hpp"
#include "daemon/daemon_log.hpp"
#include "daemon/file_limit.hpp"
#include "daemon/mail_log_service.hpp"
#include "daemon/metrics_service.hpp"
#include "daemon/metrics_text.hpp"
#include "daemon/operator_controls.hpp"
#include "daemon/persistence.hpp"
#include "daemon/privileges.hpp"
#include "daemon/repeating_timer.hpp"
#include "daemon/spool_service.hpp"
#include "decision/engine.hpp"
#include "server/listener.hpp"
#include "server/policy_handler.hpp"
#include "server/session.hpp"
#include "server/stats.hpp"

namespace rcptguard::daemon {

namespace asio = boost::asio;
using server::listener_set;
using server::policy_handler;
using server::server_stats;
using server::session_context;
using server::session_settings;

namespace {

server::connection_limits connection_limits_from(const config& c) {
  return {c.server.max_connections, c.server.max_connections_per_client};
}

session_settings session_settings_from(const config& c) {
  return session_settings{c.limits, c.server.idle_timeout, c.server.request_timeout,
                          c.server.on_internal_error};
}

// The allowlist is parsed once per (re)load; config validation already proved every entry.
std::vector<cidr> parse_allowlist(const std::vector<std::string>& entries) {
  std::vector<cidr> nets;
  for (const auto& entry : entries) {
    std::string error;
    if (auto net = parse_cidr(entry, error)) nets.push_back(*net);
  }
  return nets;
}

// Every hash of attacker-chosen keys is keyed with this; a fixed seed would let a sender craft
// colliding recipients offline.

// Housekeeping (transaction time-outs, cool-downs, hand-over to the store) runs at least once a
// second and at least as often as the store flushes.
std::chrono::milliseconds housekeeping_interval(const config& c) {
  auto interval =
      std::min<std::chrono::milliseconds>(c.store.flush_interval, std::chrono::seconds{1});
  // Each tick hands the engine's records to the cluster thread too: as often as it publishes.
  if (!c.cluster.redis.empty()) interval = std::min(interval, c.cluster.interval);
  return interval;
}

// Its thread starts before the privilege drop but runs nothing until the first alert, which
// comes from housekeeping after it: commands run as server.user.
std::unique_ptr<alert_command> make_alert_command(const config& c,
                                                  const std::shared_ptr<spdlog::logger>& log) {
  if (c.alerts.command.empty()) return nullptr;
  return std::make_unique<alert_command>(c.alerts, log);
}

class daemon_runtime {
 public:
  daemon_runtime(config_source source, config initial, std::shared_ptr<spdlog::logger> log)
      : source_(std::move(source)),
        config_(std::move(initial)),
        log_(std::move(log)),
        signals_(io_, SIGTERM, SIGINT, SIGHUP),
        summary_timer_(io_),
        housekeeping_timer_(io_),
        engine_(config_.detection, random_hash_seed()),
        persistence_(io_, config_, log_),
        alert_command_(make_alert_command(config_, log_)),
        alerts_(config_.alerts.file, log_, alert_command_.get()),
        handler_(engine_, stats_, log_) {
    context_.settings = session_settings_from(config_);
    context_.handler = &handler_;
    context_.stats = &stats_;
    context_.log = log_;
    allowlist_ = parse_allowlist(config_.server.allow_clients);
  }

  int run() {
    listener_set listeners(io_, context_, [this](const asio::ip::address& address) {
      return client_allowed(address);
    });
    listeners_ = &listeners;
    listeners.set_connection_limits(connection_limits_from(config_));
    check_file_limit_and_settings();
    // The operator controls serve the control socket and, with a cluster store, the releases
    // made on other nodes, so they exist without the socket too.
    controls_ = std::make_unique<operator_controls>(
        engine_, stats_, config_,
        [this](store::database_job job) { return persistence_.submit(std::move(job)); },
        [this] { return persistence_.writer_stats(); }, log_, wall_clock_now());
    // First, so that once the policy sockets accept, the operator commands find theirs too.
    if (!config_.control.socket.empty()) bind_control();
    for (const auto& text : config_.server.listen) {
      std::string error;
      const auto ep = parse_endpoint(text, error);
      if (!ep) throw std::runtime_error("server.listen: " + error);
      if (ep->kind == endpoint_kind::inet) {
        listeners.bind_tcp(ep->host, ep->port);
      } else {
        listeners.bind_unix(ep->path,
                            {config_.server.unix_socket_mode, config_.server.unix_socket_group});
      }
      log_->info("LISTEN {}", text);
    }
    if (!config_.metrics.listen.empty()) bind_metrics();
    drop_privileges(config_.server.user);
    if (::geteuid() == 0) {
      log_->warn("running as root: set server.user to drop privileges after binding");
    }
    // After the drop, so a database the unprivileged user cannot write fails now, not later.
    persistence_.open_and_restore(engine_, wall_clock_now(), cluster_node_name(config_.cluster));
    spool_ = std::make_unique<spool_service>(
        io_, config_.spool, config_.store.path, log_,
        [this](spool_evidence_list evidence, time_point now) {
          for (const auto& [recipient, found] : evidence) {
            engine_.update_spool_evidence(recipient, found, now);
          }
        },
        [this](store::database_job job) { return persistence_.submit(std::move(job)); });
    if (config_.spool.enabled) spool_->start();
    if (!config_.ingest.files.empty()) {
      mail_logs_ = std::make_unique<mail_log_service>(config_.ingest, config_.store.path, log_);
      mail_logs_->open(wall_clock_now());
    }
    if (!config_.cluster.redis.empty()) start_cluster();
    wait_for_signal();
    schedule_summary();
    schedule_housekeeping();
    listeners.start_accepting();
    if (control_) control_->start_accepting();
    if (metrics_) metrics_->start();
    log_->info("STARTED rcptguard {} mode={} pid={}", RCPTGUARD_VERSION,
               rcptguard::to_string(config_.detection.mode), ::getpid());
    io_.run();
    listeners_ = nullptr;
    // Each of its calls is bounded by cluster.timeout; the other nodes keep the counts it
    // published (they expire with their minutes and hours).
    if (cluster_) cluster_->stop();
    if (spool_) spool_->stop();
    alerts_.write(engine_.pending().episodes);
    if (mail_logs_) mail_logs_->stop();
    persistence_.stop(engine_, followed_positions());
    // After the database flush, which gives the last runs that time to finish.
    if (alert_command_) alert_command_->stop();
    log_summary("FINAL");
    // The writer already logged what it lost ("STORE LOST"); the exit status tells a supervisor
    // that this shutdown, unlike a clean one, left counts out of the database.
    const store::writer_stats stored = persistence_.writer_stats();
    const bool lost = stored.records_lost_at_stop > 0 || stored.jobs_lost_at_stop > 0;
    log_->info("STOPPED after serving {} connection(s){}", stats_.connections_accepted,
               lost ? fmt::format(", exit status {}: data lost at shutdown", exit_data_lost) : "");
    log_->flush();
    return lost ? exit_data_lost : 0;
  }

 private:
  bool client_allowed(const asio::ip::address& address) const {
    const auto in_allowlist = [this](const auto& bytes) {
      return std::ranges::any_of(allowlist_, [&](const cidr& net) { return net.contains(bytes); });
    };
    return address.is_v4() ? in_allowlist(address.to_v4().to_bytes())
                           : in_allowlist(address.to_v6().to_bytes());
  }

  // Before the privilege drop, like the policy sockets. Commands arrive only after
  // start_accepting(), when the engine is restored and the writer runs.
  void bind_control() {
    control_ = std::make_unique<control_service>(
        io_, log_,
        [this](std::string_view line, const control_caller& caller) {
          return controls_->handle(line, caller, wall_clock_now());
        },
        [this](const control_caller& caller, const std::string& why) {
          controls_->refused(caller, why, wall_clock_now());
        });
    control_->bind(config_.control, config_.server.user);
  }

  void wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        reload();
        wait_for_signal();
        return;
      }
      log_->info("SHUTDOWN on signal {}: no new connections, finishing requests in flight", signal);
      shutdown();
    });
  }

  void shutdown() {
    signals_.cancel();
    summary_timer_.stop();
    housekeeping_timer_.stop();
    if (spool_) spool_->request_stop();
    if (metrics_) metrics_->stop();
    if (control_) control_->shutdown();
    if (listeners_ != nullptr) listeners_->shutdown();
  }

  // After the restore: the other nodes' counts join the engine's own from the first read.
  void start_cluster() {
    cluster_service::handlers on;
    on.deliver = [this](std::vector<decision::cluster_counts> counts, time_point read_at) {
      engine_.update_cluster_counts(counts, read_at);
    };
    on.lost = [this](time_point at) { engine_.cluster_lost(at); };
    on.episode = [this](std::string recipient, time_point started, std::string id) {
      engine_.cluster_episode(recipient, started, id, wall_clock_now());
    };
    on.correspondents = [this](std::vector<decision::known_senders> known, time_point read_at) {
      engine_.cluster_correspondents(known, read_at);
    };
    on.released = [this](cluster::release_note note) {
      controls_->release_from_cluster(note, wall_clock_now());
    };
    cluster_ = std::make_unique<cluster_service>(
        io_, config_.cluster, cluster_node_name(config_.cluster),
        std::chrono::duration_cast<std::chrono::seconds>(config_.store.retention), log_,
        std::move(on));
    controls_->announce_releases_to([this](const std::string& recipient, time_point at,
                                           const std::string& user, const std::string& reason) {
      cluster_->announce_release(recipient, at, user, reason);
    });
    cluster_->start();
  }

  // Before the privilege drop, like the policy listeners; serves once start() is called.
  void bind_metrics() {
    std::string error;
    const auto ep = parse_endpoint(config_.metrics.listen, error);
    if (!ep) throw std::runtime_error("metrics.listen: " + error);
    metrics_ =
        std::make_unique<metrics_service>(io_, log_, [this] { return format_metrics(snapshot()); });
    metrics_->set_allowlist(parse_allowlist(config_.metrics.allow_clients));
    metrics_->bind(ep->host, ep->port);
    log_->info("LISTEN metrics http://{}:{}/metrics",
               ep->host.find(':') == std::string::npos ? ep->host : "[" + ep->host + "]",
               metrics_->port());
  }

  void reload() {
    const load_result loaded = load_settings(source_);
    if (!loaded.ok()) {
      for (const auto& error : loaded.errors) log_->error("RELOAD REJECTED {}", error);
      log_->error("RELOAD REJECTED: keeping the running configuration");
      return;
    }
    std::size_t applied = 0;
    for (const auto& change : apply_reloadable(config_, *loaded.settings)) {
      if (change.reloadable) {
        ++applied;
      } else {
        log_->warn("RELOAD {} changed: takes effect after a restart", change.key);
      }
    }
    const decision::reconfigure_result engine_change =
        engine_.reconfigure(config_.detection, wall_clock_now());
    for (const auto& entry : engine_change.invalid_allow_clients) {
      log_->warn("RELOAD detection.allow_clients entry '{}' never matches", entry);
    }
    if (spool_) spool_->reconfigure(config_.spool);
    if (mail_logs_) mail_logs_->reconfigure(config_.ingest);
    context_.settings = session_settings_from(config_);
    allowlist_ = parse_allowlist(config_.server.allow_clients);
    if (metrics_) metrics_->set_allowlist(parse_allowlist(config_.metrics.allow_clients));
    if (listeners_ != nullptr) listeners_->set_connection_limits(connection_limits_from(config_));
    check_file_limit_and_settings();
    log_->set_level(to_spdlog(config_.log.level));
    schedule_summary();
    log_->info("RELOADED {}: {} setting(s) applied", describe(source_), applied);
  }

  void schedule_housekeeping() {
    housekeeping_timer_.start(housekeeping_interval(config_), [this] {
      const time_point now = wall_clock_now();
      if (mail_logs_) mail_logs_->poll(engine_, now);
      engine_.tick(now);
      alerts_.write(engine_.pending().episodes);
      if (cluster_) cluster_->collect(engine_.pending());
      persistence_.pump(engine_, now, followed_positions());
    });
  }

  std::vector<store::followed_position> followed_positions() {
    return mail_logs_ ? mail_logs_->take_positions() : std::vector<store::followed_position>{};
  }

  void schedule_summary() {
    if (config_.log.summary_interval.count() == 0) {
      summary_timer_.stop();
      return;
    }
    summary_timer_.start(config_.log.summary_interval, [this] { log_summary("SUMMARY"); });
  }

  // At start and on reload (max_connections may have grown): raise the soft descriptor limit to
  // fit, then say what is still unsafe, with the limit in force.
  void check_file_limit_and_settings() {
    const file_limit limit = fit_file_limit(descriptors_needed(config_));
    if (limit.soft != limit.soft_before) {
      log_->info("FILE LIMIT raised the soft RLIMIT_NOFILE from {} to {} (hard limit {})",
                 limit.soft_before, limit.soft, limit.hard);
    }
    for (const auto& warning : unsafe_settings(config_, limit.soft)) {
      log_->warn("UNSAFE SETTING {}", warning);
    }
  }

  // The one gathering of every number the SUMMARY/FINAL line and /metrics report, so the two
  // cannot disagree. On the network thread: server_stats and the engine are its own; the other
  // services hand out atomics or a copy taken under their own short lock.
  daemon_snapshot snapshot() const {
    daemon_snapshot s;
    s.server = stats_;
    s.engine = engine_.stats();
    s.store = persistence_.writer_stats();
    if (alert_command_) s.commands = alert_command_->stats();
    if (spool_ && config_.spool.enabled) s.spool = spool_->status();
    if (mail_logs_) s.ingest = mail_logs_->stats();
    if (cluster_) s.cluster = cluster_->stats();
    s.version = RCPTGUARD_VERSION;
    s.started = started_;
    s.now = wall_clock_now();
    return s;
  }

  void log_summary(const char* tag) {
    const daemon_snapshot now = snapshot();
    const server_stats& stats = now.server;
    const decision::engine_stats& engine = now.engine;
    const store::writer_stats& store = now.store;
    const alert_command_stats& commands = now.commands;
    std::string cluster;
    if (now.cluster) {
      const cluster_service_stats& c = *now.cluster;
      cluster = fmt::format(
          " cluster={} cluster_faults={} cluster_rounds={} cluster_round_ms={} "
          "cluster_round_max_ms={} cluster_refused={} cluster_dropped={} cluster_recipients={} "
          "cluster_correspondents_shared={} cluster_correspondents_read={}",
          c.connected ? "up" : "down", c.faults, c.rounds, c.last_round_ms, c.max_round_ms,
          c.refused_full, c.dropped, engine.cluster.recipients, c.correspondents_shared,
          c.correspondents_read);
    }
    std::string drops;
    for (std::size_t i = 0; i < server::drop_reason_count; ++i) {
      if (stats.drops.at(i) == 0) continue;
      fmt::format_to(std::back_inserter(drops), " {}={}",
                     server::to_string(static_cast<server::drop_reason>(i)), stats.drops.at(i));
    }
    log_->info(
        "{} requests={} dunno={} warn={} defer={} flag={} connections={} open={} peak_open={} "
        "idle_closed={} evicted={} internal_errors={} dropped:{} recipients={}/{} evictions={} "
        "open_transactions={} rolled_back={} episodes={} would_defer={} correspondent_passes={} "
        "store_written={} store_dropped={} store_folded={} store_failures={} store_pending_keys={} "
        "store_flush_ms={} store_flush_max_ms={} alert_commands={} alert_command_failures={}{}",
        tag, stats.requests, stats.dunno, stats.warn, stats.defer, stats.flag,
        stats.connections_accepted, stats.connections_open, stats.peak_connections,
        stats.idle_timeouts, stats.connections_evicted, stats.internal_errors_answered,
        drops.empty() ? " none" : drops, engine.tracked_recipients, engine.max_tracked_recipients,
        engine.recipient_evictions, engine.open_transactions, engine.transactions_rolled_back,
        engine.open_episodes, engine.monitor_would_defer, engine.correspondent_passes,
        store.records_written, store.records_dropped, store.keys_folded, store.write_failures,
        store.queue_depth, store.last_flush_duration.count() / 1000,
        store.max_flush_duration.count() / 1000, commands.started, commands.failures(), cluster);
  }

  config_source source_;
  config config_;
  std::shared_ptr<spdlog::logger> log_;
  asio::io_context io_{1};
  asio::signal_set signals_;
  repeating_timer summary_timer_;
  repeating_timer housekeeping_timer_;
  server_stats stats_;
  decision::engine engine_;
  persistence persistence_;
  // Declared after engine_ and persistence_, so its thread is joined before they go.
  std::unique_ptr<spool_service> spool_;
  // Also after engine_ and persistence_: its reader thread is joined before they go.
  std::unique_ptr<mail_log_service> mail_logs_;
  // Before alerts_, which submits to it.
  std::unique_ptr<alert_command> alert_command_;
  alert_sink alerts_;
  policy_handler handler_;
  session_context context_;
  std::vector<cidr> allowlist_;
  listener_set* listeners_ = nullptr;
  /// The operator commands and their socket; null while control.socket is empty. Declared after
  /// everything the commands use, so they go first.
  std::unique_ptr<operator_controls> controls_;
  std::unique_ptr<control_service> control_;
  const time_point started_ = wall_clock_now();
  std::unique_ptr<metrics_service> metrics_;  ///< null unless metrics.listen is set
  /// Null unless cluster.redis is set. Last: its thread posts to the engine through io_, and is
  /// stopped (in run(), and here) before anything it refers to goes.
  std::unique_ptr<cluster_service> cluster_;
};

}  // namespace

int run_daemon(const config_source& source, config initial) {
  std::shared_ptr<spdlog::logger> log;
  try {
    log = make_logger(initial.log);
  } catch (const std::exception& e) {
    fmt::print(stderr, "rcptguard: fatal: {}\n", e.what());
    return 1;
  }
  try {
    daemon_runtime d(source, std::move(initial), log);
    return d.run();
  } catch (const std::exception& e) {
    log->critical("FATAL {}", e.what());
    log->flush();
    return 1;
  }
}

}  // namespace rcptguard::daemon
