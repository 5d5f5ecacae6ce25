// Seasonal, robust, rise-capped baselines (model in baseline.hpp).
#include "decision/baseline.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace rcptguard::decision {

namespace {

constexpr std::int64_t hour_seconds = 3600;
constexpr std::int64_t hours_per_week = 168;

// Median of a small sample (reordered in place); 0 for none.
double median(std::vector<double>& sample) {
  if (sample.empty()) return 0.0;
  const std::size_t mid = sample.size() / 2;
  std::nth_element(sample.begin(), sample.begin() + static_cast<std::ptrdiff_t>(mid), sample.end());
  const double upper = sample[mid];
  if (sample.size() % 2 == 1) return upper;
  const double lower =
      *std::max_element(sample.begin(), sample.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2.0;
}

double mad(const std::vector<double>& sample, double centre, std::vector<double>& scratch) {
  scratch.clear();
  for (const double x : sample) scratch.push_back(std::fabs(x - centre));
  return median(scratch);
}

// One recipient's history as dense hourly series over [start, start + size) hours.
struct series {
  std::int64_t start_hour = 0;  ///< Unix hours
  std::vector<double>
      volume;  ///< max(attempted, accepted): a log-replay history only knows accepted
  std::vector<double> senders;
  std::vector<double> prefix;  ///< prefix sums of volume, for daily totals
  std::vector<double> peak_minute;
  std::vector<double> peak_ten_minutes;
  std::vector<char> excluded;                 ///< inside a trusted episode: not a sample
  std::vector<std::int64_t> excluded_prefix;  ///< prefix counts of excluded, per day checks

  std::int64_t size() const { return static_cast<std::int64_t>(volume.size()); }
};

series densify(std::span<const hourly_count> hours, std::int64_t target_hour,
               std::int64_t horizon_hours) {
  series s;
  std::int64_t first = target_hour;
  for (const hourly_count& h : hours) {
    const std::int64_t hour = h.hour_start / hour_seconds;
    if (hour < target_hour) {
      first = std::min(first, hour);
    }
  }
  s.start_hour = std::max(first, target_hour - horizon_hours);
  const auto n = static_cast<std::size_t>(target_hour - s.start_hour);
  s.volume.assign(n, 0.0);
  s.senders.assign(n, 0.0);
  s.peak_minute.assign(n, 0.0);
  s.peak_ten_minutes.assign(n, 0.0);
  s.excluded.assign(n, 0);
  for (const hourly_count& h : hours) {
    const std::int64_t i = h.hour_start / hour_seconds - s.start_hour;
    if (i < 0 || i >= static_cast<std::int64_t>(n)) continue;
    const auto at = static_cast<std::size_t>(i);
    s.volume[at] += std::max(h.attempted, h.accepted);
    s.senders[at] += h.distinct_senders;
    s.peak_minute[at] = std::max<double>(s.peak_minute[at], h.peak_minute);
    s.peak_ten_minutes[at] = std::max<double>(s.peak_ten_minutes[at], h.peak_ten_minutes);
    if (h.in_episode) s.excluded[at] = 1;
  }
  s.prefix.assign(n + 1, 0.0);
  s.excluded_prefix.assign(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    s.prefix[i + 1] = s.prefix[i] + s.volume[i];
    s.excluded_prefix[i + 1] = s.excluded_prefix[i] + s.excluded[i];
  }
  return s;
}

struct estimate {
  double hourly = 0.0;
  double spread = 0.0;
  double senders = 0.0;
  double daily = 0.0;
};

class estimator {
 public:
  estimator(const series& s, const baseline_prior& prior, const baseline_settings& config)
      : s_(s), prior_(prior), config_(config) {}

  // The blended estimate for hour index t (relative to the series start), from hours before t.
  estimate at(std::int64_t t) {
    const std::int64_t known = std::min(t, s_.size());
    estimate own = own_estimate(t);
    const double w = config_.cold_start_hours == 0
                         ? 1.0
                         : std::min(1.0, static_cast<double>(known) / config_.cold_start_hours);
    return estimate{
        w * own.hourly + (1 - w) * prior_.hourly, w * own.spread + (1 - w) * prior_.spread,
        w * own.senders + (1 - w) * prior_.senders_hourly, w * own.daily + (1 - w) * prior_.daily};
  }

 private:
  bool valid(std::int64_t i) const {
    return i >= 0 && i < s_.size() && s_.excluded[static_cast<std::size_t>(i)] == 0;
  }

  void sample(const std::vector<double>& values, std::int64_t t, std::int64_t step,
              std::uint32_t count, std::vector<double>& out) const {
    out.clear();
    for (std::uint32_t k = 1; k <= count; ++k) {
      const std::int64_t i = t - step * k;
      if (valid(i)) out.push_back(values[static_cast<std::size_t>(i)]);
    }
  }

  // Weekly and daily medians blended, or the recent median; `pool` gets the samples used.
  double seasonal(const std::vector<double>& values, std::int64_t t, std::vector<double>& pool) {
    sample(values, t, hours_per_week, config_.weeks, weekly_);
    sample(values, t, 24, config_.recent_days, daily_);
    pool.clear();
    if (daily_.size() >= 3) {
      pool.insert(pool.end(), daily_.begin(), daily_.end());
      const double daily = median(daily_);
      if (weekly_.size() >= 2) {
        pool.insert(pool.end(), weekly_.begin(), weekly_.end());
        return 0.5 * median(weekly_) + 0.5 * daily;
      }
      return daily;
    }
    sample(values, t, 1, 24, pool);
    std::vector<double> copy = pool;
    return median(copy);
  }

  estimate own_estimate(std::int64_t t) {
    estimate e;
    e.hourly = seasonal(s_.volume, t, pool_);
    e.spread = mad(pool_, e.hourly, scratch_);
    e.senders = seasonal(s_.senders, t, scratch_);
    // Daily totals of the complete days before t.
    daily_.clear();
    for (std::uint32_t k = 1; k <= config_.recent_days; ++k) {
      const std::int64_t end = std::min(t, s_.size()) - 24 * (k - 1);
      const std::int64_t begin = end - 24;
      if (begin < 0) break;
      const auto first = static_cast<std::size_t>(begin);
      const auto last = static_cast<std::size_t>(end);
      if (s_.excluded_prefix[last] != s_.excluded_prefix[first]) continue;  // a flooded day
      daily_.push_back(s_.prefix[last] - s_.prefix[first]);
    }
    e.daily = daily_.empty() ? 24.0 * e.hourly : median(daily_);
    return e;
  }

  const series& s_;
  const baseline_prior& prior_;
  const baseline_settings& config_;
  std::vector<double> weekly_;
  std::vector<double> daily_;
  std::vector<double> pool_;
  std::vector<double> scratch_;
};

struct bursts {
  double minute = 0.0;
  double ten_minutes = 0.0;
  double hour = 0.0;
  double senders_hour = 0.0;
};

// The largest volume per window over the learnable hours of the last `hours` (model in
// baseline.hpp). An hour's 10-minute peak is at least a sixth of it and its 1-minute peak a
// sixtieth, which is also how history from before the peaks were kept reads.
bursts usual_bursts(const series& s, std::int64_t hours, double ceiling) {
  bursts b;
  for (std::int64_t i = std::max<std::int64_t>(0, s.size() - hours); i < s.size(); ++i) {
    const auto at = static_cast<std::size_t>(i);
    if (s.excluded[at] != 0) continue;
    const double volume = s.volume[at];
    b.minute = std::max({b.minute, s.peak_minute[at], std::ceil(volume / 60.0)});
    b.ten_minutes = std::max({b.ten_minutes, s.peak_ten_minutes[at], std::ceil(volume / 6.0)});
    b.hour = std::max(b.hour, volume);
    b.senders_hour = std::max(b.senders_hour, s.senders[at]);
  }
  b.senders_hour = std::min(b.senders_hour, ceiling);
  b.minute = std::min(b.minute, ceiling);
  b.ten_minutes = std::min(b.ten_minutes, ceiling);
  b.hour = std::min(b.hour, ceiling);
  return b;
}

// At most (1 + rise) x yesterday's value, with a floor so a silent mailbox can still learn.
double capped(double raw, double previous, double floor, double rise) {
  return std::min(raw, std::max(previous, floor) * (1.0 + rise));
}

}  // namespace

baseline_prior compute_prior(std::span<const recipient_history> histories, std::int64_t now_unix,
                             const baseline_settings& config, const baseline_prior& fallback) {
  const std::int64_t target_hour = now_unix / hour_seconds;
  const std::int64_t horizon = std::int64_t{config.weeks} * hours_per_week;
  std::vector<double> means;
  std::vector<double> sender_means;
  for (const recipient_history& history : histories) {
    const series s = densify(history.hours, target_hour, horizon);
    if (s.size() == 0 || s.size() < std::int64_t{config.min_history_hours}) continue;
    double senders = 0.0;
    for (const double x : s.senders) senders += x;
    means.push_back(s.prefix.back() / static_cast<double>(s.size()));
    sender_means.push_back(senders / static_cast<double>(s.size()));
  }
  if (means.size() < config.prior_min_recipients || means.empty()) return fallback;
  const auto quantile = [&](std::vector<double>& v) {
    const double q = std::clamp(config.prior_quantile, 0.0, 1.0);
    const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
  };
  baseline_prior prior;
  prior.hourly = std::max(config.prior_floor_hourly, quantile(means));
  prior.spread = prior.hourly;
  prior.senders_hourly = std::max(config.prior_floor_hourly, quantile(sender_means));
  prior.daily = 24.0 * prior.hourly;
  return prior;
}

baseline compute_baseline(std::span<const hourly_count> hours, std::int64_t now_unix,
                          const baseline_prior& prior, const baseline_settings& config,
                          double ceiling_per_hour) {
  const std::int64_t target_hour = now_unix / hour_seconds;
  const std::int64_t horizon = std::int64_t{config.weeks} * hours_per_week;
  const series s = densify(hours, target_hour, horizon);
  estimator estimate_at(s, prior, config);
  const double rise = std::max(0.0, config.max_rise_per_day);
  const double floor_hourly = std::max(config.prior_floor_hourly, prior.hourly);

  // Walk the same hour of day from the first day with a full history to yesterday, capping
  // each day's rise. The cold-start days before are a blend with the prior and stay uncapped:
  // capping them would hold a mailbox that was busy from its first day at the prior for weeks.
  const std::int64_t target = s.size();
  double hourly = 0.0;
  double daily = 0.0;
  bool first = true;
  for (std::int64_t t = target % 24; t < target; t += 24) {
    if (t < std::int64_t{config.min_history_hours}) continue;
    const estimate e = estimate_at.at(t);
    hourly = first ? e.hourly : capped(e.hourly, hourly, floor_hourly, rise);
    daily = first ? e.daily : capped(e.daily, daily, 24.0 * floor_hourly, rise);
    first = false;
  }

  estimate now;
  for (std::uint32_t ahead = 0; ahead <= config.lookahead_hours; ++ahead) {
    const estimate e = estimate_at.at(target + ahead);
    now.hourly = std::max(now.hourly, e.hourly);
    now.spread = std::max(now.spread, e.spread);
    now.senders = std::max(now.senders, e.senders);
    now.daily = std::max(now.daily, e.daily);
  }

  baseline b;
  b.history_hours = static_cast<std::uint32_t>(target);
  b.hourly = first ? now.hourly : capped(now.hourly, hourly, floor_hourly, rise);
  b.daily = first ? now.daily : capped(now.daily, daily, 24.0 * floor_hourly, rise);
  b.hourly = std::min(b.hourly, ceiling_per_hour);
  b.daily = std::min(b.daily, 24.0 * ceiling_per_hour);
  // Neither spread nor distinct senders may smuggle back what the caps took away.
  b.spread = std::min(now.spread, std::max(b.hourly, prior.spread));
  b.senders_hourly = std::min(now.senders, std::max(b.hourly, prior.senders_hourly));
  const bursts usual = usual_bursts(s, horizon, ceiling_per_hour);
  b.burst_minute = usual.minute;
  b.burst_ten_minutes = usual.ten_minutes;
  b.burst_hour = usual.hour;
  b.burst_senders_hour = usual.senders_hour;
  return b;
}

}  // namespace rcptguard::decision
