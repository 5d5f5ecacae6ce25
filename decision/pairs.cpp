// The two pair tables (see pairs.hpp). calloc, not new[]: zero pages come from the kernel
// untouched, so an idle table costs address space, not resident memory.
#include "decision/pairs.hpp"

namespace rcptguard::decision {

using detail::set_count;
using detail::zeroed;

pair_tracker::pair_tracker(std::size_t slots)
    : entries_(zeroed<entry>(set_count(slots, ways) * ways)), sets_(set_count(slots, ways)) {}

pair_tracker::sighting pair_tracker::observe(std::uint64_t fingerprint, std::uint32_t minute) {
  const auto tag = static_cast<std::uint32_t>(fingerprint >> 32) | 1U;
  entry* set = &entries_[(fingerprint & (sets_ - 1)) * ways];
  const std::uint32_t hour = minute / 60;
  const auto epoch = static_cast<std::uint16_t>(minute / 10);
  entry* victim = set;
  for (std::size_t i = 0; i < ways; ++i) {
    entry& e = set[i];
    if (e.tag == tag) {
      sighting seen;
      seen.new_ten = minute >= e.ten_minute + 10;
      seen.new_hour = hour != e.hour;
      if (seen.new_ten) e.ten_minute = minute;
      if (seen.new_hour) e.hour = hour;
      if (e.epoch != epoch) {
        e.epoch = epoch;
        e.count = 0;
      }
      if (e.count < 0xffff) ++e.count;
      seen.epoch_count = e.count;
      return seen;
    }
    if (victim->tag != 0 && (e.tag == 0 || e.ten_minute < victim->ten_minute)) victim = &e;
  }
  if (victim->tag != 0) ++overwrites_;
  *victim = entry{tag, minute, hour, epoch, 1};
  return sighting{true, true, 1};
}

correspondent_set::correspondent_set(std::size_t slots)
    : entries_(zeroed<entry>(set_count(slots, ways) * ways)), sets_(set_count(slots, ways)) {}

void correspondent_set::observe(std::uint64_t fingerprint, std::uint32_t first_minute,
                                std::uint32_t last_minute) {
  fingerprint |= 1;
  entry* set = &entries_[(fingerprint >> 1 & (sets_ - 1)) * ways];
  entry* victim = set;
  for (std::size_t i = 0; i < ways; ++i) {
    entry& e = set[i];
    if (e.fingerprint == fingerprint) {
      if (first_minute < e.first_minute) e.first_minute = first_minute;
      if (last_minute > e.last_minute) e.last_minute = last_minute;
      return;
    }
    if (victim->fingerprint != 0 && (e.fingerprint == 0 || e.last_minute < victim->last_minute)) {
      victim = &e;
    }
  }
  if (victim->fingerprint != 0) {
    ++overwrites_;
  } else {
    ++size_;
  }
  *victim = entry{fingerprint, first_minute, last_minute};
}

std::uint32_t correspondent_set::first_seen(std::uint64_t fingerprint) const {
  fingerprint |= 1;
  const entry* set = &entries_[(fingerprint >> 1 & (sets_ - 1)) * ways];
  for (std::size_t i = 0; i < ways; ++i) {
    if (set[i].fingerprint == fingerprint) return set[i].first_minute;
  }
  return 0;
}

}  // namespace rcptguard::decision
