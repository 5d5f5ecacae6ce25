// Reading log files line by line: plain or gzip-compressed (detected by content, so a rotated
// "mail.log.1.gz" and a plain "mail.log" need no flag), "-" for standard input. Lines longer
// than max_line are cut there (the rest is skipped and counted), so one broken line cannot
// grow the buffer without bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rcptguard::ingest {

inline constexpr std::size_t default_max_line = 64 * 1024;

class line_reader {
 public:
  /// Opens `path` ("-": standard input). Throws std::runtime_error with the reason.
  explicit line_reader(const std::string& path, std::size_t max_line = default_max_line);
  line_reader(const line_reader&) = delete;
  line_reader& operator=(const line_reader&) = delete;
  ~line_reader();

  /// The next line without its "\n" (or "\r\n"); false at the end. A last line without a
  /// newline is returned too. The view is valid until the next call. Throws on read errors.
  bool next(std::string_view& line);

  std::uint64_t long_lines() const { return long_lines_; }
  std::uint64_t bytes_read() const { return bytes_read_; }

 private:
  bool fill();

  void* file_ = nullptr;  ///< gzFile; void* keeps zlib.h out of this header
  std::string path_;
  std::size_t max_line_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0;  ///< first unread byte
  std::size_t end_ = 0;    ///< one past the last filled byte
  bool eof_ = false;
  bool skipping_ = false;  ///< inside the cut-off tail of a long line
  std::uint64_t long_lines_ = 0;
  std::uint64_t bytes_read_ = 0;
};

}  // namespace rcptguard::ingest
