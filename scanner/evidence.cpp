// Grouping of a mailbox's recent records into repeats, hourly growth and near-duplicates.
#include "scanner/evidence.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

namespace rcptguard::scanner {

mailbox_evidence compute_evidence(std::span<const attachment_record> attachments,
                                  std::span<const message_record> messages, time_point now,
                                  const evidence_options& options) {
  mailbox_evidence out;
  const time_point since = now - options.window;

  std::unordered_map<std::string, repeated_attachment> by_hash;
  std::map<std::pair<std::string, std::uint64_t>, std::pair<std::uint32_t, std::set<std::string>>>
      by_name;
  for (const attachment_record& a : attachments) {
    // Times after `now` are clock skew between the delivering host and us; they still count.
    if (a.stored_at < since) continue;
    repeated_attachment& r = by_hash[a.sha256];
    if (r.count == 0) {
      r.sha256 = a.sha256;
      r.size = a.size;
      r.first_stored = a.stored_at;
      r.last_stored = a.stored_at;
    }
    ++r.count;
    r.first_stored = std::min(r.first_stored, a.stored_at);
    r.last_stored = std::max(r.last_stored, a.stored_at);
    if (!a.filename.empty() && r.filenames.size() < options.max_filename_examples &&
        std::find(r.filenames.begin(), r.filenames.end(), a.filename) == r.filenames.end()) {
      r.filenames.push_back(a.filename);
    }
    if (!a.filename.empty()) {
      auto& [copies, hashes] = by_name[{a.filename, a.size}];
      ++copies;
      hashes.insert(a.sha256);
    }
  }
  for (auto& [hash, r] : by_hash) {
    if (r.count >= options.min_repeats) out.repeats.push_back(std::move(r));
  }
  std::sort(out.repeats.begin(), out.repeats.end(), [](const auto& a, const auto& b) {
    return std::tie(b.count, a.sha256) < std::tie(a.count, b.sha256);
  });
  for (const auto& [key, value] : by_name) {
    if (value.second.size() < 2) continue;
    out.near_duplicates.push_back(near_duplicate{key.first, key.second, value.first,
                                                 static_cast<std::uint32_t>(value.second.size())});
  }

  const std::int64_t now_hour = to_unix_seconds(now) / 3600 * 3600;
  const std::int64_t first_hour =
      now_hour - (static_cast<std::int64_t>(options.growth_hours) - 1) * 3600;
  std::map<std::int64_t, hourly_growth> hours;
  for (const message_record& m : messages) {
    const std::int64_t hour = to_unix_seconds(m.stored_at) / 3600 * 3600;
    if (hour < first_hour) continue;
    hourly_growth& g = hours[hour];
    g.hour = from_unix_seconds(hour);
    ++g.messages;
    g.bytes += m.bytes;
  }
  for (auto& [hour, g] : hours) out.growth.push_back(g);
  return out;
}

}  // namespace rcptguard::scanner
