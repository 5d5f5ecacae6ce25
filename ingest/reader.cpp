// Buffered line reading through zlib's gzread, which also passes plain files through unchanged.
#include "ingest/reader.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace rcptguard::ingest {

namespace {

constexpr std::size_t read_chunk = 1 << 20;

gzFile as_gz(void* f) {
  return static_cast<gzFile>(f);
}

}  // namespace

line_reader::line_reader(const std::string& path, std::size_t max_line)
    : path_(path), max_line_(max_line), buffer_(read_chunk + max_line + 1) {
  int fd = -1;
  if (path == "-") {
    fd = ::dup(STDIN_FILENO);
  } else {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) {
    throw std::runtime_error("cannot open " + path + ": " + std::generic_category().message(errno));
  }
  gzFile gz = ::gzdopen(fd, "rb");
  if (gz == nullptr) {
    ::close(fd);
    throw std::runtime_error("cannot open " + path + ": out of memory");
  }
  ::gzbuffer(gz, 256 * 1024);
  file_ = gz;
}

line_reader::~line_reader() {
  if (file_ != nullptr) ::gzclose(as_gz(file_));
}

bool line_reader::fill() {
  if (eof_) return false;
  // Keep the unread tail (a partial line) at the front, then read after it.
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  const std::size_t room = buffer_.size() - end_;
  if (room == 0) return false;
  const int n = ::gzread(as_gz(file_), buffer_.data() + end_,
                         static_cast<unsigned>(std::min(room, read_chunk)));
  if (n < 0) {
    int code = 0;
    const char* message = ::gzerror(as_gz(file_), &code);
    throw std::runtime_error(
        "cannot read " + path_ + ": " +
        (code == Z_ERRNO ? std::generic_category().message(errno) : std::string(message)));
  }
  if (n == 0) {
    eof_ = true;
    return false;
  }
  end_ += static_cast<std::size_t>(n);
  bytes_read_ += static_cast<std::uint64_t>(n);
  return true;
}

bool line_reader::next(std::string_view& line) {
  while (true) {
    const char* start = buffer_.data() + begin_;
    const auto* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
    if (newline != nullptr) {
      const auto length = static_cast<std::size_t>(newline - start);
      begin_ += length + 1;
      if (skipping_) {
        skipping_ = false;
        continue;
      }
      line = std::string_view(start, length);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      return true;
    }
    if (end_ - begin_ >= max_line_) {
      // A line longer than the cap: hand out its first max_line bytes, skip to its end.
      line = std::string_view(start, max_line_);
      const bool already = skipping_;
      begin_ = end_;
      if (!already) {
        skipping_ = true;
        ++long_lines_;
        return true;
      }
      continue;
    }
    if (!fill()) {
      if (end_ == begin_) return false;
      // The last line has no newline.
      line = std::string_view(buffer_.data() + begin_, end_ - begin_);
      begin_ = end_;
      if (skipping_) {
        skipping_ = false;
        return false;
      }
      return true;
    }
  }
}

}  // namespace rcptguard::ingest
