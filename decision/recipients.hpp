// The bounded table of tracked recipients: per key its windows, its baseline and a few flags.
// Keys are identified by their 64-bit keyed hash alone (no key bytes kept): a collision needs
// about 2^32 keys for even odds and cannot be steered without the secret key, and dropping the
// bytes is what keeps a tracked key within the 256-byte budget:
//   sizeof(recipient_state) = 224 (checked in tests) + 8-byte index entry at <= 1/2 load (16)
//   + chunked storage, no per-key allocation = about 240 bytes per key.
// When full, the coldest of a few randomly sampled keys is evicted (approximate LRU, as Redis
// does): O(1), and an attacker cannot predict which key goes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "decision/flat_index.hpp"
#include "decision/windows.hpp"

namespace rcptguard::decision {

/// A recipient's baseline as the engine keeps it: 24 bytes.
struct compact_baseline {
  float hourly = 0.0F;
  float spread = 0.0F;
  float senders_hourly = 0.0F;
  float daily = 0.0F;
  /// Usual burst per window (see baseline::burst_minute), whole messages saturating at 65535:
  /// far above any window's defer point.
  std::uint16_t burst_minute = 0;
  std::uint16_t burst_ten_minutes = 0;
  std::uint16_t burst_hour = 0;
  std::uint16_t burst_senders_hour = 0;
};

struct recipient_state {
  enum flag : std::uint8_t {
    allowlisted = 1,  ///< matched allow_recipients when it was inserted (or re-classified)
    learned = 2,      ///< has a baseline from history (otherwise the prior applies)
    flagged = 4,      ///< has an open episode
    evidence = 8,     ///< has spool evidence
    /// class_id and allowlisted predate a reconfigure() that changed class membership; they
    /// are re-evaluated when the recipient is next seen (its address is not kept).
    reclassify = 16,
  };

  std::uint64_t key_hash = 0;
  std::uint32_t serial = 0;   ///< 0 = free slot; new for every key, so stale pairs never match
  std::uint8_t class_id = 0;  ///< index into the engine's threshold sets (0 = defaults)
  std::uint8_t flags = 0;
  std::uint16_t history_hours = 0;  ///< saturating, for explanations
  compact_baseline baseline;
  /// RCPTs of the last burst episode, taken off the 24-hour window until `residue_until`
  /// (Unix minutes): that window may open its own slow-flood episode, but the residue of a
  /// burst that already ended must not reopen one for the rest of the day.
  std::uint16_t residue = 0;  ///< saturating
  std::uint32_t residue_until = 0;
  recipient_windows windows;

  bool has(flag f) const { return (flags & f) != 0; }
  void set(flag f, bool on) { flags = static_cast<std::uint8_t>(on ? (flags | f) : (flags & ~f)); }
};

class recipient_table {
 public:
  static constexpr std::uint32_t npos = flat_index::npos;

  recipient_table(std::size_t max_entries, std::uint64_t seed);

  std::uint32_t find(std::uint64_t key_hash) const;
  bool full() const { return size_ >= max_entries_; }
  /// The slot to evict when full: the least recently counted of a few random samples,
  /// preferring keys without an open episode.
  std::uint32_t pick_victim();
  /// A fresh state for key_hash; the caller checked absence and made room.
  std::uint32_t insert(std::uint64_t key_hash);
  void erase(std::uint32_t slot);
  /// A new serial for the key in `slot`, so fingerprints made with the old one (its distinct
  /// senders and clients) no longer match: an operator's reset starts them from zero.
  void renew_serial(std::uint32_t slot);

  recipient_state& at(std::uint32_t slot) { return chunks_[slot / chunk_size][slot % chunk_size]; }
  const recipient_state& at(std::uint32_t slot) const {
    return chunks_[slot / chunk_size][slot % chunk_size];
  }
  /// Slots ever used: iterate [0, slot_limit()) and skip those with serial 0.
  std::uint32_t slot_limit() const { return high_water_; }
  std::size_t size() const { return size_; }
  std::uint64_t evictions() const { return evictions_; }
  void count_eviction() { ++evictions_; }
  std::size_t index_bytes() const { return index_.bytes(); }

 private:
  static constexpr std::uint32_t chunk_size = 4096;
  static constexpr int eviction_samples = 8;

  std::size_t max_entries_;
  std::uint64_t rng_;
  std::vector<std::unique_ptr<recipient_state[]>> chunks_;
  std::vector<std::uint32_t> free_;
  flat_index index_;
  std::uint32_t high_water_ = 0;
  std::uint32_t next_serial_ = 1;
  std::size_t size_ = 0;
  std::uint64_t evictions_ = 0;
};

}  // namespace rcptguard::decision
