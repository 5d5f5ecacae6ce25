// Per-recipient sliding windows (1 minute, 10 minutes, 1 hour, 24 hours) from time-bucketed,
// saturating counters. Updates are O(1); a read sums at most 24 small buckets.
//
// Resolution and memory, per recipient (about 170 bytes):
//  - minute buckets x10 (attempted, accepted: 16 bit; new senders, new clients: 8 bit);
//  - hour buckets x24 (attempted, accepted: 16 bit), two hourly new-sender counts;
//  - per 10-minute epoch (this one and the last): RCPTs, the busiest client's share of them and
//    the most connections one client opened for this recipient.
// The 10-minute window is the current minute plus the nine before (9 to 10 minutes); the
// 24-hour window the current hour plus the 23 before. The 1-minute and 1-hour windows add the
// previous bucket weighted by the part of it still inside the window (uniform-rate assumption).
// Counters stop at their maximum instead of wrapping: a flood past 65535 RCPTs a minute reads as
// 65535, which is far above every threshold anyway; the 8-bit distinct counts stop at 255 a
// minute for the same reason.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

#include "common/time.hpp"

namespace rcptguard::decision {

/// The Unix minute of `t` (0 before the epoch), the buckets' unit.
inline std::uint32_t unix_minute(time_point t) {
  return static_cast<std::uint32_t>(std::max<std::int64_t>(0, to_unix_seconds(t)) / 60);
}

/// Seconds into that minute.
inline unsigned second_in_minute(time_point t) {
  return static_cast<unsigned>(std::max<std::int64_t>(0, to_unix_seconds(t)) % 60);
}

enum class window : std::uint8_t { minute, ten_minutes, hour, day };

inline constexpr std::array<window, 4> all_windows{window::minute, window::ten_minutes,
                                                   window::hour, window::day};

/// "1m", "10m", "1h", "24h": the names used in reasons and episode records.
std::string_view window_name(window w);
/// Length in minutes.
std::uint32_t window_minutes(window w);

class recipient_windows {
 public:
  /// Rotates the buckets forward to `minute` (Unix minutes). Time going backwards (clock steps,
  /// replayed logs slightly out of order) counts into the newest bucket instead.
  void advance(std::uint32_t minute);
  std::uint32_t newest_minute() const { return head_; }

  // All adders count into the newest bucket; call advance() first.
  void add_attempt();
  void add_accepted();
  /// `new_ten` / `new_hour`: the sender was not yet counted in the 10-minute / hour window.
  void add_sender(bool new_ten, bool new_hour);
  void add_client(bool new_ten);
  /// The client of this RCPT has sent `count` RCPTs to this recipient in the current
  /// 10-minute epoch (including this one).
  void note_client_count(std::uint32_t count);
  /// The client of this RCPT has opened `connections` connections for this recipient in the
  /// current 10-minute epoch, enough of all its connections to count (connection_rate).
  void note_client_connections(std::uint32_t connections);

  /// Restores counts of one past minute (from the store) if it is still inside the 24 hours.
  void restore_minute(std::uint32_t minute, std::uint32_t accepted, std::uint32_t attempted);
  /// Adds counts to the hour `hour` (Unix hours) alone, if it is still inside the 24 hours: the
  /// part of an hour's total that no restored minute carries.
  void restore_hour(std::uint32_t hour, std::uint32_t accepted, std::uint32_t attempted);

  // Reads; `second_in_minute` and `minute_in_hour` place "now" inside the newest buckets.
  double attempted(window w, std::uint32_t now_minute, unsigned second_in_minute) const;
  double accepted(window w, std::uint32_t now_minute, unsigned second_in_minute) const;
  double distinct_senders_ten_minutes(std::uint32_t now_minute) const;
  double distinct_senders_hour(std::uint32_t now_minute, unsigned second_in_minute) const;
  double distinct_clients_ten_minutes(std::uint32_t now_minute) const;
  /// Largest share of one client in the current or previous 10-minute epoch with at least
  /// `min_messages` RCPTs; `sample` gets that epoch's RCPT count (0 when none qualifies).
  double top_client_share(std::uint32_t now_minute, std::uint32_t min_messages,
                          double& sample) const;
  /// Most connections one client opened for this recipient in the current or previous
  /// 10-minute epoch (as noted by note_client_connections).
  double top_client_connections(std::uint32_t now_minute) const;

  /// Attempts in the hour starting at Unix minute `hour * 60` if it is still kept.
  std::uint32_t attempted_in_hour(std::uint32_t hour) const;
  std::uint32_t accepted_in_hour(std::uint32_t hour) const;

 private:
  static constexpr std::uint32_t minutes_kept = 10;
  static constexpr std::uint32_t hours_kept = 24;

  template <class T>
  double sum_minutes(const std::array<T, minutes_kept>& buckets, std::uint32_t now_minute,
                     std::uint32_t count, double oldest_weight) const;
  template <class T>
  double sum_hours(const std::array<T, hours_kept>& buckets, std::uint32_t now_minute,
                   std::uint32_t count, double oldest_weight) const;
  double read(window w, const std::array<std::uint16_t, minutes_kept>& minutes,
              const std::array<std::uint16_t, hours_kept>& hours, std::uint32_t now_minute,
              unsigned second_in_minute) const;

  std::uint32_t head_ = 0;  ///< newest minute with buckets (Unix minutes)
  std::array<std::uint16_t, minutes_kept> attempted_min_{};
  std::array<std::uint16_t, minutes_kept> accepted_min_{};
  std::array<std::uint8_t, minutes_kept> senders_min_{};
  std::array<std::uint8_t, minutes_kept> clients_min_{};
  std::array<std::uint16_t, hours_kept> attempted_hour_{};
  std::array<std::uint16_t, hours_kept> accepted_hour_{};
  std::array<std::uint16_t, 2> senders_hour_{};  ///< by hour parity
  std::array<std::uint16_t, 2> epoch_rcpts_{};   ///< by 10-minute epoch parity
  std::array<std::uint16_t, 2> epoch_top_{};
  std::array<std::uint16_t, 2> epoch_connections_{};  ///< by 10-minute epoch parity
};

}  // namespace rcptguard::decision
