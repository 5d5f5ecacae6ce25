// The operator's allow-list (see operator_allowlist.hpp).
#include "decision/operator_allowlist.hpp"

#include <algorithm>

namespace rcptguard::decision {

operator_allowlist::add_result operator_allowlist::add(operator_allow_entry entry) {
  entry_map& map = of(entry.kind);
  const auto found = map.find(std::string_view{entry.address});
  if (found == map.end() && size() >= max_entries) return add_result::full;
  if (!entry.for_good()) next_expiry_ = std::min(next_expiry_, entry.until);
  if (found != map.end()) {
    found->second = std::move(entry);
    return add_result::replaced;
  }
  std::string key = entry.address;
  map.emplace(std::move(key), std::move(entry));
  return add_result::added;
}

bool operator_allowlist::remove(std::string_view address, allow_kind kind) {
  entry_map& map = of(kind);
  const auto found = map.find(address);
  if (found == map.end()) return false;
  map.erase(found);
  return true;
}

bool operator_allowlist::allows(std::string_view address, allow_kind kind) const {
  const entry_map& map = of(kind);
  return !map.empty() && map.find(address) != map.end();
}

void operator_allowlist::expire(time_point now, std::vector<operator_allow_entry>& expired) {
  if (now < next_expiry_) return;
  for (entry_map* map : {&recipients_, &senders_}) {
    for (auto it = map->begin(); it != map->end();) {
      if (!it->second.for_good() && it->second.until <= now) {
        expired.push_back(std::move(it->second));
        it = map->erase(it);
      } else {
        ++it;
      }
    }
  }
  find_next_expiry();
}

void operator_allowlist::find_next_expiry() {
  next_expiry_ = time_point::max();
  for (const entry_map* map : {&recipients_, &senders_}) {
    for (const auto& [address, entry] : *map) {
      if (!entry.for_good()) next_expiry_ = std::min(next_expiry_, entry.until);
    }
  }
}

std::vector<operator_allow_entry> operator_allowlist::entries() const {
  std::vector<operator_allow_entry> out;
  out.reserve(size());
  for (const entry_map* map : {&recipients_, &senders_}) {
    const std::size_t first = out.size();
    for (const auto& [address, entry] : *map) out.push_back(entry);
    std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
              [](const auto& a, const auto& b) { return a.address < b.address; });
  }
  return out;
}

}  // namespace rcptguard::decision
