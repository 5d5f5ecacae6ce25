// Fuzz target: the spool scanner's mbox framing (scanner/mbox_reader.hpp) and MIME scanner
// (scanner/mime_scanner.hpp) over the input as the contents of an mbox file, under small
// limits so the size, header, depth and part bounds are met. The input lives in a memfd (the
// reader preads a file descriptor). Checked: the messages tile the file and stay within the
// limits; reading the file in two scans (the first ending at a point chosen by the input, while
// "a writer is active") gives the same messages as one scan, and a writer-active scan of the
// whole file gives them all but the last; every scanned message stays within the MIME bounds.
// May include: scanner/, common/, fuzz/.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

#include "fuzz/check.hpp"
#include "scanner/limits.hpp"
#include "scanner/mbox_reader.hpp"
#include "scanner/mime_scanner.hpp"
#include "scanner/report.hpp"

namespace {

using namespace rcptguard::scanner;
using rcptguard::fuzz::fnv1a;

scan_limits small_limits() {
  scan_limits l;
  l.max_message_bytes = 16 * 1024;
  l.max_header_bytes = 2048;
  l.max_line_bytes = 2048;  // above the longest From_ line (1000), as with the default
  l.max_mime_depth = 6;
  l.max_mime_parts = 24;
  return l;
}

// One memfd for the process, rewritten for each input.
int input_file(std::string_view input) {
  static const int fd = ::memfd_create("mbox_mime_fuzz", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(::ftruncate(fd, 0) == 0);
  std::size_t done = 0;
  while (done < input.size()) {
    const ssize_t n = ::pwrite(fd, input.data() + done, input.size() - done,
                               static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    FUZZ_CHECK(n > 0);
    done += static_cast<std::size_t>(n);
  }
  return fd;
}

bool same(const mbox_message& a, const mbox_message& b) {
  return a.offset == b.offset && a.length == b.length && a.from_line == b.from_line &&
         a.content == b.content && a.oversized == b.oversized;
}

struct scan_pass {
  std::vector<mbox_message> messages;
  std::uint64_t complete_offset = 0;
};

scan_pass read_range(int fd, std::uint64_t start, std::uint64_t end, bool end_is_complete,
                     const scan_limits& limits, from_quoting quoting) {
  scan_pass pass;
  mbox_reader reader(fd, start, end, end_is_complete, limits, quoting);
  mbox_message m;
  std::uint64_t expected_offset = start;
  while (reader.next(m)) {
    // Messages tile the range: each starts where the previous one ended.
    FUZZ_CHECK(m.offset == expected_offset && m.length > 0);
    expected_offset = m.offset + m.length;
    FUZZ_CHECK(expected_offset <= end && reader.complete_offset() == expected_offset);
    if (!m.from_line.empty()) FUZZ_CHECK(is_from_line(m.from_line));
    if (m.oversized) {
      FUZZ_CHECK(m.content.empty());
    } else {
      FUZZ_CHECK(m.content.size() <= limits.max_message_bytes && m.content.size() <= m.length);
    }
    pass.messages.push_back(m);
  }
  FUZZ_CHECK(reader.error() == 0);
  FUZZ_CHECK(reader.complete_offset() == expected_offset);
  if (end_is_complete && start < end) FUZZ_CHECK(expected_offset == end);
  pass.complete_offset = reader.complete_offset();
  return pass;
}

void check_same(const std::vector<mbox_message>& want, const std::vector<mbox_message>& got,
                std::size_t count, const char* what) {
  for (std::size_t i = 0; i < count; ++i) {
    if (i >= got.size() || i >= want.size() || !same(want[i], got[i])) {
      std::fprintf(stderr, "mbox_mime: %s: message %zu differs from one whole scan\n", what, i);
      if (i < want.size()) {
        std::fprintf(stderr, "  whole: offset %llu length %llu\n",
                     static_cast<unsigned long long>(want[i].offset),
                     static_cast<unsigned long long>(want[i].length));
      }
      if (i < got.size()) {
        std::fprintf(stderr, "  %s: offset %llu length %llu\n", what,
                     static_cast<unsigned long long>(got[i].offset),
                     static_cast<unsigned long long>(got[i].length));
      }
      std::abort();
    }
  }
}

void check_scan(const mbox_message& m, const scan_limits& limits) {
  if (m.oversized) return;
  const message_info info = scan_message(m.content, limits);
  FUZZ_CHECK(info.depth <= limits.max_mime_depth);
  FUZZ_CHECK(info.parts <= limits.max_mime_parts + 1);
  if (info.skipped != skip_reason::none) FUZZ_CHECK(info.attachments.empty());
  FUZZ_CHECK(to_string(info.skipped) != "unknown");
  for (const part_record& part : info.attachments) {
    FUZZ_CHECK(part.sha256.size() == 64);
    FUZZ_CHECK(part.sha256.find_first_not_of("0123456789abcdef") == std::string_view::npos);
    FUZZ_CHECK(part.depth <= info.depth && !part.content_type.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const int fd = input_file(input);
  const scan_limits limits = small_limits();
  const from_quoting quoting =
      size > 0 && (data[size - 1] & 1) != 0 ? from_quoting::mboxrd : from_quoting::mboxo;

  const scan_pass whole = read_range(fd, 0, size, true, limits, quoting);
  for (const mbox_message& m : whole.messages) check_scan(m, limits);

  // A writer is active: everything but the last message, which waits for the next scan, and
  // also the one before it when the file ends inside its separator line (not judged until whole).
  const scan_pass writing = read_range(fd, 0, size, false, limits, quoting);
  FUZZ_CHECK(size == 0 || writing.messages.size() + 1 == whole.messages.size() ||
             (writing.messages.size() + 2 == whole.messages.size() && input.back() != '\n'));
  check_same(whole.messages, writing.messages, writing.messages.size(), "writer active");

  // Two scans: the file had `cut` bytes at the first (a writer active), all of them later.
  const std::uint64_t cut = fnv1a(input) % (size + 1);
  const scan_pass first = read_range(fd, 0, cut, false, limits, quoting);
  const scan_pass second = read_range(fd, first.complete_offset, size, true, limits, quoting);
  std::vector<mbox_message> both = first.messages;
  both.insert(both.end(), second.messages.begin(), second.messages.end());
  if (both.size() != whole.messages.size()) {
    std::fprintf(stderr, "mbox_mime: two scans (cut at %llu) give %zu messages, one gives %zu\n",
                 static_cast<unsigned long long>(cut), both.size(), whole.messages.size());
  }
  check_same(whole.messages, both, std::max(both.size(), whole.messages.size()), "two scans");
  return 0;
}
