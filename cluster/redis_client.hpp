// The one connection to the cluster store (Redis, through hiredis's blocking API with time-outs):
// publishes this node's counts and reads the other nodes'. Blocking by design: it runs on the
// daemon's cluster thread, never on the network thread, and every call is bounded by the
// time-out. Any failure (refused, timed out, an error reply, a protocol error) throws
// redis_error and leaves the client disconnected; connect() again.
//
// Keys (all under `key_prefix`, so several clusters or other programs can share a Redis):
//   m:MINUTE:RECIPIENT   hash, field NODE/INCARNATION -> that node's RCPTs in the minute (15 min)
//   h:HOUR:RECIPIENT     hash, likewise for the hour (25 h)
//   s:MINUTE:RECIPIENT   HyperLogLog of the minute's senders (15 min)
//   e:EPOCH:RECIPIENT    HyperLogLog of the 10-minute epoch's senders (75 min)
//   c:MINUTE:RECIPIENT   HyperLogLog of the minute's clients (15 min)
//   k:RECIPIENT          hash, SENDER -> Unix minute the cluster first saw mail between them
//                        (store.retention after the last pair added; cluster.max_correspondents
//                        senders at most)
//   o:RECIPIENT          the latest operator release of the recipient on any node (JSON: at,
//                        node, user, reason), a day
//   x:RECIPIENT          the id of the recipient's flood, set by the first node to open an
//                        episode (30 min after the last node's episode ended)
// hiredis writes with write(2): the calling thread must have SIGPIPE blocked or ignored, or a
// server that went away kills the process instead of failing the call.
//
// One standalone Redis (or a primary behind Sentinel's address): the read script touches keys
// it is not given, which Redis Cluster would refuse.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/correspondent_queue.hpp"
#include "cluster/node_counts.hpp"
#include "decision/cluster.hpp"

struct redisContext;
struct redisReply;

namespace rcptguard::cluster {

struct redis_options {
  std::string host;  ///< TCP host; empty when unix_path is set
  std::uint16_t port = 6379;
  std::string unix_path;
  std::string user;  ///< ACL user (Redis 6+); empty: the password alone (requirepass)
  std::string password;
  std::chrono::milliseconds timeout{200};  ///< connect, and each reply
  std::string key_prefix = "rcptguard:";
};

/// An operator's release of a recipient on one node, for the others to apply to their own open
/// episodes of it (README, "Operator controls in a cluster").
struct release_note {
  std::string recipient;  ///< the engine's normalised key
  std::int64_t at = 0;    ///< Unix seconds
  std::string node;
  std::string user;
  std::string reason;

  bool operator==(const release_note&) const = default;
};

/// What a release note read from the store may carry: a user name, and a reason as long as the
/// control socket accepts one.
inline constexpr std::size_t max_release_user = 256;
inline constexpr std::size_t max_release_reason = 1000;

class redis_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class redis_client {
 public:
  explicit redis_client(redis_options options);
  ~redis_client();
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  /// Connects, authenticates and loads the read script. Throws redis_error.
  void connect();
  bool connected() const { return context_ != nullptr; }
  void disconnect();
  /// "127.0.0.1:6379" or "unix:/run/redis/redis.sock", for log lines.
  std::string describe() const;

  /// Sets this node's counts in its field `field` ("NODE/INCARNATION"), adds the sketch items
  /// and renews each key's expiry, pipelined. Throws redis_error.
  void publish(const publish_batch& batch, std::string_view field);

  /// For each recipient, the counts of the fields that do not start with `own_prefix`
  /// ("NODE/": every incarnation of this node) in the 10 minutes and 24 hours ending at
  /// `minute`, and the cluster's distinct senders and clients. Pipelined. Throws redis_error.
  std::vector<decision::cluster_counts> pull(const std::vector<std::string>& recipients,
                                             std::string_view own_prefix, std::uint32_t minute);

  /// Adds correspondence this node saw to the store: each pair keeps the earliest minute any
  /// node published for it; a recipient with `cap` senders takes no new one (counted in the
  /// result); each recipient's pairs are kept `ttl` after the last one added. Pipelined.
  /// Throws redis_error.
  struct share_result {
    std::uint64_t added = 0;
    std::uint64_t refused_full = 0;
  };
  share_result share_correspondents(const std::vector<pair_row>& pairs, std::size_t cap,
                                    std::chrono::seconds ttl);

  /// The senders the whole cluster saw correspond with each recipient, at most `max_senders`
  /// each (the cap above, held against whatever else writes under the prefix), in recipient
  /// order. Pipelined. Throws redis_error.
  std::vector<decision::known_senders> read_correspondents(
      const std::vector<std::string>& recipients, std::size_t max_senders);

  /// Each note becomes its recipient's latest release, kept `ttl`. Pipelined. Throws redis_error.
  void publish_releases(const std::vector<release_note>& notes, std::chrono::seconds ttl);
  /// Each recipient's latest release, in recipient order; nullopt where there is none (or what
  /// is there is not a release note). The user and the reason are cut to what the control
  /// socket takes (max_release_user, max_release_reason bytes). Pipelined. Throws redis_error.
  std::vector<std::optional<release_note>> read_releases(
      const std::vector<std::string>& recipients);

  /// One episode id per flood: for each claim, the recipient's id becomes `proposed` unless a
  /// node set one first, and the id in force is returned (in claim order); the ids of `open`
  /// recipients (episodes still open here) are kept for another `ttl` from now. Pipelined.
  /// Throws redis_error.
  struct episode_claim {
    std::string recipient;
    std::string proposed;
  };
  std::vector<std::string> claim_episodes(const std::vector<episode_claim>& claims,
                                          const std::vector<std::string>& open,
                                          std::chrono::seconds ttl);

 private:
  struct reply_deleter {
    void operator()(void* reply) const;
  };
  using reply_ptr = std::unique_ptr<void, reply_deleter>;

  /// Runs one command and returns its reply; an error reply throws.
  reply_ptr command(const std::vector<std::string>& argv);
  /// Sends `commands` in chunks and hands each reply, in order, to `take`; an error reply
  /// throws, except NOSCRIPT (Redis restarted): the scripts are loaded and the chunk sent again.
  void pipeline(const std::vector<std::vector<std::string>>& commands,
                const std::function<void(std::size_t, const redisReply&)>& take);
  void append(const std::vector<std::string>& argv);
  reply_ptr read_reply();
  [[noreturn]] void fail(const std::string& what);
  void load_scripts();

  redis_options options_;
  redisContext* context_ = nullptr;
  std::string read_sha_;
  std::string share_sha_;
  std::size_t appended_ = 0;  ///< commands sent whose replies are not read yet
};

}  // namespace rcptguard::cluster
