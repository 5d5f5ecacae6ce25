// The review's side of the learned baseline: what the engine expected of a recipient, hour by
// hour, from its stored history (decision/baseline.hpp on the rows of recipient_hourly), so that
// `review top` ranks by what is unusual and `review explain` shows each hour against it.
//
// Definitions (also in --help and the README):
//  - observed(h): the hour's RCPTs, max(attempted, accepted) (a replayed log knows deliveries only)
//  - expected(h): hourly + baseline_spread_weight x spread of decision::compute_baseline() for
//    hour h from the history before h, with the recipient's class ceiling and the server-wide
//    prior at the window's start: the expectation the engine's hour window judged against
//  - deviation = sum of observed(h) / max(1, sum of expected(h)) over the window's hours: a
//    window in which the model expects less than one message is compared to one message.
#pragma once

#include <SQLiteCpp/Database.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "decision/baseline.hpp"
#include "decision/matchers.hpp"
#include "decision/settings.hpp"
#include "store/review.hpp"

namespace rcptguard::cli {

/// The floor of a window's expected volume in deviation().
inline constexpr double min_expected_per_window = 1.0;

/// observed / max(expected, min_expected_per_window).
double deviation(double observed, double expected);

class expectation_model {
 public:
  expectation_model(const decision::settings& detection, const decision::baseline_prior& prior);

  /// Seconds of history before a window's first hour that expected() needs.
  std::int64_t history_seconds() const;

  /// Expected RCPTs in each of `hours` hours from `first_hour` (a multiple of 3600), from
  /// `history` (ascending; rows at or after an hour are ignored for it).
  std::vector<double> expected(std::string_view recipient,
                               std::span<const store::hourly_row> history, std::int64_t first_hour,
                               std::size_t hours) const;

  /// "default", a class's name, or "override" when a per-recipient override applies.
  std::string class_name(std::string_view recipient) const;

  const decision::baseline_prior& prior() const { return prior_; }

 private:
  const decision::thresholds& limits_of(std::string_view recipient) const;
  int class_index(std::string_view recipient) const;  ///< -1: the defaults

  decision::settings detection_;
  decision::baseline_prior prior_;
  /// Overrides first, then classes, as the engine matches them; the index into those lists.
  std::vector<std::pair<decision::address_patterns, std::size_t>> patterns_;
};

/// The server-wide prior at `target` (a multiple of 3600), as the engine computes it from the
/// histories of the `config.weeks` weeks before (decision::compute_prior), falling back to the
/// built-in prior when too few recipients have history. With several nodes' databases, each
/// recipient's history is the cluster's: its nodes' summed.
decision::baseline_prior review_prior(std::span<SQLite::Database* const> dbs, std::int64_t target,
                                      const decision::baseline_settings& config);
decision::baseline_prior review_prior(SQLite::Database& db, std::int64_t target,
                                      const decision::baseline_settings& config);

}  // namespace rcptguard::cli
