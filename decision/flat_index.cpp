// Linear probing with backward-shift deletion (no tombstones, so lookups never slow down).
#include "decision/flat_index.hpp"

namespace rcptguard::decision {

std::size_t flat_index::capacity_for(std::size_t expected) {
  std::size_t capacity = 16;
  while (capacity < expected * 2) capacity *= 2;
  return capacity;
}

void flat_index::place(entry e) {
  std::size_t i = e.tag & mask();
  while (entries_[i].value != npos) i = (i + 1) & mask();
  entries_[i] = e;
}

void flat_index::grow() {
  std::vector<entry> old(entries_.size() * 2);
  old.swap(entries_);
  for (const entry& e : old) {
    if (e.value != npos) place(e);
  }
}

void flat_index::insert(std::uint64_t hash, std::uint32_t slot) {
  if ((size_ + 1) * 2 > entries_.size()) grow();
  place(entry{tag_of(hash), slot});
  ++size_;
}

void flat_index::erase(std::uint64_t hash, std::uint32_t slot) {
  const std::uint32_t tag = tag_of(hash);
  std::size_t hole = tag & mask();
  while (entries_[hole].value != npos &&
         !(entries_[hole].tag == tag && entries_[hole].value == slot)) {
    hole = (hole + 1) & mask();
  }
  if (entries_[hole].value == npos) return;
  // Pull later entries of the probe run back into the hole when their home allows it.
  for (std::size_t next = (hole + 1) & mask(); entries_[next].value != npos;
       next = (next + 1) & mask()) {
    const std::size_t home = entries_[next].tag & mask();
    const bool home_between =
        hole <= next ? (hole < home && home <= next) : (hole < home || home <= next);
    if (!home_between) {
      entries_[hole] = entries_[next];
      hole = next;
    }
  }
  entries_[hole] = entry{};
  --size_;
}

void flat_index::clear() {
  for (entry& e : entries_) e = entry{};
  size_ = 0;
}

}  // namespace rcptguard::decision
