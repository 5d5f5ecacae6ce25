// MIME scanning with GMime: the whole corpus without a crash, known-answer hashes (base64,
// uuencode, quoted-printable, the Postfix bomb mbox), RFC 2231 names, and every bound.
#include "scanner/mime_scanner.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <thread>
#include <vector>

#include "scanner/mbox_reader.hpp"
#include "scanner/sha256.hpp"
#include "scanner_test_util.hpp"
#include "tests/common/corpus.hpp"

namespace rcptguard::scanner {
namespace {

using testing::corpus_dir;
using testing::read_file;

std::string hash_of_file(const std::filesystem::path& p) {
  return to_hex(sha256_of(read_file(p)));
}

std::vector<message_info> scan_mbox_file(const std::filesystem::path& path,
                                         const scan_limits& limits = {}) {
  std::vector<message_info> out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  mbox_reader reader(fd, 0, std::filesystem::file_size(path), true, limits);
  mbox_message m;
  while (reader.next(m)) out.push_back(scan_message(m.content, limits));
  ::close(fd);
  return out;
}

std::string wrap(const std::string& headers, const std::string& body) {
  return "From: a@example.test\nSubject: t\nMIME-Version: 1.0\n" + headers + "\n" + body;
}

TEST(MimeScanner, EveryCorpusFileParsesWithoutCrash) {
  RCPTGUARD_NEEDS_CORPUS();
  std::size_t files = 0;
  std::size_t messages = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(corpus_dir / "mime")) {
    if (!entry.is_regular_file()) continue;
    ++files;
    // Once as a single message, once through the mbox framing.
    const message_info info = scan_message(read_file(entry.path()), scan_limits{});
    EXPECT_LE(info.depth, scan_limits{}.max_mime_depth) << entry.path();
    for (const part_record& part : info.attachments) {
      EXPECT_EQ(part.sha256.size(), 64u) << entry.path();
      EXPECT_FALSE(part.content_type.empty()) << entry.path();
    }
    messages += scan_mbox_file(entry.path()).size();
  }
  // MANIFEST.tsv lists every corpus file; all of mime/ must have been read.
  std::size_t listed = 0;
  std::istringstream manifest(read_file(corpus_dir / "MANIFEST.tsv"));
  for (std::string line; std::getline(manifest, line);) {
    if (line.rfind("mime/", 0) == 0) ++listed;
  }
  EXPECT_EQ(files, listed);
  EXPECT_GE(messages, files);
}

TEST(MimeScanner, PostfixBombSampleHashesMatchTheOriginalFiles) {
  RCPTGUARD_NEEDS_CORPUS();
  const auto dir = corpus_dir / "postfix-3.7";
  const std::string photo = hash_of_file(dir / "attachments/photo.jpg");
  ASSERT_EQ(photo, hash_of_file(dir / "attachments/copy-of-photo.jpg"));
  std::map<std::string, int> names_of_photo;
  std::map<std::string, std::string> hash_by_name;
  for (const message_info& info : scan_mbox_file(dir / "mbox-sample")) {
    EXPECT_EQ(info.skipped, skip_reason::none);
    for (const part_record& part : info.attachments) {
      hash_by_name[part.filename] = part.sha256;
      if (part.sha256 == photo) {
        ++names_of_photo[part.filename];
        EXPECT_EQ(part.size, std::filesystem::file_size(dir / "attachments/photo.jpg"));
        EXPECT_EQ(part.content_type, "image/jpeg");
      }
    }
  }
  EXPECT_EQ(names_of_photo["photo.jpg"], 5);
  EXPECT_EQ(names_of_photo["copy-of-photo.jpg"], 1);
  EXPECT_EQ(hash_by_name["notes.txt"], hash_of_file(dir / "attachments/notes.txt"));
  EXPECT_EQ(hash_by_name["Quarterly Report 2024.pdf"],
            hash_of_file(dir / "attachments/invoice.pdf"));
}

TEST(MimeScanner, MessageIdAndTimesAreRead) {
  RCPTGUARD_NEEDS_CORPUS();
  const auto infos = scan_mbox_file(corpus_dir / "postfix-3.7/mbox-sample");
  ASSERT_EQ(infos.size(), 9u);
  EXPECT_EQ(infos[0].message_id, "e2e-002@client.example.test");
  // Received: ...; Fri, 27 Nov 2026 01:06:57 +0000 (UTC)
  ASSERT_TRUE(infos[0].received_at.has_value());
  EXPECT_EQ(to_unix_seconds(*infos[0].received_at), 1795741617);
  ASSERT_TRUE(infos[0].date_header.has_value());
  EXPECT_EQ(to_unix_seconds(*infos[0].date_header), 1795741617);
}

TEST(MimeScanner, KnownAnswerEncodingsDecodeToThePhoto) {
  const auto enc = corpus_dir / "mime/gmime/encodings";
  const std::string photo = hash_of_file(enc / "photo.jpg");
  const std::string b64 = wrap(
      "Content-Type: image/jpeg\nContent-Disposition: attachment; filename=photo.jpg\n"
      "Content-Transfer-Encoding: base64\n",
      read_file(enc / "photo.b64"));
  const std::string uu = wrap(
      "Content-Type: image/jpeg\nContent-Disposition: attachment; filename=photo.jpg\n"
      "Content-Transfer-Encoding: x-uuencode\n",
      read_file(enc / "photo.uu"));
  const std::string qp = wrap(
      "Content-Type: text/plain; charset=utf-8\nContent-Disposition: attachment; filename=w.txt\n"
      "Content-Transfer-Encoding: quoted-printable\n",
      read_file(enc / "wikipedia.qp"));
  for (const auto& [message, expected] : std::vector<std::pair<std::string, std::string>>{
           {b64, photo}, {uu, photo}, {qp, hash_of_file(enc / "wikipedia.txt")}}) {
    const message_info info = scan_message(message, scan_limits{});
    ASSERT_EQ(info.attachments.size(), 1u);
    EXPECT_EQ(info.attachments[0].sha256, expected);
  }
}

TEST(MimeScanner, Rfc2231FilenamesAreDecoded) {
  RCPTGUARD_NEEDS_CORPUS();
  const auto dir = corpus_dir / "mime/james-mime4j/mimetools-testmsgs";
  for (const char* name :
       {"attachment-filename-encoding-UTF8.msg", "attachment-filename-encoding-Latin1.msg"}) {
    const message_info info = scan_message(read_file(dir / name), scan_limits{});
    ASSERT_EQ(info.attachments.size(), 1u) << name;
    EXPECT_EQ(info.attachments[0].filename, "attachment.\xC3\xA4\xC3\xB6\xC3\xBC") << name;
  }
}

TEST(MimeScanner, TextBodiesAreNotAttachments) {
  EXPECT_FALSE(is_attachment_like("text/plain", false, false));
  EXPECT_FALSE(is_attachment_like("text/html", false, false));
  EXPECT_TRUE(is_attachment_like("text/plain", true, false));
  EXPECT_TRUE(is_attachment_like("text/plain", false, true));
  EXPECT_TRUE(is_attachment_like("image/png", false, false));
}

std::string nested(unsigned levels) {
  std::string head;
  std::string tail;
  for (unsigned i = 0; i < levels; ++i) {
    const std::string b = "b" + std::to_string(i);
    head += "Content-Type: multipart/mixed; boundary=\"" + b + "\"\n\n--" + b + "\n";
    tail = "--" + b + "--\n" + tail;
  }
  return "From: a@example.test\nMIME-Version: 1.0\n" + head +
         "Content-Type: application/octet-stream\n\nx\n" + tail;
}

TEST(MimeScanner, DeepNestingIsBoundedBeforeAndDuringParsing) {
  scan_limits limits;
  const message_info shallow = scan_message(nested(10), limits);
  EXPECT_EQ(shallow.skipped, skip_reason::none);
  EXPECT_EQ(shallow.attachments.size(), 1u);
  const message_info deep = scan_message(nested(limits.max_mime_depth + 10), limits);
  EXPECT_EQ(deep.skipped, skip_reason::too_deep);
  EXPECT_TRUE(deep.attachments.empty());
  // So deep that GMime's recursive parser is never handed it.
  const message_info abyss = scan_message(nested(50'000), limits);
  EXPECT_EQ(abyss.skipped, skip_reason::too_many_parts);
}

TEST(MimeScanner, PartCountIsBounded) {
  scan_limits limits;
  limits.max_mime_parts = 50;
  std::string body;
  for (int i = 0; i < 100; ++i) body += "--b\nContent-Type: application/octet-stream\n\nx\n";
  const message_info info =
      scan_message(wrap("Content-Type: multipart/mixed; boundary=b\n", body + "--b--\n"), limits);
  EXPECT_EQ(info.skipped, skip_reason::too_many_parts);
  EXPECT_TRUE(info.attachments.empty());
}

TEST(MimeScanner, OversizedMessageAndHeaderAreSkipped) {
  RCPTGUARD_NEEDS_CORPUS();
  scan_limits limits;
  limits.max_message_bytes = 1000;
  EXPECT_EQ(scan_message(wrap("", std::string(2000, 'x')), limits).skipped,
            skip_reason::message_too_large);
  // A real 135 KB folded To: header (MimeKit's stack-overflow test) meets header_size_limit.
  const message_info huge_header = scan_message(
      read_file(corpus_dir / "mime/mimekit/messages/stack-overflow.txt"), scan_limits{});
  EXPECT_EQ(huge_header.skipped, skip_reason::header_too_large);
}

TEST(MimeScanner, ConcurrentScansAgree) {
  RCPTGUARD_NEEDS_CORPUS();
  const std::string message = read_file(corpus_dir / "mime/cpython-test_email/msg_07.txt");
  const message_info reference = scan_message(message, scan_limits{});
  ASSERT_EQ(reference.attachments.size(), 1u);
  std::vector<std::thread> threads;
  std::vector<std::string> hashes(4);
  for (std::size_t t = 0; t < hashes.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i)
        hashes[t] = scan_message(message, scan_limits{}).attachments.at(0).sha256;
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& h : hashes) EXPECT_EQ(h, reference.attachments[0].sha256);
}

}  // namespace
}  // namespace rcptguard::scanner
