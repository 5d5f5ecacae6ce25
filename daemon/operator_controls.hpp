// The operator commands of the control socket (daemon/control_service.hpp) on the network
// thread: each request line is checked, applied to the engine at once (so the next policy
// request sees it), logged with a CONTROL line, and recorded for the store (an audit row, and the
// allow entries that must survive a restart) as a writer job; `status` reads the daemon's state.
//
// The line protocol: one JSON object in, one JSON object out.
//   {"command":"allow","address":"bob@example.test","kind":"recipient","until":1790000000,
//    "reason":"ticket 4711"}           kind "recipient" (default) or "sender"; no until: for good
//   {"command":"unallow","address":"...","kind":"sender","reason":"..."}
//   {"command":"reset","address":"...","reason":"..."}
//   {"command":"release","address":"...","reason":"..."}
//   {"command":"status"}
//   -> {"ok":true,"command":"allow","address":"bob@example.test","message":"allowed ..."}
//   -> {"ok":false,"command":"release","error":"no open episode for ..."}
#pragma once

#include <spdlog/spdlog.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cluster/redis_client.hpp"
#include "common/time.hpp"
#include "config/config.hpp"
#include "daemon/control_service.hpp"
#include "decision/engine.hpp"
#include "server/stats.hpp"
#include "store/writer.hpp"

namespace rcptguard::daemon {

namespace control_request_limits {
/// A reason is kept in every audit row: a sentence or a ticket reference, not a document.
inline constexpr std::size_t max_reason = 1000;
/// An address as the policy protocol may carry it (RFC 5321: 256), with room for a delimiter.
inline constexpr std::size_t max_address = 320;
/// Open episodes listed by status, oldest first; the total is given beside them.
inline constexpr std::size_t max_status_episodes = 1000;
}  // namespace control_request_limits

class operator_controls {
 public:
  /// Hands a job to the store's writer thread; false once it stopped.
  using submit_fn = std::function<bool(store::database_job)>;
  using store_stats_fn = std::function<store::writer_stats()>;

  /// `settings` is the daemon's running configuration (store.retention is read at each use).
  operator_controls(decision::engine& engine, const server::server_stats& stats,
                    const config& settings, submit_fn submit, store_stats_fn store_stats,
                    std::shared_ptr<spdlog::logger> log, time_point started);

  /// One request line of an allowed caller; returns the reply line. Never throws for bad input.
  std::string handle(std::string_view line, const control_caller& caller, time_point now);

  /// A caller the socket refused: logged by the service, recorded here as an audit row.
  void refused(const control_caller& caller, const std::string& why, time_point now);

  /// With a cluster store: each release made here is handed to `announce` (recipient key, when,
  /// who, why), for the other nodes.
  using announce_fn = std::function<void(const std::string& recipient, time_point at,
                                         const std::string& user, const std::string& reason)>;
  void announce_releases_to(announce_fn announce) { announce_ = std::move(announce); }

  /// An operator's release on another node (`note`), for an episode here that opened before it:
  /// applied here as a release by the same user, logged and recorded with the node it came
  /// from. Nothing is recorded when the episode here has ended meanwhile.
  void release_from_cluster(const cluster::release_note& note, time_point now);

 private:
  struct request;

  std::string status(time_point now) const;
  void record(const control_caller& caller, const request& req, time_point now, bool ok,
              const std::string& detail);

  decision::engine& engine_;
  const server::server_stats& stats_;
  const config& settings_;
  submit_fn submit_;
  store_stats_fn store_stats_;
  std::shared_ptr<spdlog::logger> log_;
  time_point started_;
  announce_fn announce_;
};

}  // namespace rcptguard::daemon
