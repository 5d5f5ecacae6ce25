// Keyed hashing for attacker-chosen keys (addresses, instances, client networks): SipHash-2-4
// under a secret per-process key, so nobody can precompute collisions against our tables.
#pragma once

#include <cstdint>
#include <string_view>

namespace rcptguard::decision {

class keyed_hash {
 public:
  /// Expands a 64-bit seed into the 128-bit SipHash key.
  explicit keyed_hash(std::uint64_t seed);
  keyed_hash(std::uint64_t k0, std::uint64_t k1) : k0_(k0), k1_(k1) {}

  std::uint64_t operator()(std::string_view bytes) const;

 private:
  std::uint64_t k0_;
  std::uint64_t k1_;
};

/// Combines an already keyed hash with another value; order matters (mix(a, b) != mix(b, a)).
/// Not a keyed hash itself: it is only as unpredictable as its keyed input.
std::uint64_t mix(std::uint64_t keyed, std::uint64_t other);

/// One step of splitmix64: seeds, sampling and mixing without any global state.
std::uint64_t splitmix64(std::uint64_t& state);

}  // namespace rcptguard::decision
