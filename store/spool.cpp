// SQL for the spool tables: one transaction per scan, statements prepared once per call.
#include "store/spool.hpp"

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <set>
#include <string>

namespace rcptguard::store {
namespace {

using scanner::mailbox_kind;

std::int64_t as_int(std::uint64_t v) {
  return static_cast<std::int64_t>(v);
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += "; ";
    out += n;
  }
  return out;
}

void run(SQLite::Statement& statement) {
  statement.exec();
  statement.reset();
  statement.clearBindings();
}

}  // namespace

void save_scan(SQLite::Database& db, const scanner::scan_report& report,
               const scanner::scan_state& state) {
  SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement drop_messages(db, "DELETE FROM spool_message WHERE mailbox = ?1");
  SQLite::Statement drop_attachments(db, "DELETE FROM spool_attachment WHERE mailbox = ?1");
  SQLite::Statement drop_files(db, "DELETE FROM spool_file WHERE mailbox = ?1");
  for (const std::string& mailbox : report.restarted_mailboxes) {
    for (SQLite::Statement* s : {&drop_messages, &drop_attachments, &drop_files}) {
      s->bind(1, mailbox);
      run(*s);
    }
  }
  SQLite::Statement drop_origin_messages(
      db, "DELETE FROM spool_message WHERE mailbox = ?1 AND origin = ?2");
  SQLite::Statement drop_origin_attachments(
      db, "DELETE FROM spool_attachment WHERE mailbox = ?1 AND origin = ?2");
  for (const auto& [mailbox, inode] : report.removed_files) {
    for (SQLite::Statement* s : {&drop_origin_messages, &drop_origin_attachments}) {
      s->bind(1, mailbox);
      s->bind(2, as_int(inode));
      run(*s);
    }
  }

  SQLite::Statement insert_message(
      db,
      "INSERT INTO spool_message (mailbox, stored_at, scanned_at, bytes, origin) "
      "VALUES (?1, ?2, ?3, ?4, ?5)");
  for (const auto& [mailbox, m] : report.new_messages) {
    insert_message.bind(1, mailbox);
    insert_message.bind(2, to_unix_seconds(m.stored_at));
    insert_message.bind(3, to_unix_seconds(m.scanned_at));
    insert_message.bind(4, as_int(m.bytes));
    insert_message.bind(5, as_int(m.origin));
    run(insert_message);
  }
  SQLite::Statement insert_attachment(
      db,
      "INSERT INTO spool_attachment (mailbox, recipient, sha256, filename, content_type, size, "
      "message_id, stored_at, scanned_at, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
      "?10)");
  for (const auto& a : report.new_attachments) {
    insert_attachment.bind(1, a.mailbox);
    insert_attachment.bind(2, a.recipient);
    insert_attachment.bind(3, a.sha256);
    insert_attachment.bind(4, a.filename);
    insert_attachment.bind(5, a.content_type);
    insert_attachment.bind(6, as_int(a.size));
    insert_attachment.bind(7, a.message_id);
    insert_attachment.bind(8, to_unix_seconds(a.stored_at));
    insert_attachment.bind(9, to_unix_seconds(a.scanned_at));
    insert_attachment.bind(10, as_int(a.origin));
    run(insert_attachment);
  }

  // Positions of the mailboxes read in this scan, replaced as a whole.
  SQLite::Statement insert_file(
      db,
      "INSERT INTO spool_file (mailbox, kind, device, inode, size, offset, prefix_length, "
      "prefix_sha256, anchor_length, anchor_sha256, scanned_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  std::set<std::string> written;
  for (const scanner::file_report& file : report.files) {
    if (!written.insert(file.path).second) continue;
    const auto found = state.mailboxes.find(file.path);
    if (found == state.mailboxes.end()) continue;
    const scanner::mailbox_state& box = found->second;
    drop_files.bind(1, file.path);
    run(drop_files);
    if (box.kind == mailbox_kind::mbox) {
      const scanner::file_state& f = box.mbox;
      if (f.inode == 0) continue;
      insert_file.bind(1, file.path);
      insert_file.bind(2, "mbox");
      insert_file.bind(3, as_int(f.device));
      insert_file.bind(4, as_int(f.inode));
      insert_file.bind(5, as_int(f.size));
      insert_file.bind(6, as_int(f.offset));
      insert_file.bind(7, static_cast<std::int64_t>(f.prefix_length));
      insert_file.bind(8, f.prefix_sha256);
      insert_file.bind(9, static_cast<std::int64_t>(f.anchor_length));
      insert_file.bind(10, f.anchor_sha256);
      insert_file.bind(11, to_unix_seconds(report.at));
      run(insert_file);
      continue;
    }
    for (const auto& [inode, size] : box.maildir_files) {
      insert_file.bind(1, file.path);
      insert_file.bind(2, "maildir");
      insert_file.bind(3, std::int64_t{0});
      insert_file.bind(4, as_int(inode));
      insert_file.bind(5, as_int(size));
      insert_file.bind(6, as_int(size));
      insert_file.bind(7, std::int64_t{0});
      insert_file.bind(8, "");
      insert_file.bind(9, std::int64_t{0});
      insert_file.bind(10, "");
      insert_file.bind(11, to_unix_seconds(report.at));
      run(insert_file);
    }
  }

  SQLite::Statement upsert_evidence(
      db,
      "INSERT INTO spool_evidence (recipient, mailbox, sha256, repeats, size, filenames, "
      "window_start, window_end, scanned_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
      "ON CONFLICT (recipient, sha256, window_start) DO UPDATE SET repeats = excluded.repeats, "
      "filenames = excluded.filenames, window_end = excluded.window_end, "
      "scanned_at = excluded.scanned_at");
  for (const scanner::recipient_report& r : report.recipients) {
    for (const scanner::repeated_attachment& repeat : r.evidence.repeats) {
      upsert_evidence.bind(1, r.recipient);
      upsert_evidence.bind(2, r.mailbox);
      upsert_evidence.bind(3, repeat.sha256);
      upsert_evidence.bind(4, static_cast<std::int64_t>(repeat.count));
      upsert_evidence.bind(5, as_int(repeat.size));
      upsert_evidence.bind(6, joined(repeat.filenames));
      upsert_evidence.bind(7, to_unix_seconds(repeat.first_stored));
      upsert_evidence.bind(8, to_unix_seconds(repeat.last_stored));
      upsert_evidence.bind(9, to_unix_seconds(report.at));
      run(upsert_evidence);
    }
  }
  tx.commit();
}

scanner::scan_state load_scan_state(SQLite::Database& db, time_point now,
                                    std::chrono::seconds retention) {
  scanner::scan_state state;
  SQLite::Statement files(
      db,
      "SELECT mailbox, kind, device, inode, size, offset, prefix_length, prefix_sha256, "
      "anchor_length, anchor_sha256, scanned_at FROM spool_file ORDER BY mailbox");
  while (files.executeStep()) {
    scanner::mailbox_state& box = state.mailboxes[files.getColumn(0).getString()];
    const auto inode = static_cast<std::uint64_t>(files.getColumn(3).getInt64());
    const auto size = static_cast<std::uint64_t>(files.getColumn(4).getInt64());
    if (files.getColumn(1).getString() == "maildir") {
      box.kind = mailbox_kind::maildir;
      box.maildir_files[inode] = size;
      continue;
    }
    box.kind = mailbox_kind::mbox;
    scanner::file_state& f = box.mbox;
    f.device = static_cast<std::uint64_t>(files.getColumn(2).getInt64());
    f.inode = inode;
    f.size = size;
    f.offset = static_cast<std::uint64_t>(files.getColumn(5).getInt64());
    f.prefix_length = static_cast<std::uint32_t>(files.getColumn(6).getInt64());
    f.prefix_sha256 = files.getColumn(7).getString();
    f.anchor_length = static_cast<std::uint32_t>(files.getColumn(8).getInt64());
    f.anchor_sha256 = files.getColumn(9).getString();
    f.scanned_at = from_unix_seconds(files.getColumn(10).getInt64());
  }
  const std::int64_t since = to_unix_seconds(now) - retention.count();
  SQLite::Statement messages(
      db,
      "SELECT mailbox, stored_at, scanned_at, bytes, origin FROM spool_message "
      "WHERE stored_at >= ?1 ORDER BY id");
  messages.bind(1, since);
  while (messages.executeStep()) {
    state.mailboxes[messages.getColumn(0).getString()].messages.push_back(
        scanner::message_record{from_unix_seconds(messages.getColumn(1).getInt64()),
                                from_unix_seconds(messages.getColumn(2).getInt64()),
                                static_cast<std::uint64_t>(messages.getColumn(3).getInt64()),
                                static_cast<std::uint64_t>(messages.getColumn(4).getInt64())});
  }
  SQLite::Statement attachments(
      db,
      "SELECT mailbox, recipient, sha256, filename, content_type, size, stored_at, scanned_at, "
      "message_id, origin FROM spool_attachment WHERE stored_at >= ?1 ORDER BY id");
  attachments.bind(1, since);
  while (attachments.executeStep()) {
    scanner::attachment_record a;
    a.mailbox = attachments.getColumn(0).getString();
    a.recipient = attachments.getColumn(1).getString();
    a.sha256 = attachments.getColumn(2).getString();
    a.filename = attachments.getColumn(3).getString();
    a.content_type = attachments.getColumn(4).getString();
    a.size = static_cast<std::uint64_t>(attachments.getColumn(5).getInt64());
    a.stored_at = from_unix_seconds(attachments.getColumn(6).getInt64());
    a.scanned_at = from_unix_seconds(attachments.getColumn(7).getInt64());
    a.message_id = attachments.getColumn(8).getString();
    a.origin = static_cast<std::uint64_t>(attachments.getColumn(9).getInt64());
    state.mailboxes[a.mailbox].attachments.push_back(std::move(a));
  }
  return state;
}

std::uint64_t prune_spool(SQLite::Database& db, time_point cutoff) {
  SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
  const std::int64_t c = to_unix_seconds(cutoff);
  std::uint64_t deleted = 0;
  for (const char* sql : {"DELETE FROM spool_message WHERE stored_at < ?1",
                          "DELETE FROM spool_attachment WHERE stored_at < ?1",
                          "DELETE FROM spool_evidence WHERE scanned_at < ?1"}) {
    SQLite::Statement statement(db, sql);
    statement.bind(1, c);
    deleted += static_cast<std::uint64_t>(statement.exec());
  }
  tx.commit();
  return deleted;
}

}  // namespace rcptguard::store
