// The engine's baseline model replayed over the stored history (definitions in the header).
#include "cli/review_baseline.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <string>

namespace rcptguard::cli {
namespace {

constexpr std::int64_t hour_seconds = 3600;
constexpr std::int64_t hours_per_week = 168;

std::uint32_t clamp_u32(std::int64_t v) {
  return static_cast<std::uint32_t>(
      std::clamp<std::int64_t>(v, 0, std::numeric_limits<std::uint32_t>::max()));
}

decision::hourly_count as_count(const store::hourly_row& row) {
  decision::hourly_count c;
  c.hour_start = row.hour_start;
  c.accepted = clamp_u32(row.accepted);
  c.attempted = clamp_u32(row.attempted);
  c.distinct_senders = clamp_u32(row.distinct_senders);
  c.peak_minute = clamp_u32(row.peak_minute);
  c.peak_ten_minutes = clamp_u32(row.peak_ten_minutes);
  c.in_episode = row.in_episode;
  return c;
}

}  // namespace

double deviation(double observed, double expected) {
  return observed / std::max(expected, min_expected_per_window);
}

expectation_model::expectation_model(const decision::settings& detection,
                                     const decision::baseline_prior& prior)
    : detection_(detection), prior_(prior) {
  for (std::size_t i = 0; i < detection_.overrides.size(); ++i) {
    patterns_.emplace_back(decision::address_patterns({detection_.overrides[i].recipient},
                                                      detection_.recipient_delimiters),
                           i);
  }
  for (std::size_t i = 0; i < detection_.classes.size(); ++i) {
    patterns_.emplace_back(decision::address_patterns(detection_.classes[i].recipients,
                                                      detection_.recipient_delimiters),
                           detection_.overrides.size() + i);
  }
}

std::int64_t expectation_model::history_seconds() const {
  return std::int64_t{detection_.baseline.weeks} * hours_per_week * hour_seconds;
}

int expectation_model::class_index(std::string_view recipient) const {
  for (const auto& [patterns, index] : patterns_) {
    if (patterns.matches(recipient)) return static_cast<int>(index);
  }
  return -1;
}

const decision::thresholds& expectation_model::limits_of(std::string_view recipient) const {
  const int index = class_index(recipient);
  if (index < 0) return detection_.defaults;
  const auto i = static_cast<std::size_t>(index);
  if (i < detection_.overrides.size()) return detection_.overrides[i].limits;
  return detection_.classes[i - detection_.overrides.size()].limits;
}

std::string expectation_model::class_name(std::string_view recipient) const {
  const int index = class_index(recipient);
  if (index < 0) return "default";
  const auto i = static_cast<std::size_t>(index);
  if (i < detection_.overrides.size()) return "override";
  return detection_.classes[i - detection_.overrides.size()].name;
}

std::vector<double> expectation_model::expected(std::string_view recipient,
                                                std::span<const store::hourly_row> history,
                                                std::int64_t first_hour, std::size_t hours) const {
  const decision::thresholds& limits = limits_of(recipient);
  std::vector<decision::hourly_count> counts;
  counts.reserve(history.size());
  for (const store::hourly_row& row : history) counts.push_back(as_count(row));
  std::vector<double> out;
  out.reserve(hours);
  for (std::size_t k = 0; k < hours; ++k) {
    const std::int64_t hour = first_hour + static_cast<std::int64_t>(k) * hour_seconds;
    const decision::baseline b = decision::compute_baseline(
        counts, hour, prior_, detection_.baseline, limits.baseline_ceiling_per_hour);
    out.push_back(b.hourly + limits.baseline_spread_weight * b.spread);
  }
  return out;
}

decision::baseline_prior review_prior(std::span<SQLite::Database* const> dbs, std::int64_t target,
                                      const decision::baseline_settings& config) {
  const std::int64_t horizon = std::int64_t{config.weeks} * hours_per_week * hour_seconds;
  // Each node stores only the mail it answered: a recipient's totals are the sum of its nodes'.
  std::map<std::string, store::prior_sample> totals;
  for (SQLite::Database* db : dbs) {
    for (store::prior_sample& s : store::prior_samples(*db, target - horizon, target)) {
      auto [it, added] = totals.try_emplace(s.recipient, s);
      if (added) continue;
      it->second.first_hour = std::min(it->second.first_hour, s.first_hour);
      it->second.volume += s.volume;
      it->second.senders += s.senders;
    }
  }
  // compute_prior() reads a history through its first hour and its volume and sender totals
  // only, so one entry per recipient carrying the totals gives the prior of the full histories
  // (a test holds the two equal) without loading them.
  std::vector<decision::recipient_history> histories;
  for (const auto& [recipient, s] : totals) {
    decision::hourly_count total;
    total.hour_start = s.first_hour;
    total.attempted = clamp_u32(s.volume);
    total.distinct_senders = clamp_u32(s.senders);
    histories.push_back({{}, {total}});
  }
  return decision::compute_prior(histories, target, config, decision::baseline_prior{});
}

decision::baseline_prior review_prior(SQLite::Database& db, std::int64_t target,
                                      const decision::baseline_settings& config) {
  const std::array<SQLite::Database*, 1> one{&db};
  return review_prior(one, target, config);
}

}  // namespace rcptguard::cli
