// What the decision engine reports for persistence, and what it is given back at start-up.
// These plain structs are the whole contract between decision/ (pure) and store/ (SQLite):
// the engine appends records to an outbox, the server moves them to the store's queue, and
// at start-up the store reads a restore_snapshot that the engine loads before serving.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.hpp"

namespace rcptguard::decision {

/// Where an observation came from; the two are never double-counted for the same message.
enum class event_source : std::uint8_t { policy, log };

/// The verdict levels, in order of severity.
enum class verdict_level : std::uint8_t { dunno, warn, defer };

/// One recipient of one message. `accepted` is false for an RCPT that was counted as an
/// attempt only (the transaction never reached END-OF-MESSAGE or the hook is absent).
struct delivery_record {
  time_point at;
  std::string recipient;  ///< normalised key (lower-case, extension stripped)
  std::string sender;     ///< normalised; empty for the null sender <>
  std::string client;     ///< client address, IPv6 aggregated to the configured prefix
  std::uint64_t size = 0;
  bool accepted = false;
  event_source source = event_source::policy;
  /// Sent by a SASL-authenticated client, i.e. by one of our users: the recipient may then
  /// answer back, so the pair also counts the other way round (sender <- recipient).
  bool authenticated = false;
  /// The recipient's 1-minute and 10-minute RCPT volume when this was recorded: the store
  /// keeps each hour's largest, from which the usual burst is learned.
  std::uint32_t minute_volume = 0;
  std::uint32_t ten_minute_volume = 0;
  /// Counted while the recipient had an episode opened against its own baseline: the whole
  /// hour is then kept out of learning, so a flood cannot teach that floods are normal.
  bool in_episode = false;
  /// Delivered with the flag header: accepted, but no correspondence (see engine::on_rcpt).
  bool header_flagged = false;
};

/// Mail that makes `sender` a known correspondent of `recipient` (views into a delivery_record).
struct correspondence {
  std::string_view recipient;
  std::string_view sender;
};

/// The correspondence a delivery shows, the one rule the store and the cluster store share:
/// none for an attempt, a bounce (the null sender would make backscatter "known") or a flood
/// we flagged; the pair itself; and, when our own user sent it, the reverse too (a reply from
/// there is correspondence). Mail to oneself is one pair. Returns how many of `out` it filled.
inline std::size_t correspondence_of(const delivery_record& d, std::array<correspondence, 2>& out) {
  if (!d.accepted || d.sender.empty() || d.header_flagged) return 0;
  out[0] = {d.recipient, d.sender};
  if (!d.authenticated || d.recipient == d.sender) return 1;
  out[1] = {d.sender, d.recipient};
  return 2;
}

/// One named, weighted reason behind a verdict, with the numbers it judged.
struct reason {
  std::string name;     ///< stable identifier: "volume_10m", "sender_diversity", ...
  double weight = 0.0;  ///< contribution to the score
  double observed = 0.0;
  double baseline = 0.0;
  std::string detail;  ///< short human text: "240 msgs/10m, baseline 6"
};

/// A non-DUNNO verdict as answered (or, for log replay, as it would have been answered).
struct verdict_record {
  time_point at;
  std::string recipient;
  std::string sender;
  std::string client;
  verdict_level level = verdict_level::dunno;
  double score = 0.0;
  std::string action_text;  ///< exactly what was sent to Postfix after "action="
  std::vector<reason> reasons;
  event_source source = event_source::policy;
  /// Monitor mode: `level` is defer (what enforce mode would have answered) while
  /// `action_text` is the WARN that was actually sent.
  bool monitor_only = false;
  /// enforce_action = flag: `level` is defer, the message was delivered with the flag header.
  bool header_flagged = false;
};

/// Why an episode closed.
enum class close_cause : std::uint8_t {
  cool_down,  ///< the score stayed below the exit score for the cool-down
  evicted,    ///< the recipient left the table (key cap or idle expiry)
  stale,      ///< restored at start-up with no update for a day: the flood ended while we were down
  released,   ///< an operator ended it (`rcptguard release`)
};

/// An alert episode per recipient: opened at the first WARN/DEFER, updated at each new peak,
/// closed when the recipient has cooled down. The store keys episodes by (recipient, started).
struct episode_record {
  std::string recipient;
  time_point started;
  time_point updated;
  bool ended = false;
  verdict_level peak_level = verdict_level::warn;
  double peak_score = 0.0;
  std::string peak_window;  ///< window name of the strongest volume reason, e.g. "10m"
  double peak_observed = 0.0;
  double peak_baseline = 0.0;
  std::string summary;  ///< the explanation text at the peak
  event_source source = event_source::policy;
  close_cause closed_by = close_cause::cool_down;  ///< when `ended`
  /// With a cluster store: the id the nodes agreed on for this flood (the first node's
  /// "NODE:STARTED"); empty alone, and until the store answered.
  std::string cluster_id;
};

/// The other nodes' RCPTs to a recipient in one completed hour, as the cluster store reported
/// them (cluster.hpp): kept beside this node's own hourly rows so that its baselines learn the
/// cluster's volume, not its share of it. Late publishes only raise it; the store keeps the
/// largest value reported.
struct cluster_hour_record {
  std::string recipient;        ///< normalised key
  std::int64_t hour_start = 0;  ///< Unix seconds, a multiple of 3600
  std::uint32_t attempted = 0;
};

/// Everything the engine produced since the last drain; moved to the store in one piece.
struct outbox {
  std::vector<delivery_record> deliveries;
  std::vector<verdict_record> verdicts;
  std::vector<episode_record> episodes;
  std::vector<cluster_hour_record> cluster_hours;

  bool empty() const {
    return deliveries.empty() && verdicts.empty() && episodes.empty() && cluster_hours.empty();
  }
  void clear() {
    deliveries.clear();
    verdicts.clear();
    episodes.clear();
    cluster_hours.clear();
  }
};

/// Hourly history of one recipient, the input of the baseline model.
struct hourly_count {
  std::int64_t hour_start = 0;  ///< Unix seconds, a multiple of 3600
  std::uint32_t accepted = 0;
  std::uint32_t attempted = 0;
  std::uint32_t distinct_senders = 0;
  /// Largest 1-minute and 10-minute volume seen in the hour; 0 when unknown (history from
  /// before schema v7), then read as the hour's volume spread evenly.
  std::uint32_t peak_minute = 0;
  std::uint32_t peak_ten_minutes = 0;
  bool in_episode = false;  ///< see delivery_record::in_episode: not learned from
};

/// Per-minute counts of the last 24 hours, so the sliding windows survive a restart.
struct minute_count {
  std::string recipient;
  std::int64_t minute_start = 0;  ///< Unix seconds, a multiple of 60
  std::uint32_t accepted = 0;
  std::uint32_t attempted = 0;
};

struct recipient_history {
  std::string recipient;
  std::vector<hourly_count> hours;  ///< ascending hour_start
};

struct correspondent_pair {
  std::string recipient;
  std::string sender;
  std::int64_t first_seen = 0;  ///< Unix seconds
  std::int64_t last_seen = 0;
  std::uint32_t messages = 0;
};

/// Whom an operator's allow entry lets through.
enum class allow_kind : std::uint8_t { recipient, sender };

/// An operator's allow entry (`rcptguard allow`): the address is counted but never judged (a
/// recipient), or never deferred or warned (a sender), like detection.allow_recipients and
/// allow_senders, until `until` or for good. Kept in the store so it survives a restart.
struct operator_allow_entry {
  std::string address;  ///< normalised key, exact (no patterns)
  allow_kind kind = allow_kind::recipient;
  time_point until{};  ///< the epoch: for good
  time_point created_at{};
  std::string user;  ///< who allowed it, as the control socket's peer credentials said
  std::string reason;

  bool for_good() const { return until == time_point{}; }
};

/// An operator's reset or release of `recipient` at `at`: its live counters started again from
/// zero then, so the minute rows up to that minute are not restored into its windows.
struct counter_reset {
  std::string recipient;  ///< normalised key
  time_point at;
};

/// What the store hands the engine at start-up (and, for histories, periodically after).
struct restore_snapshot {
  std::vector<minute_count> recent_minutes;
  std::vector<recipient_history> histories;
  std::vector<correspondent_pair> correspondents;
  std::vector<episode_record> open_episodes;
  std::vector<operator_allow_entry> operator_allows;  ///< expired ones are dropped
  std::vector<counter_reset> counter_resets;          ///< of the last 24 hours
};

}  // namespace rcptguard::decision
