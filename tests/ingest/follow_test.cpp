// Follow mode: rotation by rename and by copytruncate, partial last lines, long lines, and a
// restart that resumes at the position stored in SQLite.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ingest/follower.hpp"
#include "ingest/reader.hpp"
#include "store/ingest_positions.hpp"
#include "store/schema.hpp"

namespace rcptguard::ingest {
namespace {

class FollowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rcptguard-follow-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = (dir_ / "mail.log").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void append(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::app | std::ios::binary) << text;
  }
  std::vector<std::string> poll(follower& f) {
    std::vector<std::string> got;
    f.poll([&](std::string_view l) { got.emplace_back(l); });
    return got;
  }

  std::filesystem::path dir_;
  std::string log_;
};

using lines = std::vector<std::string>;

TEST_F(FollowTest, StartsAtTheEndLikeTailUnlessFromStart) {
  append(log_, "old 1\nold 2\n");
  follower tail(log_);
  tail.start(std::nullopt, false);
  EXPECT_EQ(poll(tail), lines{});
  append(log_, "new\n");
  EXPECT_EQ(poll(tail), lines{"new"});

  follower all(log_);
  all.start(std::nullopt, true);
  EXPECT_EQ(poll(all), (lines{"old 1", "old 2", "new"}));
}

TEST_F(FollowTest, RotationByRenameFinishesTheOldFileFirst) {
  append(log_, "a\n");
  follower f(log_);
  f.start(std::nullopt, true);
  EXPECT_EQ(poll(f), lines{"a"});
  append(log_, "b\nunfinished");
  std::filesystem::rename(log_, log_ + ".1");
  append(log_ + ".1", "late\n");  // syslog writes to the old file until it reopens
  append(log_, "c\n");
  EXPECT_EQ(poll(f), (lines{"b", "unfinishedlate", "c"}));
  EXPECT_EQ(f.stats().rotations, 1U);
  append(log_, "d\n");
  EXPECT_EQ(poll(f), lines{"d"});
}

TEST_F(FollowTest, RenamedAwayWithoutNewFileWaits) {
  append(log_, "a\n");
  follower f(log_);
  f.start(std::nullopt, true);
  poll(f);
  std::filesystem::rename(log_, log_ + ".1");
  EXPECT_EQ(poll(f), lines{});
  append(log_, "fresh\n");
  EXPECT_EQ(poll(f), lines{"fresh"});
}

TEST_F(FollowTest, CopyTruncateStartsOver) {
  append(log_, "one\ntwo\nthree\n");
  follower f(log_);
  f.start(std::nullopt, true);
  EXPECT_EQ(poll(f).size(), 3U);
  std::filesystem::resize_file(log_, 0);
  append(log_, "x\n");
  EXPECT_EQ(poll(f), lines{"x"});
  EXPECT_EQ(f.stats().truncations, 1U);
}

TEST_F(FollowTest, PartialLastLineWaitsForItsNewline) {
  append(log_, "first\nsec");
  follower f(log_);
  f.start(std::nullopt, true);
  EXPECT_EQ(poll(f), lines{"first"});
  EXPECT_EQ(f.position().offset, 6U);  // not past the partial line
  append(log_, "ond\r\n");
  EXPECT_EQ(poll(f), lines{"second"});
  EXPECT_EQ(f.position().offset, 14U);
}

TEST_F(FollowTest, LongLinesAreCut) {
  append(log_, std::string(100, 'x') + "\nok\n");
  follower f(log_, 10);
  f.start(std::nullopt, true);
  EXPECT_EQ(poll(f), (lines{std::string(10, 'x'), "ok"}));
  EXPECT_EQ(f.stats().long_lines, 1U);
}

TEST_F(FollowTest, RestartResumesAtTheStoredPosition) {
  const std::string db_path = (dir_ / "rcptguard.db").string();
  append(log_, "1\n2\n");
  {
    SQLite::Database db = store::open_read_write({.path = db_path});
    store::ingest_positions positions(db);
    EXPECT_FALSE(positions.load(log_).has_value());
    follower f(log_);
    f.start(std::nullopt, true);
    EXPECT_EQ(poll(f), (lines{"1", "2"}));
    append(log_, "3 partial");
    poll(f);
    const follow_position p = f.position();
    positions.save(log_, {p.device, p.inode, p.offset}, from_unix_seconds(1));
  }
  append(log_, " done\n4\n");
  SQLite::Database db = store::open_read_write({.path = db_path});
  store::ingest_positions positions(db);
  const auto saved = positions.load(log_);
  ASSERT_TRUE(saved.has_value());
  follower again(log_);
  again.start(follow_position{saved->device, saved->inode, saved->offset}, false);
  EXPECT_EQ(poll(again), (lines{"3 partial done", "4"}));
}

TEST_F(FollowTest, RestartAfterRotationWhileStoppedReadsTheNewFile) {
  append(log_, "1\n");
  follower f(log_);
  f.start(std::nullopt, true);
  poll(f);
  const follow_position p = f.position();
  std::filesystem::rename(log_, log_ + ".1");
  append(log_, "new\n");
  follower again(log_);
  again.start(p, false);
  EXPECT_EQ(poll(again), lines{"new"});
}

TEST_F(FollowTest, ReaderHandlesGzipAndMissingNewline) {
  append(log_, "a\nb");
  const std::string gz = log_ + ".gz";
  ASSERT_EQ(std::system(("gzip -c " + log_ + " > " + gz).c_str()), 0);
  for (const std::string& path : {log_, gz}) {
    line_reader r(path);
    std::string_view l;
    lines got;
    while (r.next(l)) got.emplace_back(l);
    EXPECT_EQ(got, (lines{"a", "b"})) << path;
  }
  EXPECT_THROW(line_reader((dir_ / "absent").string()), std::runtime_error);
}

}  // namespace
}  // namespace rcptguard::ingest
