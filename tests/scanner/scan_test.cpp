// scan_once over real spool directories: repeated attachments with the right counts, the
// Postfix bomb sample, incremental reads (bytes asserted), truncation, rewrite, replacement,
// symlinks, owners, writer locks, Maildir, bounds, and the conversion to engine evidence.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>

#include "scanner/scanner.hpp"
#include "scanner/sha256.hpp"
#include "scanner_test_util.hpp"
#include "tests/common/corpus.hpp"

namespace rcptguard::scanner {
namespace {

using testing::corpus_dir;
using testing::mbox_message;
using testing::read_file;
using testing::temp_dir;
using testing::write_file;

// 2026-11-27 01:10:00 UTC, a few minutes after the sample's deliveries.
const time_point sample_now = from_unix_seconds(1795741800);

scan_options options_for(const std::filesystem::path& root) {
  scan_options options;
  options.roots = {root};
  options.domains = {"example.test"};
  options.check_owner = false;  // test files are ours whatever their name
  return options;
}

const file_report* file_named(const scan_report& report, const std::string& name) {
  for (const auto& f : report.files) {
    if (std::filesystem::path(f.path).filename() == name) return &f;
  }
  return nullptr;
}

const recipient_report* evidence_for(const scan_report& report, const std::string& recipient) {
  for (const auto& r : report.recipients) {
    if (r.recipient == recipient) return &r;
  }
  return nullptr;
}

std::string bomb_box(int first, int count, const std::string& payload,
                     const std::string& filename = "payload.bin") {
  std::string out;
  for (int i = first; i < first + count; ++i) {
    out += mbox_message("bob@example.test", i, filename, payload);
  }
  return out;
}

TEST(Scan, PostfixBombSampleGivesRepeatEvidenceForBob) {
  RCPTGUARD_NEEDS_CORPUS();
  temp_dir dir;
  std::filesystem::copy_file(corpus_dir / "postfix-3.7/mbox-sample", dir.path() / "bob");
  scan_state state;
  const scan_report report = scan_once(options_for(dir.path()), state, sample_now);
  const file_report* bob = file_named(report, "bob");
  ASSERT_NE(bob, nullptr);
  EXPECT_TRUE(bob->refused.empty()) << bob->refused;
  EXPECT_EQ(bob->messages, 9u);
  EXPECT_EQ(bob->attachments, 8u);  // notes.txt, the pdf, 5 x photo.jpg, copy-of-photo.jpg
  EXPECT_TRUE(bob->skipped.empty());
  ASSERT_EQ(bob->recipients, std::vector<std::string>{"bob@example.test"});

  const recipient_report* evidence = evidence_for(report, "bob@example.test");
  ASSERT_NE(evidence, nullptr);
  ASSERT_EQ(evidence->evidence.repeats.size(), 1u);
  const repeated_attachment& repeat = evidence->evidence.repeats[0];
  EXPECT_EQ(repeat.sha256,
            to_hex(sha256_of(read_file(corpus_dir / "postfix-3.7/attachments/photo.jpg"))));
  EXPECT_EQ(repeat.count, 6u);
  EXPECT_EQ(repeat.filenames, (std::vector<std::string>{"photo.jpg", "copy-of-photo.jpg"}));
  EXPECT_LE(repeat.first_stored, repeat.last_stored);

  EXPECT_EQ(repeat.sha256.substr(0, 12), "4f722330b79e");

  // Stored times come from our Received header, so they sit within the sample's minute.
  ASSERT_EQ(report.new_attachments.size(), 8u);
  for (const auto& a : report.new_attachments) {
    EXPECT_EQ(a.recipient, "bob@example.test");
    EXPECT_EQ(a.scanned_at, sample_now);
    EXPECT_LT(sample_now - a.stored_at, std::chrono::minutes{5});
  }
}

TEST(Scan, GeneratedFloodCountsRepeatsAndNearDuplicates) {
  temp_dir dir;
  std::string box = bomb_box(0, 7, "the same payload") + bomb_box(7, 2, "another payload");
  // Same name and size, different bytes: a flood that varies its payload.
  box += bomb_box(9, 1, "the same PAYLOAD");
  write_file(dir.path() / "bob", box);
  scan_state state;
  const scan_report report = scan_once(options_for(dir.path()), state, sample_now);
  const recipient_report* evidence = evidence_for(report, "bob@example.test");
  ASSERT_NE(evidence, nullptr);
  ASSERT_EQ(evidence->evidence.repeats.size(), 1u);  // "another payload" x2 is below min_repeats
  EXPECT_EQ(evidence->evidence.repeats[0].count, 7u);
  EXPECT_EQ(evidence->evidence.repeats[0].sha256, to_hex(sha256_of("the same payload")));
  ASSERT_EQ(evidence->evidence.near_duplicates.size(), 1u);
  EXPECT_EQ(evidence->evidence.near_duplicates[0].filename, "payload.bin");
  EXPECT_EQ(evidence->evidence.near_duplicates[0].distinct_hashes, 2u);
  EXPECT_EQ(evidence->evidence.near_duplicates[0].copies, 8u);
  ASSERT_EQ(evidence->evidence.growth.size(), 1u);
  EXPECT_EQ(evidence->evidence.growth[0].messages, 10u);
  EXPECT_EQ(evidence->evidence.growth[0].bytes, box.size());
}

TEST(Scan, AppendedMessagesAreTheOnlyBytesRead) {
  temp_dir dir;
  const auto path = dir.path() / "bob";
  write_file(path, bomb_box(0, 4, "flood"));
  scan_state state;
  const scan_options options = options_for(dir.path());
  const scan_report first = scan_once(options, state, sample_now);
  EXPECT_EQ(file_named(first, "bob")->message_bytes_read, std::filesystem::file_size(path));

  const std::string appended = bomb_box(4, 3, "flood");
  write_file(path, appended, /*append=*/true);
  const scan_report second = scan_once(options, state, sample_now);
  const file_report* bob = file_named(second, "bob");
  ASSERT_NE(bob, nullptr);
  EXPECT_TRUE(bob->restarted.empty()) << bob->restarted;
  EXPECT_EQ(bob->message_bytes_read, appended.size());
  // Identity checks, at most 4 KiB each: the prefix, the bytes before the old position and
  // "From " after it; then the new position's anchor and (small file) the longer prefix.
  EXPECT_LE(bob->bytes_read - bob->message_bytes_read, 4 * identity_bytes + 5);
  EXPECT_EQ(bob->messages, 3u);
  EXPECT_EQ(bob->offset, std::filesystem::file_size(path));
  EXPECT_EQ(evidence_for(second, "bob@example.test")->evidence.repeats.at(0).count, 7u);

  const scan_report third = scan_once(options, state, sample_now);
  EXPECT_EQ(file_named(third, "bob")->message_bytes_read, 0u);
  EXPECT_EQ(file_named(third, "bob")->messages, 0u);
}

TEST(Scan, TruncationRewriteAndReplacementStartOver) {
  temp_dir dir;
  const auto path = dir.path() / "bob";
  write_file(path, bomb_box(0, 6, "flood"));
  scan_state state;
  const scan_options options = options_for(dir.path());
  scan_once(options, state, sample_now);

  // A client expunged messages in place: the file shrank.
  write_file(path, bomb_box(0, 2, "flood"));
  scan_report report = scan_once(options, state, sample_now);
  EXPECT_EQ(file_named(report, "bob")->restarted, "truncated");
  EXPECT_EQ(file_named(report, "bob")->messages, 2u);
  EXPECT_EQ(report.restarted_mailboxes, std::vector<std::string>{path.string()});
  EXPECT_TRUE(evidence_for(report, "bob@example.test")->evidence.repeats.empty());

  // Rewritten in place, longer than before: the first bytes differ.
  std::string rewritten = bomb_box(0, 8, "other");
  write_file(path, rewritten);
  report = scan_once(options, state, sample_now);
  EXPECT_EQ(file_named(report, "bob")->restarted, "rewritten");
  EXPECT_EQ(file_named(report, "bob")->messages, 8u);
  EXPECT_EQ(evidence_for(report, "bob@example.test")->evidence.repeats.at(0).count, 8u);

  // Rotated: a new file (new inode) under the same name.
  const auto fresh = dir.path() / "bob.new";
  write_file(fresh, bomb_box(0, 9, "other"));
  std::filesystem::rename(fresh, path);
  report = scan_once(options, state, sample_now);
  EXPECT_EQ(file_named(report, "bob")->restarted, "replaced");
  EXPECT_EQ(evidence_for(report, "bob@example.test")->evidence.repeats.at(0).count, 9u);
}

TEST(Scan, SymlinkedMailboxIsRefused) {
  temp_dir dir;
  temp_dir elsewhere;
  write_file(elsewhere.path() / "secret", bomb_box(0, 5, "flood"));
  std::filesystem::create_symlink(elsewhere.path() / "secret", dir.path() / "eve");
  scan_state state;
  const scan_report report = scan_once(options_for(dir.path()), state, sample_now);
  const file_report* eve = file_named(report, "eve");
  ASSERT_NE(eve, nullptr);
  EXPECT_NE(eve->refused.find("symbolic link"), std::string::npos) << eve->refused;
  EXPECT_EQ(eve->messages, 0u);
  EXPECT_EQ(eve->bytes_read, 0u);
  EXPECT_TRUE(report.new_attachments.empty());
}

TEST(Scan, MailboxNotOwnedByItsUserIsRefused) {
  // A file we create is owned by us; name it after a user that is not us.
  const char* other = ::getuid() == 0 ? "nobody" : "root";
  if (::getpwnam(other) == nullptr) GTEST_SKIP() << "no user " << other;
  temp_dir dir;
  write_file(dir.path() / other, bomb_box(0, 1, "x"));
  scan_options options = options_for(dir.path());
  options.check_owner = true;
  scan_state state;
  const scan_report report = scan_once(options, state, sample_now);
  const file_report* f = file_named(report, other);
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->refused.find("expected uid"), std::string::npos) << f->refused;
}

TEST(Scan, LastMessageWaitsForTheDotlockToGo) {
  temp_dir dir;
  const auto path = dir.path() / "bob";
  write_file(path, bomb_box(0, 3, "flood"));
  write_file(dir.path() / "bob.lock", "");
  scan_state state;
  const scan_options options = options_for(dir.path());
  scan_report report = scan_once(options, state, sample_now);
  const file_report* bob = file_named(report, "bob");
  ASSERT_NE(bob, nullptr);
  EXPECT_TRUE(bob->writer_active);
  EXPECT_EQ(bob->messages, 2u);
  EXPECT_EQ(file_named(report, "bob.lock"), nullptr);  // lock files are not mailboxes

  std::filesystem::remove(dir.path() / "bob.lock");
  report = scan_once(options, state, sample_now);
  EXPECT_EQ(file_named(report, "bob")->messages, 1u);
  EXPECT_TRUE(file_named(report, "bob")->restarted.empty());
}

TEST(Scan, OversizedMessageIsSkippedWithReasonOthersCount) {
  temp_dir dir;
  std::string box = bomb_box(0, 3, "flood");
  box += mbox_message("bob@example.test", 3, "big.bin", std::string(300'000, 'z'));
  box += bomb_box(4, 1, "flood");
  write_file(dir.path() / "bob", box);
  scan_options options = options_for(dir.path());
  options.limits.max_message_bytes = 100'000;
  scan_state state;
  const scan_report report = scan_once(options, state, sample_now);
  const file_report* bob = file_named(report, "bob");
  ASSERT_EQ(bob->skipped.size(), 1u);
  EXPECT_EQ(bob->skipped[0].reason, skip_reason::message_too_large);
  EXPECT_EQ(bob->messages, 5u);
  EXPECT_EQ(evidence_for(report, "bob@example.test")->evidence.repeats.at(0).count, 4u);
}

TEST(Scan, TimeBudgetStopsAndTheNextScanResumes) {
  temp_dir dir;
  write_file(dir.path() / "bob", bomb_box(0, 3, "flood"));
  scan_options options = options_for(dir.path());
  options.limits.max_time_per_file = std::chrono::milliseconds{0};
  scan_state state;
  scan_report report = scan_once(options, state, sample_now);
  EXPECT_TRUE(file_named(report, "bob")->time_budget_hit);
  EXPECT_EQ(file_named(report, "bob")->messages, 0u);
  options.limits.max_time_per_file = std::chrono::seconds{10};
  report = scan_once(options, state, sample_now);
  EXPECT_EQ(file_named(report, "bob")->messages, 3u);
}

TEST(Scan, MaildirReadsEachFileOnceAndForgetsRemovedOnes) {
  temp_dir dir;
  const auto maildir = dir.path() / "carol";
  for (const char* sub : {"new", "cur", "tmp"}) std::filesystem::create_directories(maildir / sub);
  auto message = [](int i) {
    std::string m = mbox_message("carol@example.test", i, "same.bin", "maildir flood");
    return m.substr(m.find('\n') + 1);  // no From_ line in a Maildir file
  };
  for (int i = 0; i < 3; ++i)
    write_file(maildir / "new" / ("170000000" + std::to_string(i) + ".host"), message(i));
  write_file(maildir / "cur" / "1700000009.host:2,S", message(9));
  write_file(maildir / "tmp" / "partial", "half a message");
  scan_state state;
  const scan_options options = options_for(dir.path());
  scan_report report = scan_once(options, state, sample_now);
  const file_report* carol = file_named(report, "carol");
  ASSERT_NE(carol, nullptr);
  EXPECT_EQ(carol->kind, mailbox_kind::maildir);
  EXPECT_EQ(carol->messages, 4u);
  EXPECT_EQ(evidence_for(report, "carol@example.test")->evidence.repeats.at(0).count, 4u);

  // new/ -> cur/ keeps the inode: not read again.
  std::filesystem::rename(maildir / "new" / "1700000000.host",
                          maildir / "cur" / "1700000000.host:2,S");
  const std::string extra = message(5);
  write_file(maildir / "new" / "1700000005.host", extra);
  report = scan_once(options, state, sample_now);
  carol = file_named(report, "carol");
  EXPECT_EQ(carol->messages, 1u);
  EXPECT_EQ(carol->message_bytes_read, extra.size());
  EXPECT_EQ(evidence_for(report, "carol@example.test")->evidence.repeats.at(0).count, 5u);

  std::filesystem::remove(maildir / "cur" / "1700000009.host:2,S");
  report = scan_once(options, state, sample_now);
  EXPECT_EQ(report.removed_files.size(), 1u);
  EXPECT_EQ(evidence_for(report, "carol@example.test")->evidence.repeats.at(0).count, 4u);
}

TEST(Scan, RootsReachedTwiceAreScannedOnceAndMappingOverridesDomains) {
  temp_dir dir;
  std::filesystem::create_directories(dir.path() / "spool/mail");
  std::filesystem::create_symlink(dir.path() / "spool/mail", dir.path() / "mail");
  write_file(dir.path() / "spool/mail/bob", bomb_box(0, 3, "flood"));
  scan_options options = options_for(dir.path() / "mail");
  options.roots.push_back(dir.path() / "spool/mail");
  options.roots.push_back(dir.path() / "missing");
  options.mapping = {*parse_mapping("bob=robert@example.test"),
                     *parse_mapping("bob=bob@lists.example.test")};
  scan_state state;
  const scan_report report = scan_once(options, state, sample_now);
  ASSERT_EQ(report.files.size(), 1u);
  EXPECT_EQ(report.files[0].recipients,
            (std::vector<std::string>{"robert@example.test", "bob@lists.example.test"}));
  EXPECT_EQ(report.notes.size(), 2u);
  EXPECT_FALSE(parse_mapping("no-address").has_value());
  EXPECT_FALSE(parse_mapping("bob=notanaddress").has_value());
}

TEST(Scan, FromLineDateIsLocalTime) {
  const auto t = from_line_time("From sender@remote.example  Fri Nov 27 01:06:57 2026");
  ASSERT_TRUE(t.has_value());
  std::tm tm{};
  const std::time_t tt = static_cast<std::time_t>(to_unix_seconds(*t));
  localtime_r(&tt, &tm);
  EXPECT_EQ(tm.tm_year, 126);
  EXPECT_EQ(tm.tm_mon, 10);
  EXPECT_EQ(tm.tm_mday, 27);
  EXPECT_EQ(tm.tm_hour, 1);
  EXPECT_EQ(tm.tm_sec, 57);
  EXPECT_TRUE(from_line_time("From 1844@xxx Wed Oct 04 12:26:15 +0000 2023").has_value());
  EXPECT_FALSE(from_line_time("From - ").has_value());
}

}  // namespace
}  // namespace rcptguard::scanner
