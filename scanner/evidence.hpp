// Evidence from a mailbox's recent records: the same attachment stored again and again, how
// fast the mailbox grows, and attachments that look alike but hash differently (a flood that
// varies its payload). Pure functions over the records; no I/O, no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "scanner/report.hpp"
#include "scanner/scan_state.hpp"

namespace rcptguard::scanner {

struct evidence_options {
  /// Copies of one attachment (by decoded SHA-256) that make a repeat worth reporting. The
  /// engine applies its own threshold (detection evidence_min_repeats) on top.
  std::uint32_t min_repeats = 3;
  /// Repeats and near-duplicates count attachments stored at or after now - window.
  std::chrono::seconds window{std::chrono::hours{1}};
  /// Hours of growth reported, the current one included.
  std::uint32_t growth_hours = 24;
  /// Filenames quoted per repeated hash.
  std::size_t max_filename_examples = 3;
};

mailbox_evidence compute_evidence(std::span<const attachment_record> attachments,
                                  std::span<const message_record> messages, time_point now,
                                  const evidence_options& options);

}  // namespace rcptguard::scanner
