// What the store writes, aggregated in memory first. The engine reports one record per request;
// review needs counts per recipient and minute, distinct senders per hour, correspondents, who
// was flagged when, and the explanation of a verdict when it changes. A delta holds exactly
// that, keyed: the same key again only adds to a count, so its size follows the active keys, not
// the request rate, and two deltas merge into one (the writer merges whatever arrives while it
// is busy instead of queueing it). A flush then writes one row per key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "decision/events.hpp"

namespace rcptguard::store {

struct minute_tally {
  std::uint32_t attempted = 0;
  std::uint32_t accepted = 0;
  std::uint64_t bytes = 0;  ///< of accepted messages
  /// Largest window volumes the engine reported in this minute, and whether any record of it
  /// was inside a trusted episode: the hour row keeps the maximum and the "or".
  std::uint32_t peak_minute = 0;
  std::uint32_t peak_ten_minutes = 0;
  bool in_episode = false;
};

struct pair_tally {
  std::int64_t first_seen = std::numeric_limits<std::int64_t>::max();
  std::int64_t last_seen = std::numeric_limits<std::int64_t>::min();
  std::uint32_t messages = 0;
};

/// A flagged request as review lists it: when (to the second), to whom, from whom, through
/// which client, and what was answered. Names are ids into the delta's name table.
struct flagged_key {
  std::int64_t at = 0;
  std::uint32_t recipient = 0;
  std::uint32_t sender = 0;
  std::uint32_t client = 0;
  std::uint8_t code = 0;  ///< flagged_code()
  bool operator==(const flagged_key&) const = default;
};

struct flagged_key_hash {
  std::size_t operator()(const flagged_key& k) const noexcept;
};

/// (recipient, sender, hour) of a distinct-sender key; names are ids.
struct hour_sender_key {
  std::uint32_t recipient = 0;
  std::uint32_t sender = 0;
  std::int64_t hour = 0;
  bool operator==(const hour_sender_key&) const = default;
};

struct hour_sender_key_hash {
  std::size_t operator()(const hour_sender_key& k) const noexcept;
};

/// Where a followed mail log has been read to (device and inode name the file across renames).
struct followed_position {
  std::string path;
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t offset = 0;
};

/// The flagged.code column: the level (1 warn, 2 defer), bit 2 monitor_only, bit 3 log source,
/// bit 4 delivered with the flag header (schema v7).
std::uint8_t flagged_code(decision::verdict_level level, bool monitor_only,
                          decision::event_source source, bool header_flagged = false);
bool code_header_flagged(std::uint8_t code);
decision::verdict_level code_level(std::uint8_t code);
bool code_monitor_only(std::uint8_t code);
decision::event_source code_source(std::uint8_t code);

/// Decides which verdicts are stored as an explanation: the first of an episode, and any whose
/// level, mode, source or set of reasons differs from the last one stored for the recipient, or
/// that comes with a new peak of its episode. It remembers one line per flagged recipient and
/// forgets it when the episode ends. One per producer of outboxes.
class explanation_filter {
 public:
  /// True when `verdict` is to be stored; `new_peak`: its episode was updated at the same time.
  bool wanted(const decision::verdict_record& verdict, bool new_peak);
  void episode_ended(const std::string& recipient) { last_.erase(recipient); }
  std::size_t size() const { return last_.size(); }

 private:
  std::unordered_map<std::string, std::string> last_;  ///< recipient -> signature
};

class delta {
 public:
  /// `key_limit`: keys held at most before distinct-sender keys, correspondent pairs and the
  /// identity of flagged requests are folded (counted in folded()); 0 means no limit. Counts
  /// are never folded: attempts, acceptances, bytes and flagged requests always add up.
  explicit delta(std::size_t key_limit = 0) : key_limit_(key_limit) {}

  /// Aggregates one outbox of the engine, in its order.
  void add(const decision::outbox& batch, explanation_filter& filter);

  /// Adds `other` to this one (the writer: what arrived while it was busy).
  void merge(delta&& other);

  /// Where a followed mail log has been read to once the records of this delta are stored: its
  /// row is written in the same transaction, so a crash neither skips nor recounts lines.
  void set_log_position(const std::string& path, std::uint64_t device, std::uint64_t inode,
                        std::uint64_t offset, std::int64_t saved_at);

  bool empty() const;
  void clear();

  /// Keys held: names, minutes, distinct-sender keys, pairs, flagged keys, cluster hours.
  std::size_t keys() const;
  /// Engine records aggregated in (deliveries + verdicts + episodes + cluster hours).
  std::uint64_t records() const { return records_; }
  /// Keys not kept because key_limit was reached.
  std::uint64_t folded() const { return folded_; }

  struct log_position {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint64_t offset = 0;
    std::int64_t saved_at = 0;
  };

  // Read by the store when it writes the delta.
  const std::vector<std::string>& names() const { return names_; }
  /// By (minute_start, recipient id), time first like recipient_minute's key.
  const std::map<std::pair<std::int64_t, std::uint32_t>, minute_tally>& minutes() const {
    return minutes_;
  }
  const std::unordered_set<hour_sender_key, hour_sender_key_hash>& senders() const {
    return senders_;
  }
  /// By (recipient id, sender id).
  const std::unordered_map<std::uint64_t, pair_tally>& pairs() const { return pairs_; }
  const std::unordered_map<flagged_key, std::uint32_t, flagged_key_hash>& flagged() const {
    return flagged_;
  }
  const std::vector<decision::verdict_record>& explanations() const { return explanations_; }
  const std::vector<decision::episode_record>& episodes() const { return episodes_; }
  const std::map<std::string, log_position>& log_positions() const { return positions_; }
  /// The other nodes' counts of completed hours, by (hour_start, recipient id): the largest
  /// reported.
  const std::map<std::pair<std::int64_t, std::uint32_t>, std::uint32_t>& cluster_hours() const {
    return cluster_hours_;
  }

 private:
  struct text_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };

  std::uint32_t name(std::string_view text);
  std::optional<std::uint32_t> known(std::string_view text) const;
  bool at_limit() const { return key_limit_ != 0 && keys() >= key_limit_; }
  void count(std::uint32_t recipient, const decision::delivery_record& delivery);
  void add_pair(std::string_view recipient, std::string_view sender, const pair_tally& tally);
  void add_sender(std::uint32_t recipient, std::string_view sender, std::int64_t hour);
  void add_flagged(std::int64_t at, std::uint32_t recipient, std::string_view sender,
                   std::string_view client, std::uint8_t code, std::uint32_t requests);

  std::size_t key_limit_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::uint32_t, text_hash, std::equal_to<>> name_ids_;
  std::map<std::pair<std::int64_t, std::uint32_t>, minute_tally> minutes_;
  std::unordered_set<hour_sender_key, hour_sender_key_hash> senders_;
  std::unordered_map<std::uint64_t, pair_tally> pairs_;
  std::unordered_map<flagged_key, std::uint32_t, flagged_key_hash> flagged_;
  std::vector<decision::verdict_record> explanations_;
  std::vector<decision::episode_record> episodes_;
  std::map<std::string, log_position> positions_;
  std::map<std::pair<std::int64_t, std::uint32_t>, std::uint32_t> cluster_hours_;
  std::uint64_t records_ = 0;
  std::uint64_t folded_ = 0;
};

}  // namespace rcptguard::store
