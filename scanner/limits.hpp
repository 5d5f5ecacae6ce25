// Every bound the spool scanner enforces, named once with the reason for its default. A hostile
// or corrupt mailbox meets one of these and is skipped with a reason; it never costs unbounded
// memory, stack or time (aesthetics practice 14).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace rcptguard::scanner {

struct scan_limits {
  /// Bytes of one message kept in memory and handed to the MIME parser. Larger messages are
  /// framed (so the file position stays right) but skipped. Postfix's message_size_limit
  /// default is 10 MB; 64 MiB leaves room for sites that raised it.
  std::uint64_t max_message_bytes = 64ull << 20;
  /// Top-level header block; Postfix's header_size_limit default.
  std::size_t max_header_bytes = 102'400;
  /// A line longer than this is passed through in pieces; no piece of it can be a `From `
  /// separator. Bounds the read buffer, not the message.
  std::size_t max_line_bytes = 64 * 1024;
  /// MIME nesting (multipart and message/rfc822 levels); rspamd's max_nested.
  unsigned max_mime_depth = 64;
  /// MIME parts of one message. rspamd allows 10000; a mailbox message with more than 1000
  /// parts is pathological, and each part costs a hash and a record.
  unsigned max_mime_parts = 1000;
  /// Wall-clock time spent on one file per scan. When it runs out, the file's position stays
  /// at the last message read and the next scan resumes there.
  std::chrono::milliseconds max_time_per_file{10'000};
  /// Files looked at per root directory and Maildir folder per scan, so a directory with
  /// millions of entries cannot stall a scan.
  std::size_t max_entries_per_directory = 100'000;
  /// Attachment and message records kept per mailbox between scans (the evidence window's
  /// input); the oldest go first.
  std::size_t max_records_per_mailbox = 50'000;
};

}  // namespace rcptguard::scanner
