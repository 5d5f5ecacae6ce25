// This node's counts as the cluster store holds them: per recipient, RCPTs per minute (the last
// 10) and per hour (the last 24), and the senders and clients not yet added to the store's
// sketches. Pure: events and minutes in, what to publish out.
//
// The store keeps each node's counts as absolute values in a field of its own, so publishing
// again (after a time-out whose reply was lost, after an outage, after a partition) sets the
// same value and never adds twice. Which keys changed since the last publish is tracked; a
// publish that failed hands its batch back.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace rcptguard::cluster {

/// One RCPT (or logged delivery) of this node, from the engine's records.
struct count_event {
  std::string recipient;  ///< the engine's normalised key
  std::uint32_t minute = 0;
  std::string sender;  ///< normalised; empty for <>
  std::string client;
};

/// A count to set: this node's RCPTs to `recipient` in `bucket` (a Unix minute or hour).
struct count_row {
  std::string recipient;
  std::uint32_t bucket = 0;
  std::uint32_t count = 0;
};

/// Items to add to a sketch (a HyperLogLog) of `recipient` in `bucket`.
struct sketch_row {
  std::string recipient;
  std::uint32_t bucket = 0;  ///< a Unix minute, or a 10-minute epoch (minute / 10)
  std::vector<std::string> items;
};

/// What one publish sends.
struct publish_batch {
  std::vector<count_row> minutes;
  std::vector<count_row> hours;
  std::vector<sketch_row> senders;        ///< by minute
  std::vector<sketch_row> epoch_senders;  ///< by 10-minute epoch, for the hour window
  std::vector<sketch_row> clients;        ///< by minute

  bool empty() const {
    return minutes.empty() && hours.empty() && senders.empty() && epoch_senders.empty() &&
           clients.empty();
  }
};

struct node_counts_stats {
  std::uint64_t events = 0;
  std::uint64_t refused_full = 0;  ///< events not counted: max_keys held
  std::size_t keys = 0;            ///< minute and hour keys held now
};

class node_counts {
 public:
  static constexpr std::uint32_t minutes_kept = 10;
  static constexpr std::uint32_t hours_kept = 24;
  static constexpr std::uint32_t epochs_kept = 6;

  /// `max_keys` bounds the minute and hour keys held together; an event for a new key beyond
  /// it is refused and counted (the cluster's view of that recipient is then low; this node's
  /// own judgement is untouched). A recipient is shared (published and read) once it has
  /// `min_count` RCPTs here in the kept minutes: a load of many recipients with one message
  /// each then costs the store nothing, and the cluster's view of a recipient lacks at most
  /// min_count - 1 of each node's RCPTs (all of them are published once it reaches it).
  explicit node_counts(std::size_t max_keys, std::uint32_t min_count = 1)
      : max_keys_(max_keys), min_count_(std::max<std::uint32_t>(min_count, 1)) {}

  void add(const count_event& e);
  /// What changed since the last take (counts as absolute values), of the recipients shared.
  publish_batch take_changes();
  /// A publish failed: its counts are marked changed again and its sketch items go back.
  void give_back(publish_batch&& batch);
  /// After a reconnect: every count held is published again (the store may have lost it).
  void mark_all_changed();
  /// Drops minutes older than the 10 before `now_minute` and hours older than the 24.
  void expire(std::uint32_t now_minute);
  /// Shared recipients with RCPTs here in the `within` minutes up to `now_minute`, at most
  /// `limit`, the most RCPTs here in the kept minutes first (then the most recent): the ones
  /// whose other nodes' counts a judgement here may need, floods first.
  std::vector<std::string> active(std::uint32_t now_minute, std::uint32_t within,
                                  std::size_t limit) const;

  node_counts_stats stats() const;

 private:
  using key = std::pair<std::string, std::uint32_t>;
  struct count {
    std::uint32_t value = 0;
    bool changed = false;
  };
  using sketch_map = std::map<key, std::set<std::string>>;

  static void bump(std::map<key, count>& counts, const std::string& recipient,
                   std::uint32_t bucket);
  static void take_counts(std::map<key, count>& counts, const std::set<std::string>& shared,
                          std::vector<count_row>& out);
  static void take_sketches(sketch_map& pending, const std::set<std::string>& shared,
                            std::vector<sketch_row>& out);
  static void give_back_sketches(sketch_map& pending, std::vector<sketch_row>&& rows);
  static void give_back_counts(std::map<key, count>& counts, const std::vector<count_row>& rows);

  std::size_t max_keys_;
  std::uint32_t min_count_;
  std::map<key, count> minutes_;
  std::map<key, count> hours_;
  sketch_map senders_;
  sketch_map epoch_senders_;
  sketch_map clients_;
  std::map<std::string, std::uint32_t> last_seen_;  ///< recipient -> latest minute
  /// Recipients shared: once they reached min_count_, until their last hour expires.
  std::set<std::string> shared_;
  node_counts_stats stats_;
};

}  // namespace rcptguard::cluster
