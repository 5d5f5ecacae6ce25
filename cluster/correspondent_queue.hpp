// Correspondence this node saw, on its way to the cluster store (README, "Several MX hosts"):
// who wrote to whom, so that during a flood a node passes a known correspondent that only
// another node has seen (the reply to a mail our user sent through the submission host, a
// partner whose mail usually lands on the other MX). Pure: pairs in, rows to publish out.
//
// Each pair is published once per run: the store keeps the earliest first sighting any node
// published, so publishing again changes nothing and is left out while the pair is
// remembered. What is remembered is bounded (keyed 64-bit digests; when full it starts again,
// and pairs are published once more, harmlessly); so is what waits for the next publish
// (beyond it a pair is refused and counted, and published when it is next seen).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "decision/hash.hpp"

namespace rcptguard::cluster {

/// Mail to `recipient` from `sender` (both normalised), first seen here at `minute`.
struct pair_row {
  std::string recipient;
  std::string sender;
  std::uint32_t minute = 0;
};

struct correspondent_queue_stats {
  std::uint64_t queued = 0;        ///< pairs taken for publishing
  std::uint64_t refused_full = 0;  ///< pairs left out: max_pending were waiting
  std::size_t remembered = 0;      ///< pairs published and remembered now
};

class correspondent_queue {
 public:
  correspondent_queue(std::size_t max_pending, std::size_t max_remembered, std::uint64_t seed);

  void add(std::string_view recipient, std::string_view sender, std::uint32_t minute);
  /// The pairs waiting, now counted as published.
  std::vector<pair_row> take();
  /// The publish failed: the pairs wait again (and are no longer counted as published).
  void give_back(std::vector<pair_row>&& rows);
  /// The store may have lost what was published (it came back empty after an outage): every
  /// pair is published again when it is next seen.
  void forget_published();

  correspondent_queue_stats stats() const;

 private:
  std::uint64_t digest(std::string_view recipient, std::string_view sender) const;

  std::size_t max_pending_;
  std::size_t max_remembered_;
  decision::keyed_hash hash_;
  std::unordered_map<std::uint64_t, pair_row> pending_;
  std::unordered_set<std::uint64_t> published_;
  correspondent_queue_stats stats_;
};

}  // namespace rcptguard::cluster
