// The scanner's evidence in the decision engine's terms: the daemon, which links both, joins them
// here, so neither scanner/ nor decision/ knows the other.
#pragma once

#include <chrono>
#include <optional>

#include "decision/engine.hpp"
#include "scanner/evidence.hpp"

namespace rcptguard::daemon {

/// Hex digits of the hash quoted in the engine's reason text ("sha256 4f722330b79e").
inline constexpr std::size_t evidence_hash_digits = 12;

/// One repeated attachment as decision::spool_evidence, found at `scanned_at`.
inline decision::spool_evidence to_spool_evidence(const scanner::repeated_attachment& repeat,
                                                  time_point scanned_at) {
  decision::spool_evidence out;
  out.repeats = repeat.count;
  out.sha256_prefix = repeat.sha256.substr(0, evidence_hash_digits);
  out.window =
      std::chrono::duration_cast<std::chrono::seconds>(repeat.last_stored - repeat.first_stored);
  out.at = scanned_at;
  return out;
}

/// The strongest evidence of a mailbox (the most-copied attachment), if it has any.
inline std::optional<decision::spool_evidence> strongest_evidence(
    const scanner::mailbox_evidence& evidence, time_point scanned_at) {
  if (evidence.repeats.empty()) return std::nullopt;
  return to_spool_evidence(evidence.repeats.front(), scanned_at);
}

}  // namespace rcptguard::daemon
