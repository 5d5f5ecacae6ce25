// An open-addressing index from a 64-bit keyed hash to a slot number, 8 bytes per entry and no
// allocation except when it grows. The slots (and their full keys or fingerprints) live with the
// caller, which confirms each candidate, so two keys sharing the 32 bits kept here still work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rcptguard::decision {

class flat_index {
 public:
  static constexpr std::uint32_t npos = 0xffffffffU;

  explicit flat_index(std::size_t expected = 16) { entries_.resize(capacity_for(expected)); }

  /// The slot whose hash matches and for which `is_match(slot)` holds, or npos.
  template <class Match>
  std::uint32_t find(std::uint64_t hash, Match&& is_match) const {
    const std::uint32_t tag = tag_of(hash);
    for (std::size_t i = tag & mask(); entries_[i].value != npos; i = (i + 1) & mask()) {
      if (entries_[i].tag == tag && is_match(entries_[i].value)) return entries_[i].value;
    }
    return npos;
  }

  /// Adds hash -> slot; the caller knows it is absent. Grows at half load, so probes stay short.
  void insert(std::uint64_t hash, std::uint32_t slot);

  /// Removes the entry hash -> slot if present.
  void erase(std::uint64_t hash, std::uint32_t slot);

  std::size_t size() const { return size_; }
  std::size_t bytes() const { return entries_.size() * sizeof(entry); }
  void clear();

 private:
  struct entry {
    std::uint32_t tag = 0;
    std::uint32_t value = npos;
  };

  static std::uint32_t tag_of(std::uint64_t hash) {
    return static_cast<std::uint32_t>(hash ^ (hash >> 32));
  }
  static std::size_t capacity_for(std::size_t expected);
  std::size_t mask() const { return entries_.size() - 1; }
  void place(entry e);
  void grow();

  std::vector<entry> entries_;
  std::size_t size_ = 0;
};

}  // namespace rcptguard::decision
