// Bounded memories of (recipient, other) pairs, keyed by 64-bit keyed-hash fingerprints:
//  - pair_tracker answers "is this sender/client new for this recipient in the window?", which
//    turns per-recipient bucket counters into distinct counts, and counts one client's RCPTs per
//    10-minute epoch for the single-source share;
//  - correspondent_set remembers who exchanged mail with whom, and since when.
// Both are 4-way set-associative tables that overwrite their stalest entry when a set is full,
// so memory is fixed at construction and pages are only touched when used.
//
// Error: a fingerprint collision (probability about entries / 2^32 per lookup in pair_tracker,
// entries / 2^64 in correspondent_set) makes a new pair look known: a distinct count one too low,
// or an unknown sender treated as a correspondent. An overwritten entry makes a known pair look
// new: a distinct count too high. Neither can be steered, because the fingerprints are keyed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace rcptguard::decision {

namespace detail {
struct free_deleter {
  void operator()(void* p) const { std::free(p); }
};

/// Sets of `ways` entries needed for at least `slots` entries, a power of two so a hash masks.
inline std::size_t set_count(std::size_t slots, std::size_t ways) {
  std::size_t sets = 1;
  while (sets * ways < slots) sets *= 2;
  return sets;
}

/// A zero-filled table from calloc: its pages are only resident once touched, so a large
/// default capacity costs nothing on a quiet server.
template <class Entry>
std::unique_ptr<Entry[], free_deleter> zeroed(std::size_t count) {
  void* memory = std::calloc(count, sizeof(Entry));
  if (memory == nullptr) throw std::bad_alloc{};
  return std::unique_ptr<Entry[], free_deleter>(static_cast<Entry*>(memory));
}
}  // namespace detail

class pair_tracker {
 public:
  /// `slots` is rounded up to a power of two (at least 4).
  explicit pair_tracker(std::size_t slots);

  struct sighting {
    bool new_ten = false;           ///< not counted in the last 10 minutes
    bool new_hour = false;          ///< not counted in this clock hour
    std::uint32_t epoch_count = 0;  ///< RCPTs of this pair in the current 10-minute epoch
  };

  /// Records one RCPT of the pair at `minute` (Unix minutes).
  sighting observe(std::uint64_t fingerprint, std::uint32_t minute);

  std::uint64_t overwrites() const { return overwrites_; }
  std::size_t bytes() const { return sets_ * ways * sizeof(entry); }

 private:
  static constexpr std::size_t ways = 4;
  struct entry {
    std::uint32_t tag;         ///< 0 = empty
    std::uint32_t ten_minute;  ///< minute the pair was last counted for the 10-minute window
    std::uint32_t hour;        ///< clock hour it was last counted in
    std::uint16_t epoch;       ///< low bits of the 10-minute epoch of `count`
    std::uint16_t count;
  };

  std::unique_ptr<entry[], detail::free_deleter> entries_;
  std::size_t sets_ = 0;
  std::uint64_t overwrites_ = 0;
};

class correspondent_set {
 public:
  explicit correspondent_set(std::size_t slots);

  /// Notes mail between the pair at `minute`; keeps the earliest first sighting.
  void observe(std::uint64_t fingerprint, std::uint32_t first_minute, std::uint32_t last_minute);
  /// Minute of the first sighting, or 0 when the pair is unknown.
  std::uint32_t first_seen(std::uint64_t fingerprint) const;

  std::size_t size() const { return size_; }
  std::uint64_t overwrites() const { return overwrites_; }

 private:
  static constexpr std::size_t ways = 4;
  struct entry {
    std::uint64_t fingerprint;  ///< 0 = empty
    std::uint32_t first_minute;
    std::uint32_t last_minute;
  };

  std::unique_ptr<entry[], detail::free_deleter> entries_;
  std::size_t sets_ = 0;
  std::size_t size_ = 0;
  std::uint64_t overwrites_ = 0;
};

}  // namespace rcptguard::decision
