// The signals: from what is known about one recipient at one instant, a score made of named,
// weighted reasons. Volume against the baseline is the backbone; the other signals (sender and
// client diversity, one client hammering, concentration, spool evidence, one client
// reconnecting for every message) only add weight once
// volume is at least `amplifier_gate` of the way to a warning.
//
// The amplifiers are gated by the 1-minute, 10-minute and 1-hour windows only: they measure the
// last 10 minutes or hour, which the 24-hour volume says nothing about.
//
// Volume score per window: obs / warn_point below the warn point, then 1 + (obs - warn_point) /
// (defer_point - warn_point), capped at 4; the strongest window counts. A window's warn point is
// the largest of its floor, factor x expected and burst_warn_factor x the usual burst (the
// defer point likewise), so a recipient's own recurring storms stay below it. With the default
// score thresholds (1 and 2), volume alone warns exactly at a window's warn point and defers at its
// defer point; every amplifier that fires moves both points down.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "decision/events.hpp"
#include "decision/settings.hpp"
#include "decision/windows.hpp"

namespace rcptguard::decision {

/// Everything the signals judge, gathered by the engine.
struct observation {
  std::array<double, 4> volume{};       ///< RCPTs per window (all_windows order)
  std::array<double, 4> expected{};     ///< the baseline's expectation per window
  std::array<double, 4> usual_burst{};  ///< the learned usual burst per window (day: none)
  double usual_senders_burst = 0.0;     ///< most distinct senders of a learnable hour
  /// The 24-hour window is judged only once the recipient has a day of its own history: before
  /// that its daily expectation is mostly the server-wide prior, and a busy account's first day
  /// would hold an episode open all day. The shorter windows judge it meanwhile.
  bool day_judged = true;
  double senders_ten = 0.0;
  double senders_hour = 0.0;
  double expected_senders_ten = 0.0;
  double expected_senders_hour = 0.0;
  double clients_ten = 0.0;
  double top_client_share = 0.0;
  double top_client_sample = 0.0;  ///< RCPTs behind that share
  double total_ten = 0.0;          ///< all inbound RCPTs of the server in 10 minutes
  /// Most connections one client opened for this recipient in a 10-minute epoch while they
  /// were at least connection_rate_share of all its connections.
  double client_connections = 0.0;
  std::uint32_t evidence_repeats = 0;  ///< 0 when there is no fresh spool evidence
  std::string_view evidence_sha256;
};

enum class amplifier : std::uint8_t {
  sender_diversity,
  client_diversity,
  single_client,
  concentration,
  spool_evidence,
  connection_rate,
};
inline constexpr std::size_t amplifier_count = 6;

/// The numbers behind a score, kept free of strings so the DUNNO path never allocates.
struct assessment {
  double score = 0.0;
  double volume_score = 0.0;
  std::array<double, 4> window_score{};  ///< volume score per window (all_windows order)
  double amplifier_weight = 0.0;         ///< what the amplifiers that fired add
  window strongest = window::ten_minutes;
  std::array<double, 4> warn_point{};
  std::array<double, 4> defer_point{};
  std::array<double, amplifier_count> weight{};  ///< 0 = did not fire
};

assessment assess(const observation& seen, const thresholds& limits);

/// The score counting only the windows up to `longest` (amplifiers included when those windows
/// pass amplifier_gate): what holds an episode that a shorter window opened (see episodes.hpp).
double score_up_to(const assessment& judged, window longest, const thresholds& limits);

/// verdict_level for a score, before hysteresis.
verdict_level level_for(double score, const thresholds& limits);

/// The reasons behind a score: the strongest volume window first, then each amplifier that fired.
void explain(const observation& seen, const assessment& judged, std::vector<reason>& out);

/// The short text for Postfix and the logs: "rcptguard: bob@example.test 240 msgs/10m,
/// baseline 6, 180 senders" (+ ", ..." for single-client, connection rate and spool evidence).
void summarise(std::string_view recipient, const observation& seen, const assessment& judged,
               std::string& out);

/// Appends a count or rate the way people read it: whole numbers, one decimal below 10.
void append_number(std::string& out, double value);

}  // namespace rcptguard::decision
