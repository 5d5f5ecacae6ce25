// store/spool: a scan saved and loaded again resumes without rereading; evidence reaches
// v_spool_evidence with both timestamps; restarts and pruning clean up.
#include "store/spool.hpp"

#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include "scanner/scanner.hpp"
#include "scanner_test_util.hpp"
#include "store/schema.hpp"
#include "tests/common/corpus.hpp"

namespace rcptguard::store {
namespace {

using scanner::testing::corpus_dir;
using scanner::testing::temp_dir;

const time_point sample_now = from_unix_seconds(1795741800);  // 2026-11-27 01:10:00 UTC

scanner::scan_options options_for(const std::filesystem::path& root) {
  scanner::scan_options options;
  options.roots = {root};
  options.domains = {"example.test"};
  options.check_owner = false;
  return options;
}

TEST(Spool, RestartResumesFromTheSavedStateWithoutRereading) {
  RCPTGUARD_NEEDS_CORPUS();
  temp_dir dir;
  std::filesystem::create_directories(dir.path() / "spool");
  std::filesystem::copy_file(corpus_dir / "postfix-3.7/mbox-sample", dir.path() / "spool/bob");
  const std::string db_path = (dir.path() / "rg.db").string();
  const auto options = options_for(dir.path() / "spool");
  {
    SQLite::Database db = open_read_write(open_options{db_path});
    scanner::scan_state state;
    save_scan(db, scanner::scan_once(options, state, sample_now), state);
  }
  SQLite::Database db = open_read_write(open_options{db_path});
  scanner::scan_state state = load_scan_state(db, sample_now, options.retention);
  ASSERT_EQ(state.mailboxes.size(), 1u);
  const auto& box = state.mailboxes.begin()->second;
  EXPECT_EQ(box.mbox.offset, std::filesystem::file_size(dir.path() / "spool/bob"));
  EXPECT_EQ(box.messages.size(), 9u);
  EXPECT_EQ(box.attachments.size(), 8u);

  const scanner::scan_report again = scanner::scan_once(options, state, sample_now);
  ASSERT_EQ(again.files.size(), 1u);
  EXPECT_EQ(again.files[0].message_bytes_read, 0u);
  EXPECT_TRUE(again.files[0].restarted.empty());
  // The evidence is rebuilt from the loaded records alone.
  ASSERT_EQ(again.recipients.size(), 1u);
  EXPECT_EQ(again.recipients[0].evidence.repeats.at(0).count, 6u);
  save_scan(db, again, state);

  SQLite::Statement view(db,
                         "SELECT recipient, sha256_prefix, repeats, filenames, first_stored_utc, "
                         "scanned_utc, scan_lag_s FROM v_spool_evidence");
  ASSERT_TRUE(view.executeStep());
  EXPECT_EQ(view.getColumn(0).getString(), "bob@example.test");
  EXPECT_EQ(view.getColumn(1).getString(), "4f722330b79e");
  EXPECT_EQ(view.getColumn(2).getInt(), 6);
  EXPECT_EQ(view.getColumn(3).getString(), "photo.jpg; copy-of-photo.jpg");
  EXPECT_EQ(view.getColumn(4).getString().substr(0, 16), "2026-11-27T01:07");
  EXPECT_EQ(view.getColumn(5).getString(), "2026-11-27T01:10:00Z");
  EXPECT_GT(view.getColumn(6).getInt64(), 0);
  EXPECT_FALSE(view.executeStep());  // the second scan updated the row, did not add one
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM spool_attachment").getInt(), 8);
}

TEST(Spool, RestartedMailboxReplacesItsRecordsAndPruneDeletesOldOnes) {
  RCPTGUARD_NEEDS_CORPUS();
  temp_dir dir;
  std::filesystem::create_directories(dir.path() / "spool");
  const auto box = dir.path() / "spool/bob";
  std::filesystem::copy_file(corpus_dir / "postfix-3.7/mbox-sample", box);
  SQLite::Database db = open_read_write(open_options{(dir.path() / "rg.db").string()});
  const auto options = options_for(dir.path() / "spool");
  scanner::scan_state state;
  save_scan(db, scanner::scan_once(options, state, sample_now), state);
  std::filesystem::resize_file(box, 0);  // emptied by the mail client
  save_scan(db, scanner::scan_once(options, state, sample_now), state);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM spool_attachment").getInt(), 0);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM spool_message").getInt(), 0);

  std::filesystem::copy_file(corpus_dir / "postfix-3.7/mbox-sample", box,
                             std::filesystem::copy_options::overwrite_existing);
  save_scan(db, scanner::scan_once(options, state, sample_now), state);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM spool_attachment").getInt(), 8);
  EXPECT_GT(prune_spool(db, sample_now + std::chrono::hours{48}), 0u);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM spool_attachment").getInt(), 0);
}

}  // namespace
}  // namespace rcptguard::store
