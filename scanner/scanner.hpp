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
#include "scanner/report.hpp"
#include "scanner/scan_state.hpp"

namespace rcptguard::scanner {

struct scan_options {
  /// Local spool directories: each regular file is an mbox named after its user, each
  /// subdirectory with new/ or cur/ a Maildir. Missing roots are skipped; a root reached twice
  /// (symlink) once.
  std::vector<std::filesystem::path> roots{"/var/mail", "/var/spool/mail"};
  /// Spool directories of virtual mailboxes (virtual(8) virtual_mailbox_base/DOMAIN, Dovecot
  /// /var/vmail/DOMAIN), read like `roots` but with the virtual owner rule of check_owner. A
  /// directory listed in both is read once, as virtual.
  std::vector<std::filesystem::path> virtual_roots;
  /// Who owns the mailboxes of virtual_roots: user names or numeric uids, looked up at every
  /// scan (a user created or removed later is seen without a restart).
  std::vector<std::string> virtual_owners;
  std::vector<std::string> domains;    ///< local domains, for user -> user@domain
  std::vector<mapping_entry> mapping;  ///< explicit user or path -> address
  scan_limits limits;
  evidence_options evidence;
  /// Records older than this (by stored time) are dropped from the state.
  std::chrono::seconds retention{std::chrono::hours{24}};
  /// Refuse a mailbox not owned by whom its layout says, so that a planted file cannot speak
  /// for a mailbox. In `roots`: the user it is named after, when that user exists. In
  /// `virtual_roots`, and for a `mapping` path inside one: one of `virtual_owners`, whatever the
  /// name (list@ is not the system user list); with none known, every such mailbox is refused.
  /// Maildir message files follow the rule of their Maildir.
  bool check_owner = true;
  /// Probe the writer's lock before reading (safe_open.hpp).
  bool probe_lock = true;
  from_quoting quoting = from_quoting::mboxo;
};

scan_report scan_once(const scan_options& options, scan_state& state, time_point now);

/// The asctime() date of an mbox From_ line ("From a@b  Fri Nov 27 01:06:57 2026"), read as
/// local time as local(8) writes it. Empty when there is none.
std::optional<time_point> from_line_time(std::string_view from_line);

}  // namespace rcptguard::scanner
