// Scores, reasons and explanations (model in signals.hpp).
#include "decision/signals.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

namespace rcptguard::decision {

namespace {

constexpr double max_volume_score = 4.0;

const window_thresholds& thresholds_of(const thresholds& limits, window w) {
  switch (w) {
    case window::minute:
      return limits.minute;
    case window::ten_minutes:
      return limits.ten_minutes;
    case window::hour:
      return limits.hour;
    case window::day:
      return limits.day;
  }
  return limits.ten_minutes;
}

std::size_t index(window w) {
  return static_cast<std::size_t>(w);
}
std::size_t index(amplifier a) {
  return static_cast<std::size_t>(a);
}

double volume_score(double observed, double warn_point, double defer_point) {
  if (observed < warn_point) return observed / warn_point;
  return std::min(max_volume_score, 1.0 + (observed - warn_point) / (defer_point - warn_point));
}

std::string_view amplifier_name(amplifier a) {
  switch (a) {
    case amplifier::sender_diversity:
      return "sender_diversity";
    case amplifier::client_diversity:
      return "client_diversity";
    case amplifier::single_client:
      return "single_client";
    case amplifier::concentration:
      return "concentration";
    case amplifier::spool_evidence:
      return "spool_evidence";
    case amplifier::connection_rate:
      return "connection_rate";
  }
  return "?";
}

void append_percent(std::string& out, double share) {
  append_number(out, std::round(share * 100.0));
  out.push_back('%');
}

// A recipient whose storms come from many senders (tickets, newsletter copies) has that as its
// usual burst of senders: only burst_warn_factor times as many is diverse for it.
bool sender_diverse(const observation& seen, const thresholds& limits) {
  const double floor = std::max<double>(limits.sender_diversity_floor,
                                        limits.burst_warn_factor * seen.usual_senders_burst);
  const double factor = limits.sender_diversity_factor;
  return seen.senders_ten >= std::max(floor, factor * seen.expected_senders_ten) ||
         seen.senders_hour >= std::max(floor, factor * seen.expected_senders_hour);
}

}  // namespace

void append_number(std::string& out, double value) {
  char buf[32];
  // A quiet mailbox's per-minute baseline is a small fraction; "baseline 0" would read as "never
  // gets mail", so tiny values keep two significant digits.
  if (value > 0.0 && value < 0.05) {
    const auto tiny = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::general, 2);
    out.append(buf, tiny.ptr);
    return;
  }
  const double shown = value < 10.0 ? std::round(value * 10.0) / 10.0 : std::round(value);
  const auto result =
      (shown == std::floor(shown))
          ? std::to_chars(buf, buf + sizeof buf, static_cast<long long>(shown))
          : std::to_chars(buf, buf + sizeof buf, shown, std::chars_format::fixed, 1);
  out.append(buf, result.ptr);
}

assessment assess(const observation& seen, const thresholds& limits) {
  assessment judged;
  for (const window w : all_windows) {
    const window_thresholds& t = thresholds_of(limits, w);
    const std::size_t i = index(w);
    const double burst = seen.usual_burst[i];
    const double warn =
        std::max({1.0, static_cast<double>(t.warn_floor), t.warn_factor * seen.expected[i],
                  limits.burst_warn_factor * burst});
    const double defer =
        std::max({warn + 1.0, static_cast<double>(t.defer_floor), t.defer_factor * seen.expected[i],
                  limits.burst_defer_factor * burst});
    judged.warn_point[i] = warn;
    judged.defer_point[i] = defer;
    const double s =
        w == window::day && !seen.day_judged ? 0.0 : volume_score(seen.volume[i], warn, defer);
    judged.window_score[i] = s;
    if (s > judged.volume_score) {
      judged.volume_score = s;
      judged.strongest = w;
    }
  }
  judged.score = judged.volume_score;
  // The amplifiers describe the last 10 minutes or the last hour, so only those windows' volume
  // opens the gate: a day that is half-way to its warn point (an archive's newsletter Monday) is
  // no reason to weigh this hour's senders.
  if (score_up_to(judged, window::hour, limits) < limits.amplifier_gate) return judged;

  auto fire = [&](amplifier a, bool fired, double weight) {
    if (!fired) return;
    judged.weight[index(a)] = weight;
    judged.amplifier_weight += weight;
    judged.score += weight;
  };
  fire(amplifier::sender_diversity, sender_diverse(seen, limits), limits.sender_diversity_weight);
  fire(amplifier::client_diversity, seen.clients_ten >= limits.client_diversity_floor,
       limits.client_diversity_weight);
  fire(amplifier::single_client,
       seen.top_client_sample >= limits.single_client_min_messages && seen.top_client_sample > 0 &&
           seen.top_client_share >= limits.single_client_share,
       limits.single_client_weight);
  fire(amplifier::concentration,
       seen.total_ten >= limits.concentration_min_total && seen.total_ten > 0 &&
           seen.volume[index(window::ten_minutes)] / seen.total_ten >= limits.concentration_share,
       limits.concentration_weight);
  fire(amplifier::spool_evidence,
       seen.evidence_repeats > 0 && seen.evidence_repeats >= limits.evidence_min_repeats,
       limits.evidence_weight);
  fire(amplifier::connection_rate,
       seen.client_connections > 0 &&
           seen.client_connections >= limits.connection_rate_min_connections,
       limits.connection_rate_weight);
  return judged;
}

double score_up_to(const assessment& judged, window longest, const thresholds& limits) {
  double volume = 0.0;
  for (std::size_t i = 0; i <= index(longest); ++i)
    volume = std::max(volume, judged.window_score[i]);
  return volume >= limits.amplifier_gate ? volume + judged.amplifier_weight : volume;
}

verdict_level level_for(double score, const thresholds& limits) {
  if (score >= limits.defer_score) return verdict_level::defer;
  if (score >= limits.warn_score) return verdict_level::warn;
  return verdict_level::dunno;
}

void explain(const observation& seen, const assessment& judged, std::vector<reason>& out) {
  const std::size_t w = index(judged.strongest);
  reason volume;
  volume.name = "volume_";
  volume.name.append(window_name(judged.strongest));
  volume.weight = judged.volume_score;
  volume.observed = seen.volume[w];
  volume.baseline = seen.expected[w];
  append_number(volume.detail, seen.volume[w]);
  volume.detail.append(" msgs/").append(window_name(judged.strongest)).append(", baseline ");
  append_number(volume.detail, seen.expected[w]);
  if (seen.usual_burst[w] > 0.0) {
    volume.detail.append(", usual burst ");
    append_number(volume.detail, seen.usual_burst[w]);
  }
  volume.detail.append(", warn at ");
  append_number(volume.detail, judged.warn_point[w]);
  volume.detail.append(", defer at ");
  append_number(volume.detail, judged.defer_point[w]);
  out.push_back(std::move(volume));

  for (std::size_t i = 0; i < amplifier_count; ++i) {
    if (judged.weight[i] <= 0.0) continue;
    const auto a = static_cast<amplifier>(i);
    reason r;
    r.name = amplifier_name(a);
    r.weight = judged.weight[i];
    switch (a) {
      case amplifier::sender_diversity:
        r.observed = seen.senders_ten;
        r.baseline = seen.expected_senders_ten;
        append_number(r.detail, seen.senders_ten);
        r.detail.append(" senders/10m, ");
        append_number(r.detail, seen.senders_hour);
        r.detail.append(" senders/1h, baseline ");
        append_number(r.detail, seen.expected_senders_hour);
        r.detail.append("/1h");
        break;
      case amplifier::client_diversity:
        r.observed = seen.clients_ten;
        append_number(r.detail, seen.clients_ten);
        r.detail.append(" clients/10m");
        break;
      case amplifier::single_client:
        r.observed = seen.top_client_share;
        r.baseline = seen.top_client_sample;
        append_percent(r.detail, seen.top_client_share);
        r.detail.append(" of ");
        append_number(r.detail, seen.top_client_sample);
        r.detail.append(" msgs from one client");
        break;
      case amplifier::concentration: {
        const double share = seen.volume[index(window::ten_minutes)] / seen.total_ten;
        r.observed = share;
        r.baseline = seen.total_ten;
        append_percent(r.detail, share);
        r.detail.append(" of all ");
        append_number(r.detail, seen.total_ten);
        r.detail.append(" inbound msgs/10m");
        break;
      }
      case amplifier::spool_evidence:
        r.observed = seen.evidence_repeats;
        append_number(r.detail, seen.evidence_repeats);
        r.detail.append(" identical attachments, sha256 ").append(seen.evidence_sha256);
        break;
      case amplifier::connection_rate:
        r.observed = seen.client_connections;
        append_number(r.detail, seen.client_connections);
        r.detail.append(" connections/10m from one client for this recipient");
        break;
    }
    out.push_back(std::move(r));
  }
}

void summarise(std::string_view recipient, const observation& seen, const assessment& judged,
               std::string& out) {
  const std::size_t w = index(judged.strongest);
  out.append("rcptguard: ").append(recipient).push_back(' ');
  append_number(out, seen.volume[w]);
  out.append(" msgs/").append(window_name(judged.strongest)).append(", baseline ");
  append_number(out, seen.expected[w]);
  out.append(", ");
  const bool long_window = judged.strongest == window::hour || judged.strongest == window::day;
  append_number(out, long_window ? seen.senders_hour : seen.senders_ten);
  out.append(" senders");
  if (judged.weight[index(amplifier::single_client)] > 0.0) {
    out.append(", ");
    append_percent(out, seen.top_client_share);
    out.append(" from one client");
  }
  if (judged.weight[index(amplifier::connection_rate)] > 0.0) {
    out.append(", ");
    append_number(out, seen.client_connections);
    out.append(" connections from one client");
  }
  if (judged.weight[index(amplifier::spool_evidence)] > 0.0) {
    out.append(", ");
    append_number(out, seen.evidence_repeats);
    out.append(" identical attachments");
  }
}

}  // namespace rcptguard::decision
