// The report's queries over several nodes' databases (see report_nodes.hpp).
#include "cli/report_nodes.hpp"

#include <algorithm>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

namespace rcptguard::cli {
namespace {

/// A map's values in key order (hours, oldest first).
template <class Map>
std::vector<typename Map::mapped_type> values_of(const Map& map) {
  std::vector<typename Map::mapped_type> values;
  values.reserve(map.size());
  for (const auto& entry : map) values.push_back(entry.second);
  return values;
}

std::uint32_t clamped_sum(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::uint32_t>(
      std::min<std::uint64_t>(std::uint64_t{a} + b, std::numeric_limits<std::uint32_t>::max()));
}

report::episode episode_of(store::report_episode_row& row, const std::string& node) {
  report::episode e;
  e.recipient = std::move(row.recipient);
  e.nodes = {node};
  e.flood = std::move(row.cluster_id);
  e.started = row.started;
  e.ended = row.ended_at.value_or(row.updated);
  e.open = !row.ended_at.has_value();
  e.peak_level = std::move(row.peak_level);
  e.peak_score = row.peak_score;
  e.peak_window = std::move(row.peak_window);
  e.peak_observed = row.peak_observed;
  e.peak_baseline = row.peak_baseline;
  e.summary = std::move(row.summary);
  e.verdicts = row.verdicts;
  return e;
}

/// Adds another node's episode of the same flood to `flood`.
void join(report::episode& flood, report::episode&& other) {
  for (std::string& node : other.nodes) {
    if (std::find(flood.nodes.begin(), flood.nodes.end(), node) == flood.nodes.end()) {
      flood.nodes.push_back(std::move(node));
    }
  }
  flood.started = std::min(flood.started, other.started);
  flood.ended = std::max(flood.ended, other.ended);
  flood.open = flood.open || other.open;
  flood.verdicts += other.verdicts;
  // The peak's level, window, numbers and summary stay together: they describe one moment.
  if (other.peak_score > flood.peak_score) {
    flood.peak_level = std::move(other.peak_level);
    flood.peak_score = other.peak_score;
    flood.peak_window = std::move(other.peak_window);
    flood.peak_observed = other.peak_observed;
    flood.peak_baseline = other.peak_baseline;
    flood.summary = std::move(other.summary);
  }
}

}  // namespace

std::vector<report::episode> cluster_episodes(std::span<node_database> dbs, std::int64_t from,
                                              std::int64_t until) {
  // One row per flood rather than one per node: the overview counts (episodes, per day, per
  // recipient) then count floods, not how many MX hosts a flood was spread over, and the row
  // still names the nodes. An analyst who wants each node's own episode has `review alerts`
  // with NODE and FLOOD columns. One database keeps its episodes as stored.
  std::vector<report::episode> episodes;
  std::map<std::pair<std::string, std::string>, std::size_t> flood_at;  // recipient, cluster_id
  for (node_database& d : dbs) {
    for (store::report_episode_row& row : store::report_episodes(d.db, from, until)) {
      report::episode e = episode_of(row, d.node);
      if (dbs.size() == 1 || e.flood.empty()) {
        episodes.push_back(std::move(e));
        continue;
      }
      const auto [at, added] = flood_at.try_emplace({e.recipient, e.flood}, episodes.size());
      if (added) {
        episodes.push_back(std::move(e));
      } else {
        join(episodes[at->second], std::move(e));
      }
    }
  }
  std::stable_sort(
      episodes.begin(), episodes.end(),
      [](const report::episode& a, const report::episode& b) { return a.started < b.started; });
  return episodes;
}

std::map<std::int64_t, std::int64_t> cluster_flagged_per_day(std::span<node_database> dbs,
                                                             std::int64_t from,
                                                             std::int64_t until) {
  std::map<std::int64_t, std::int64_t> per_day;
  for (node_database& d : dbs) {
    for (const auto& [day, requests] : store::report_flagged_per_day(d.db, from, until)) {
      per_day[day] += requests;
    }
  }
  return per_day;
}

std::int64_t cluster_messages(std::span<node_database> dbs, std::int64_t from, std::int64_t until) {
  std::int64_t messages = 0;
  for (node_database& d : dbs) messages += store::report_messages(d.db, from, until);
  return messages;
}

std::int64_t cluster_recipients(std::span<node_database> dbs, std::int64_t from,
                                std::int64_t until) {
  std::set<std::string> recipients;
  for (node_database& d : dbs) {
    for (std::string& r : store::report_recipients(d.db, from, until)) {
      recipients.insert(std::move(r));
    }
  }
  return static_cast<std::int64_t>(recipients.size());
}

std::vector<std::string> cluster_busiest(std::span<node_database> dbs, std::int64_t from,
                                         std::int64_t until, bool by_peak_hour, std::size_t limit) {
  std::vector<std::string> busiest;
  for (node_database& d : dbs) {
    for (std::string& r : store::report_busiest(d.db, from, until, by_peak_hour, limit)) {
      busiest.push_back(std::move(r));
    }
  }
  return busiest;
}

std::vector<decision::hourly_count> cluster_history(std::span<node_database> dbs,
                                                    const std::string& recipient, std::int64_t from,
                                                    std::int64_t until) {
  std::map<std::int64_t, decision::hourly_count> hours;
  for (node_database& d : dbs) {
    for (const decision::hourly_count& h : store::report_history(d.db, recipient, from, until)) {
      const auto [at, added] = hours.try_emplace(h.hour_start, h);
      if (added) continue;
      decision::hourly_count& sum = at->second;
      sum.accepted = clamped_sum(sum.accepted, h.accepted);
      sum.attempted = clamped_sum(sum.attempted, h.attempted);
      sum.distinct_senders = std::max(sum.distinct_senders, h.distinct_senders);
      sum.peak_minute = std::max(sum.peak_minute, h.peak_minute);
      sum.peak_ten_minutes = std::max(sum.peak_ten_minutes, h.peak_ten_minutes);
      sum.in_episode = sum.in_episode || h.in_episode;
    }
  }
  return values_of(hours);
}

std::vector<store::report_flagged_hour> cluster_flagged_hours(std::span<node_database> dbs,
                                                              const std::string& recipient,
                                                              std::int64_t from,
                                                              std::int64_t until) {
  std::map<std::int64_t, store::report_flagged_hour> hours;
  for (node_database& d : dbs) {
    for (const store::report_flagged_hour& f :
         store::report_flagged_hours(d.db, recipient, from, until)) {
      store::report_flagged_hour& sum =
          hours.try_emplace(f.hour_start, store::report_flagged_hour{f.hour_start}).first->second;
      sum.warn += f.warn;
      sum.defer += f.defer;
      sum.flag += f.flag;
    }
  }
  return values_of(hours);
}

std::vector<report::explanation> cluster_explanations(std::span<node_database> dbs,
                                                      const std::string& recipient,
                                                      std::int64_t from, std::int64_t until,
                                                      std::size_t limit) {
  // Each node's list is its first `limit`, so the first `limit` of them all are among them.
  std::vector<report::explanation> explanations;
  for (node_database& d : dbs) {
    for (store::report_explanation_row& row :
         store::report_explanations(d.db, recipient, from, until, limit)) {
      report::explanation x;
      x.at = row.at;
      x.node = d.node;
      x.level = std::move(row.level);
      x.monitor_only = row.monitor_only;
      x.score = row.score;
      x.action_text = std::move(row.action_text);
      x.sender = std::move(row.sender);
      x.client = std::move(row.client);
      for (store::report_reason_row& r : row.reasons) {
        x.reasons.push_back(
            {std::move(r.name), r.weight, r.observed, r.baseline, std::move(r.detail)});
      }
      explanations.push_back(std::move(x));
    }
  }
  std::stable_sort(
      explanations.begin(), explanations.end(),
      [](const report::explanation& a, const report::explanation& b) { return a.at < b.at; });
  if (explanations.size() > limit) explanations.resize(limit);
  return explanations;
}

std::int64_t cluster_explanation_count(std::span<node_database> dbs, const std::string& recipient,
                                       std::int64_t from, std::int64_t until) {
  std::int64_t count = 0;
  for (node_database& d : dbs) {
    count += store::report_explanation_count(d.db, recipient, from, until);
  }
  return count;
}

std::vector<report::party_count> cluster_top_parties(std::span<node_database> dbs,
                                                     const std::string& recipient,
                                                     std::int64_t from, std::int64_t until,
                                                     bool clients, std::size_t limit) {
  // A party's sum is exact only over every node's full list: one just below the cut on each
  // node may lead the cluster.
  const std::size_t per_node = dbs.size() == 1 ? limit : std::numeric_limits<std::size_t>::max();
  std::map<std::string, std::int64_t> requests;
  for (node_database& d : dbs) {
    for (store::report_party_row& p :
         store::report_top_parties(d.db, recipient, from, until, clients, per_node)) {
      requests[std::move(p.text)] += p.requests;
    }
  }
  std::vector<report::party_count> parties;
  parties.reserve(requests.size());
  for (const auto& [text, n] : requests) parties.push_back({text, n});
  // As the query orders them: the most requests first, then by text.
  std::stable_sort(parties.begin(), parties.end(),
                   [](const report::party_count& a, const report::party_count& b) {
                     return a.requests > b.requests;
                   });
  if (parties.size() > limit) parties.resize(limit);
  return parties;
}

std::vector<report::attachment> cluster_evidence(std::span<node_database> dbs,
                                                 const std::string& recipient, std::int64_t from,
                                                 std::int64_t until, std::size_t limit) {
  std::vector<report::attachment> attachments;
  for (node_database& d : dbs) {
    for (store::report_evidence_row& e :
         store::report_evidence(d.db, recipient, from, until, limit)) {
      attachments.push_back({std::move(e.sha256), std::move(e.filenames), e.repeats, e.size,
                             e.window_start, e.window_end, std::move(e.mailbox)});
    }
  }
  std::stable_sort(attachments.begin(), attachments.end(),
                   [](const report::attachment& a, const report::attachment& b) {
                     return std::tie(b.repeats, a.first_stored) <
                            std::tie(a.repeats, b.first_stored);
                   });
  if (attachments.size() > limit) attachments.resize(limit);
  return attachments;
}

std::int64_t cluster_correspondents(std::span<node_database> dbs, const std::string& recipient) {
  std::int64_t most = 0;
  for (node_database& d : dbs) {
    most = std::max(most, store::report_correspondents(d.db, recipient));
  }
  return most;
}

}  // namespace rcptguard::cli
