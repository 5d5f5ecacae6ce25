// The spool scanner's persistence: scan state per mailbox (so a restart resumes where the last
// scan stopped instead of rescanning every mailbox), the messages and attachments found, and
// the repeated-attachment evidence, in the v4 tables (schema.cpp). Like store.hpp it sees the
// scanner only through its plain data headers (scanner/scan_state.hpp, scanner/report.hpp) and
// calls none of its code, so rg_store does not link rg_scanner.
#pragma once

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <cstdint>

#include "common/time.hpp"
#include "scanner/report.hpp"
#include "scanner/scan_state.hpp"

namespace rcptguard::store {

/// Writes one scan in one transaction: drops the records of restarted mailboxes and removed
/// Maildir files, inserts the new messages and attachments, replaces the position rows of the
/// mailboxes read, and upserts the evidence (one row per recipient, hash and first copy).
/// Throws SQLite::Exception; on throw nothing of the scan is stored.
void save_scan(SQLite::Database& db, const scanner::scan_report& report,
               const scanner::scan_state& state);

/// The state a scanner resumes from: positions of every mailbox, and the message and attachment
/// records stored at or after now - retention (the evidence window's input). Read-only.
scanner::scan_state load_scan_state(SQLite::Database& db, time_point now,
                                    std::chrono::seconds retention);

/// Deletes spool messages, attachments and evidence rows stored (evidence: scanned) before
/// `cutoff`; returns the rows deleted.
std::uint64_t prune_spool(SQLite::Database& db, time_point cutoff);

}  // namespace rcptguard::store
