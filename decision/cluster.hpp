// Counts of the other nodes of a cluster (several MX hosts sharing one Redis), an input of the
// engine like any other event: the daemon's cluster thread pulls them for recipients active here
// and hands them in with the time they were read; the engine adds them to its own counts when it
// judges, while they are fresh.
//
// Why "the others'" and not the cluster's totals: this node's own counts are exact and current in
// its windows; the store's copy of them is as old as the last publish. Totals minus this node's
// own fields (every incarnation of it: after a restart its earlier counts come back from its own
// database) are what it cannot know, and adding them never counts a message twice.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/time.hpp"
#include "decision/events.hpp"
#include "decision/signals.hpp"
#include "decision/windows.hpp"

namespace rcptguard::decision {

/// What the other nodes counted for one recipient, ending at one minute.
struct cluster_counts {
  std::string recipient;     ///< the normalised key, as the engine's records carry it
  std::uint32_t minute = 0;  ///< Unix minute of the newest bucket (when they were read)
  /// Their RCPTs in the 10 minutes ending at `minute`, oldest first.
  std::array<std::uint32_t, 10> minutes{};
  /// Their RCPTs in the 24 hours ending with the hour containing `minute`, oldest first (each
  /// hour whole, the minutes above included).
  std::array<std::uint32_t, 24> hours{};
  /// Distinct senders and clients of the whole cluster, this node included (mergeable
  /// sketches: a union, not a sum), in the 10-minute and hour windows.
  std::uint32_t senders_ten = 0;
  std::uint32_t senders_hour = 0;
  std::uint32_t clients_ten = 0;
};

/// Senders the cluster's nodes saw correspond with one recipient (cluster.hpp's store keeps
/// them per recipient, each with the minute its first sighting was published), read for a
/// recipient with an episode open here: a reply to a mail our user sent through another node
/// passes here as it would there.
struct known_senders {
  struct sender {
    std::string address;             ///< normalised, as the engine's records carry it
    std::uint32_t first_minute = 0;  ///< Unix minute
  };
  std::string recipient;  ///< normalised key
  std::vector<sender> senders;
};

struct cluster_stats {
  std::uint64_t updates = 0;       ///< cluster_counts taken
  std::uint64_t refused_full = 0;  ///< not taken: max_recipients held
  std::uint64_t losses = 0;        ///< clear() calls: the store became unreachable
  std::size_t recipients = 0;      ///< held now
};

/// The others' counts per recipient key hash, bounded; the engine's to own.
class cluster_totals {
 public:
  explicit cluster_totals(std::size_t max_recipients) : max_recipients_(max_recipients) {}

  /// Replaces the recipient's entry; refused (and counted) when full and the key is new. The
  /// other nodes' counts of each hour completed since the recipient's last update (all 23 the
  /// first time) go to `completed`, for this node's history.
  void update(std::uint64_t key_hash, const cluster_counts& counts, time_point now,
              std::vector<cluster_hour_record>& completed);
  /// Forgets every entry: judgement falls back to this node's counts at once.
  void clear();
  /// An operator reset the recipient here at `minute`: the other nodes' counts up to that minute
  /// (and of the hours up to its hour) no longer join its judgements, so a release sticks on
  /// this node as it does alone. Their later minutes still do; the rest of that hour joins the
  /// hour and day windows from the next hour. Remembered for a day (the longest window), apart
  /// from the entries, which come and go with the reads; at most max_recipients of them.
  void reset(std::uint64_t key_hash, std::uint32_t minute);
  /// Adds a fresh entry's counts to `seen`: volumes added per window, distinct senders and
  /// clients the larger of this node's and the cluster's. An entry older than `max_age` is
  /// ignored (the pull stopped; the counts would only age).
  void add_to(std::uint64_t key_hash, observation& seen, time_point now,
              std::chrono::milliseconds max_age) const;
  /// Drops entries older than `max_age`, at most `budget` of them.
  void expire(time_point now, std::chrono::milliseconds max_age, std::size_t budget);

  cluster_stats stats() const;

 private:
  struct entry {
    time_point at;
    recipient_windows others;
    std::uint32_t senders_ten = 0;
    std::uint32_t senders_hour = 0;
    std::uint32_t clients_ten = 0;
    std::uint32_t recorded_hour = 0;  ///< the latest completed hour handed to the history
  };
  static constexpr std::uint32_t reset_kept_minutes = 25 * 60;

  std::size_t max_recipients_;
  std::unordered_map<std::uint64_t, entry> entries_;
  std::unordered_map<std::uint64_t, std::uint32_t> resets_;  ///< key -> the minute of its reset
  cluster_stats stats_;
};

}  // namespace rcptguard::decision
