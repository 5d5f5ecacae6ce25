// The scan API: walk the spool roots once, read what is new in each mailbox, and return what was
// found and the evidence per recipient. Callable from a background thread (one scan_state per
// caller; no globals besides GMime's one-time initialisation). The caller owns the clock: `now`
// stamps the records and ends the evidence window.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "scanner/evidence.hpp"
#include "scanner/limits.hpp"
#include "scanner/mailbox_map.hpp"
#include "scanner/mbox_reader.hpp"
#include "scanner/mime_scanner.hpp"
#include "scanner/scan_state.hpp"

namespace rcptguard::scanner {

struct scan_options {
  /// Spool directories: each regular file is an mbox named after its user, each subdirectory
  /// with new/ or cur/ a Maildir. Missing roots are skipped; a root reached twice (symlink) once.
  std::vector<std::filesystem::path> roots{"/var/mail", "/var/spool/mail"};
  std::vector<std::string> domains;    ///< local domains, for user -> user@domain
  std::vector<mapping_entry> mapping;  ///< explicit user or path -> address
  scan_limits limits;
  evidence_options evidence;
  /// Records older than this (by stored time) are dropped from the state.
  std::chrono::seconds retention{std::chrono::hours{24}};
  /// Refuse a mailbox not owned by the user it is named after (when that user exists).
  bool check_owner = true;
  /// Probe the writer's lock before reading (safe_open.hpp).
  bool probe_lock = true;
  from_quoting quoting = from_quoting::mboxo;
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

scan_report scan_once(const scan_options& options, scan_state& state, time_point now);

/// The asctime() date of an mbox From_ line ("From a@b  Fri Nov 27 01:06:57 2026"), read as
/// local time as local(8) writes it. Empty when there is none.
std::optional<time_point> from_line_time(std::string_view from_line);

}  // namespace rcptguard::scanner
