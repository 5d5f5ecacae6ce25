// mbox framing: separators, >From unescaping, Content-Length, incomplete last messages, bounded
// lines, and resuming at complete_offset().
#include "scanner/mbox_reader.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <vector>

#include "scanner_test_util.hpp"
#include "tests/common/corpus.hpp"

namespace rcptguard::scanner {
namespace {

using testing::corpus_dir;
using testing::temp_dir;
using testing::write_file;

struct read_result {
  std::vector<mbox_message> messages;
  std::uint64_t complete_offset = 0;
  std::uint64_t bytes_read = 0;
};

read_result read_mbox(const std::filesystem::path& path, std::uint64_t start = 0,
                      bool quiescent = true, scan_limits limits = {},
                      from_quoting quoting = from_quoting::mboxo) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  read_result out;
  mbox_reader reader(fd, start, std::filesystem::file_size(path), quiescent, limits, quoting);
  mbox_message m;
  while (reader.next(m)) out.messages.push_back(m);
  EXPECT_EQ(reader.error(), 0);
  out.complete_offset = reader.complete_offset();
  out.bytes_read = reader.bytes_read();
  ::close(fd);
  return out;
}

TEST(FromLine, RecognisesSeparatorsNotProse) {
  EXPECT_TRUE(is_from_line("From sender@remote.example  Fri Nov 27 01:06:57 2026"));
  EXPECT_TRUE(is_from_line("From - Mon Jun 07 15:42:20 2004"));
  EXPECT_TRUE(is_from_line("From - "));
  EXPECT_TRUE(is_from_line("From 1844347792267117879@xxx Wed Oct 04 12:26:15 +0000 2023"));
  EXPECT_FALSE(is_from_line("From Russia with love"));
  EXPECT_FALSE(is_from_line("From: someone@example.test"));
  EXPECT_FALSE(is_from_line(">From sender  Fri Nov 27 01:06:57 2026"));
}

TEST(MboxReader, PostfixSampleHasNineMessagesWithFromUnescaped) {
  RCPTGUARD_NEEDS_CORPUS();
  const auto path = corpus_dir / "postfix-3.7/mbox-sample";
  const read_result r = read_mbox(path);
  ASSERT_EQ(r.messages.size(), 9u);
  EXPECT_EQ(r.complete_offset, std::filesystem::file_size(path));
  EXPECT_EQ(r.bytes_read, std::filesystem::file_size(path));
  const mbox_message& first = r.messages.front();
  EXPECT_EQ(first.offset, 0u);
  EXPECT_EQ(first.from_line, "From sender@remote.example  Fri Nov 27 01:06:57 2026");
  EXPECT_NE(first.content.find("\nFrom the canteen menu: soup.\n"), std::string::npos);
  EXPECT_EQ(first.content.find(">From the canteen"), std::string::npos);
  EXPECT_EQ(first.content.rfind("Return-Path:", 0), 0u);
  std::uint64_t total = 0;
  for (const auto& m : r.messages) {
    EXPECT_EQ(m.offset, total);
    total += m.length;
    EXPECT_FALSE(m.oversized);
  }
  EXPECT_EQ(total, std::filesystem::file_size(path));
}

TEST(MboxReader, LastMessageWaitsWhileAWriterIsActive) {
  RCPTGUARD_NEEDS_CORPUS();
  const auto path = corpus_dir / "postfix-3.7/mbox-sample";
  const read_result all = read_mbox(path);
  const read_result busy = read_mbox(path, 0, /*quiescent=*/false);
  ASSERT_EQ(busy.messages.size(), 8u);
  EXPECT_EQ(busy.complete_offset, all.messages.back().offset);
}

TEST(MboxReader, ResumesAtCompleteOffsetReadingOnlyNewBytes) {
  RCPTGUARD_NEEDS_CORPUS();
  const auto path = corpus_dir / "postfix-3.7/mbox-sample";
  const read_result all = read_mbox(path);
  const std::uint64_t start = all.messages[6].offset;
  const read_result tail = read_mbox(path, start);
  ASSERT_EQ(tail.messages.size(), 3u);
  EXPECT_EQ(tail.bytes_read, std::filesystem::file_size(path) - start);
  EXPECT_EQ(tail.messages[0].content, all.messages[6].content);
}

TEST(MboxReader, ProseAfterBlankLineAndByteOrderMarkDoNotSplit) {
  RCPTGUARD_NEEDS_CORPUS();
  const read_result r = read_mbox(corpus_dir / "mime/mimekit/mbox/unmunged.mbox.txt");
  ASSERT_EQ(r.messages.size(), 2u);
  for (const auto& m : r.messages) {
    EXPECT_NE(m.content.find("From Russia with love"), std::string::npos);
  }
}

TEST(MboxReader, ContentLengthDelimitsMessagesWithoutBlankLines) {
  RCPTGUARD_NEEDS_CORPUS();
  const read_result r = read_mbox(corpus_dir / "mime/mimekit/mbox/content-length.mbox.txt");
  EXPECT_EQ(r.messages.size(), 29u);
}

TEST(MboxReader, QuotingStylesUnescapeOneLevel) {
  temp_dir dir;
  const auto path = dir.path() / "box";
  write_file(path,
             "From a@b  Fri Nov 27 01:06:57 2026\nSubject: x\n\n>From one\n>>From two\n"
             ">Fromage\n\n");
  const read_result o = read_mbox(path);
  ASSERT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.messages[0].content, "Subject: x\n\nFrom one\n>>From two\n>Fromage\n");
  const read_result rd = read_mbox(path, 0, true, {}, from_quoting::mboxrd);
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].content, "Subject: x\n\nFrom one\n>From two\n>Fromage\n");
}

TEST(MboxReader, EscapedFromIsNotASeparator) {
  temp_dir dir;
  const auto path = dir.path() / "box";
  write_file(path,
             "From a@b  Fri Nov 27 01:06:57 2026\nSubject: x\n\nbody\n\n"
             ">From c@d  Fri Nov 27 01:06:58 2026\nmore\n\n"
             "From e@f  Fri Nov 27 01:06:59 2026\nSubject: y\n\nsecond\n\n");
  const read_result r = read_mbox(path);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].content,
            "Subject: x\n\nbody\n\nFrom c@d  Fri Nov 27 01:06:58 2026\nmore\n");
  EXPECT_EQ(r.messages[1].from_line, "From e@f  Fri Nov 27 01:06:59 2026");
}

TEST(MboxReader, OverLongLinesComeInPiecesAndNeverSeparate) {
  temp_dir dir;
  const auto path = dir.path() / "box";
  scan_limits limits;
  limits.max_line_bytes = 4096;
  // A piece boundary lands exactly before "From ", which must not start a message.
  const std::string long_line = std::string(4096, 'x') + "From a@b  Fri Nov 27 01:06:57 2026\n";
  write_file(path, "From a@b  Fri Nov 27 01:06:57 2026\nSubject: x\n\n\n" + long_line + "\n");
  const read_result r = read_mbox(path, 0, true, limits);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_NE(r.messages[0].content.find(long_line), std::string::npos);
}

// Found by fuzz/mbox_mime: a scan that stopped inside a line starting "From <date>" took it for
// a separator, though the whole line is too long to be one; the next scan resumed there and split
// the message in two.
TEST(MboxReader, LineStillBeingWrittenIsNotASeparator) {
  temp_dir dir;
  const auto path = dir.path() / "box";
  const std::string first = "From a@b  Fri Nov 27 01:06:57 2026\nSubject: x\n\nbody\n\n";
  const std::string prose = "From a@b  Fri Nov 27 01:06:58 2026 " + std::string(2000, 'x') + "\n";
  write_file(path, first + prose.substr(0, 60));  // the writer is in the middle of the line
  const read_result during = read_mbox(path, 0, /*quiescent=*/false);
  EXPECT_TRUE(during.messages.empty());
  EXPECT_EQ(during.complete_offset, 0u);
  write_file(path, first + prose);
  const read_result after = read_mbox(path, during.complete_offset);
  const read_result whole = read_mbox(path);
  ASSERT_EQ(whole.messages.size(), 1u);
  ASSERT_EQ(after.messages.size(), 1u);
  EXPECT_EQ(after.messages[0].content, whole.messages[0].content);
  EXPECT_NE(whole.messages[0].content.find(prose), std::string::npos);
}

TEST(MboxReader, OversizedMessageIsFramedButNotKept) {
  temp_dir dir;
  const auto path = dir.path() / "box";
  scan_limits limits;
  limits.max_message_bytes = 1000;
  write_file(path, "From a@b  Fri Nov 27 01:06:57 2026\nSubject: big\n\n" + std::string(5000, 'y') +
                       "\n\nFrom a@b  Fri Nov 27 01:06:58 2026\nSubject: small\n\nok\n\n");
  const read_result r = read_mbox(path, 0, true, limits);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_TRUE(r.messages[0].oversized);
  EXPECT_TRUE(r.messages[0].content.empty());
  EXPECT_FALSE(r.messages[1].oversized);
  EXPECT_EQ(r.messages[1].content, "Subject: small\n\nok\n");
}

}  // namespace
}  // namespace rcptguard::scanner
