// The cluster store's thread (README, "Several MX hosts"): every cluster.interval it publishes
// this node's counts to Redis and reads the other nodes' counts for the recipients active here,
// and posts them to the network thread, which hands them to the engine. It also shares the
// correspondence this node sees, and reads the cluster's known correspondents of the
// recipients with an episode open here (once when the episode opens, then every minute), so
// the correspondent pass works for mail first exchanged through another node; and it shares
// operator releases both ways: one made here is published, one made elsewhere after an episode
// here opened is handed to the operator controls, which apply it here. The network
// thread only queues the engine's records here (collect(), a short lock) and never waits on
// Redis.
//
// Faults: any Redis error or time-out ends the round, the store counts as lost, the engine is
// told at once (judgements fall back to this node's counts), a CLUSTER LOST line is logged
// once, and a reconnect is tried every interval backing off to 5 s. When it succeeds, every
// count still held is published again (absolute values: nothing is added twice), so the
// other nodes catch up. Nothing waits for the store on the way out either: stop() ends the
// thread after the round in progress, whose every call is bounded by cluster.timeout.
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/correspondent_queue.hpp"
#include "cluster/node_counts.hpp"
#include "cluster/redis_client.hpp"
#include "common/time.hpp"
#include "config/config.hpp"
#include "daemon/worker.hpp"
#include "decision/cluster.hpp"
#include "decision/events.hpp"

namespace rcptguard::daemon {

struct cluster_service_stats {
  bool connected = false;
  std::uint64_t rounds = 0;        ///< rounds that published and read
  std::uint64_t faults = 0;        ///< failed connects and rounds
  std::uint64_t published = 0;     ///< counts and sketches sent
  std::uint64_t pulled = 0;        ///< recipients whose other nodes' counts were read
  std::uint64_t refused_full = 0;  ///< events left out: cluster.max_keys held
  /// RCPTs, pairs and episode records left out: the queue to the thread was full
  std::uint64_t dropped = 0;
  std::uint64_t correspondents_shared = 0;   ///< pairs new to the store
  std::uint64_t correspondents_refused = 0;  ///< pairs not shared: a cap was held
  std::uint64_t correspondents_read = 0;     ///< pairs read for recipients in an episode here
  std::uint64_t releases_shared = 0;         ///< operator releases here, published for the others
  std::uint64_t releases_taken = 0;          ///< other nodes' releases applied to episodes here
  std::uint32_t last_round_ms = 0;           ///< the last round's publish and read
  std::uint32_t max_round_ms = 0;
};

class cluster_service {
 public:
  /// What the thread hands the engine; each runs on the network thread (posted).
  struct handlers {
    /// The other nodes' counts for recipients active here, read at `read_at`.
    std::function<void(std::vector<decision::cluster_counts> counts, time_point read_at)> deliver;
    /// The store became unreachable at `at`.
    std::function<void(time_point at)> lost;
    /// The id the nodes agreed on for the flood behind an episode this node opened at `started`.
    std::function<void(std::string recipient, time_point started, std::string id)> episode;
    /// The cluster's known correspondents of recipients with an episode open here.
    std::function<void(std::vector<decision::known_senders> known, time_point read_at)>
        correspondents;
    /// An operator released, on another node, a recipient whose episode here is older.
    std::function<void(cluster::release_note note)> released;
  };

  /// `node` is this node's name; shared correspondents last `correspondent_ttl` in the store
  /// after a recipient's latest pair (store.retention, like this node's own).
  cluster_service(boost::asio::io_context& io, const cluster_settings& settings, std::string node,
                  std::chrono::seconds correspondent_ttl, std::shared_ptr<spdlog::logger> log,
                  handlers on);
  ~cluster_service();
  cluster_service(const cluster_service&) = delete;
  cluster_service& operator=(const cluster_service&) = delete;

  void start();
  void stop();

  /// On the network thread: this round's records, queued for the next round (copied; the
  /// caller keeps them for the store): RCPTs and deliveries to publish, the correspondence
  /// they show, episodes to agree on.
  void collect(const decision::outbox& records);

  /// On the network thread: an operator released `recipient` here at `at`; the other nodes
  /// apply it to their own open episodes of it (queued, a short lock).
  void announce_release(std::string recipient, time_point at, std::string user, std::string reason);

  cluster_service_stats stats() const;
  /// "NODE/INCARNATION": this process's field in the store.
  const std::string& field() const { return field_; }

 private:
  /// An episode of this node as the thread follows it: its start, and the flood's id once the
  /// store gave one.
  struct episode_track {
    time_point started;
    std::string id;
    time_point correspondents_read{};  ///< the epoch: not yet
    std::int64_t release_applied = 0;  ///< the `at` of the last release taken from the store
  };
  struct episode_event {
    std::string recipient;
    time_point started;
    bool ended = false;
  };

  void round();
  void publish_and_read(std::uint32_t minute);
  void share_correspondents();
  void agree_on_episodes();
  void read_correspondents(time_point now);
  void read_releases();
  void connected(time_point now);
  void failed(const std::string& what, time_point now);

  boost::asio::io_context& io_;
  std::shared_ptr<spdlog::logger> log_;
  handlers on_;
  std::chrono::milliseconds interval_;
  std::size_t max_pull_;
  std::size_t max_correspondents_;
  std::chrono::seconds correspondent_ttl_;
  std::string node_;
  std::string field_;  ///< node_ + "/" + incarnation
  cluster::redis_client client_;

  // The cluster thread's own.
  cluster::node_counts counts_;
  cluster::correspondent_queue correspondence_;
  std::map<std::string, episode_track> episodes_;
  std::string release_cursor_;                   ///< where the next round's release reads begin
  std::vector<cluster::release_note> releases_;  ///< to publish
  bool ever_connected_ = false;
  bool lost_reported_ = false;
  time_point lost_at_{};
  time_point next_attempt_{};
  std::chrono::milliseconds backoff_{};
  bool sigpipe_blocked_ = false;

  // Handed over from the network thread.
  mutable std::mutex mutex_;
  std::vector<cluster::count_event> queue_;
  std::vector<cluster::pair_row> pair_queue_;
  std::vector<episode_event> episode_queue_;
  std::vector<cluster::release_note> release_queue_;

  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> rounds_{0};
  std::atomic<std::uint64_t> faults_{0};
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> pulled_{0};
  std::atomic<std::uint64_t> refused_full_{0};
  std::atomic<std::uint64_t> correspondents_shared_{0};
  std::atomic<std::uint64_t> correspondents_refused_{0};  ///< by the store's cap
  std::atomic<std::uint64_t> pairs_refused_{0};           ///< by the pending bound
  std::atomic<std::uint64_t> correspondents_read_{0};
  std::atomic<std::uint64_t> releases_shared_{0};
  std::atomic<std::uint64_t> releases_taken_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint32_t> last_round_ms_{0};
  std::atomic<std::uint32_t> max_round_ms_{0};

  periodic_worker worker_;  ///< last: stopped before the rest is destroyed
};

/// cluster.node, or the host name when it is empty.
std::string cluster_node_name(const cluster_settings& settings);

}  // namespace rcptguard::daemon
