// One message in memory -> its attachments (decoded SHA-256, filename, type, size) and times,
// parsed by GMime 3. Bounded: the message is pre-checked before GMime sees it (size, header
// block, an upper bound on container parts so GMime's recursive parser stays shallow), and the
// walk checks depth and part count before each part. A message that hits a bound or does not
// parse is reported skipped with the reason; nothing throws for bad input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.hpp"
#include "scanner/limits.hpp"
#include "scanner/report.hpp"

namespace rcptguard::scanner {

std::string_view to_string(skip_reason reason);

struct part_record {
  std::string sha256;        ///< hex, of the decoded content
  std::string filename;      ///< RFC 2231/2047 decoded, as GMime gives it (UTF-8); may be empty
  std::string content_type;  ///< "type/subtype", lower case
  std::uint64_t size = 0;    ///< decoded bytes
  unsigned depth = 0;        ///< 0 = the message itself is the part
};

struct message_info {
  std::vector<part_record> attachments;
  std::string message_id;
  std::optional<time_point> received_at;  ///< date of the first (topmost, ours) Received header
  std::optional<time_point> date_header;  ///< Date:, written by the sender
  unsigned parts = 0;
  unsigned depth = 0;
  skip_reason skipped = skip_reason::none;
};

/// Parses and hashes one message (without its mbox From_ line). Thread-safe: GMime is
/// initialised once for the process, and each call has its own parser.
message_info scan_message(std::string_view message, const scan_limits& limits);

/// Which leaf parts are recorded: those with a filename, an attachment disposition, or a
/// non-text type. Plain text and HTML bodies are not attachments.
bool is_attachment_like(std::string_view content_type, bool has_filename,
                        bool disposition_attachment);

}  // namespace rcptguard::scanner
