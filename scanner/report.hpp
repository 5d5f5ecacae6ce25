// What a scan reports: plain data only (no scanner code), so the store can persist a scan
// and the commands print one without linking the scanner's parsers.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/time.hpp"
#include "scanner/scan_state.hpp"

namespace rcptguard::scanner {

enum class skip_reason : std::uint8_t {
  none,
  message_too_large,  ///< over max_message_bytes
  header_too_large,   ///< top-level header block over max_header_bytes
  too_deep,           ///< MIME nesting over max_mime_depth
  too_many_parts,     ///< over max_mime_parts (also the pre-check on container types)
  unparsable,         ///< GMime built no message from it
  time_budget,        ///< the file's time ran out before this message (read next scan)
};

struct repeated_attachment {
  std::string sha256;
  std::uint32_t count = 0;
  std::uint64_t size = 0;
  time_point first_stored;
  time_point last_stored;
  std::vector<std::string> filenames;  ///< distinct, in order of appearance, capped
};

struct hourly_growth {
  time_point hour;  ///< start of the hour (UTC)
  std::uint32_t messages = 0;
  std::uint64_t bytes = 0;
};

struct near_duplicate {
  std::string filename;
  std::uint64_t size = 0;
  std::uint32_t copies = 0;
  std::uint32_t distinct_hashes = 0;
};

struct mailbox_evidence {
  std::vector<repeated_attachment> repeats;  ///< most copies first
  std::vector<hourly_growth> growth;         ///< oldest hour first, hours with mail only
  std::vector<near_duplicate> near_duplicates;
};

struct skipped_message {
  std::uint64_t offset = 0;  ///< mbox: of the From_ line; Maildir: 0
  std::string file;          ///< Maildir: the message file ("cur/NAME"); mbox: empty
  skip_reason reason = skip_reason::none;
};

struct file_report {
  std::string path;
  mailbox_kind kind = mailbox_kind::mbox;
  std::vector<std::string> recipients;
  std::string refused;  ///< non-empty: the mailbox (or a Maildir file) was not read, and why
  std::string warning;  ///< odd but read (world-writable, hard links)
  /// Why reading started over at 0: "truncated", "replaced", "rewritten"; empty otherwise.
  std::string restarted;
  bool writer_active = false;    ///< lock probe failed: the last message waits for the next scan
  bool time_budget_hit = false;  ///< stopped early; resumes next scan
  std::uint64_t bytes_read = 0;  ///< everything read, identity checks included
  std::uint64_t message_bytes_read = 0;  ///< message data only
  std::uint32_t messages = 0;
  std::uint32_t attachments = 0;
  std::vector<skipped_message> skipped;
  std::uint64_t offset = 0;  ///< mbox: read position after the scan
};

struct recipient_report {
  std::string recipient;
  std::string mailbox;
  mailbox_evidence evidence;
};

struct scan_report {
  time_point at;
  std::vector<std::string> notes;  ///< roots skipped, and similar
  std::vector<file_report> files;
  std::vector<recipient_report> recipients;
  /// Records found by this scan, for persistence (store/spool.hpp).
  std::vector<attachment_record> new_attachments;
  std::vector<std::pair<std::string, message_record>> new_messages;  ///< (mailbox, record)
  /// Mailboxes read again from 0: their earlier records were dropped from the state and
  /// should be dropped from storage too.
  std::vector<std::string> restarted_mailboxes;
  /// Maildir message files gone since the last scan: (mailbox, inode).
  std::vector<std::pair<std::string, std::uint64_t>> removed_files;
};

}  // namespace rcptguard::scanner
