// tail -F style following with rotation and truncation handling (see follower.hpp).
#include "ingest/follower.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>

namespace rcptguard::ingest {

namespace {

constexpr std::size_t read_chunk = 64 * 1024;

}  // namespace

follower::follower(std::string path, std::size_t max_line)
    : path_(std::move(path)), max_line_(max_line) {}

follower::~follower() {
  close_file();
}

void follower::close_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool follower::open_path(std::uint64_t start_offset, bool at_end) {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return false;
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t offset = at_end ? size : start_offset;
  if (offset > size) {
    offset = 0;  // shorter than where we were: truncated while we were away
    ++stats_.truncations;
  }
  if (::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
    ::close(fd);
    return false;
  }
  close_file();
  fd_ = fd;
  device_ = static_cast<std::uint64_t>(st.st_dev);
  inode_ = static_cast<std::uint64_t>(st.st_ino);
  offset_ = offset;
  partial_.clear();
  skipping_ = false;
  return true;
}

void follower::start(const std::optional<follow_position>& saved, bool from_start) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return;  // poll() opens it when it appears
  const bool same = saved && saved->device == static_cast<std::uint64_t>(st.st_dev) &&
                    saved->inode == static_cast<std::uint64_t>(st.st_ino);
  if (from_start) {
    open_path(0, false);
  } else if (same) {
    open_path(saved->offset, false);
  } else {
    // A saved position of another file: the log was rotated while we were stopped.
    open_path(0, !saved.has_value());
  }
}

follow_position follower::position() const {
  return follow_position{device_, inode_, offset_ - partial_.size()};
}

void follower::emit(std::string_view line, const line_function& on_line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  ++stats_.lines;
  on_line(line);
}

std::size_t follower::drain(const line_function& on_line) {
  std::size_t lines = 0;
  std::array<char, read_chunk> chunk{};
  while (true) {
    const ssize_t n = ::read(fd_, chunk.data(), chunk.size());
    if (n <= 0) break;
    offset_ += static_cast<std::uint64_t>(n);
    std::string_view data(chunk.data(), static_cast<std::size_t>(n));
    while (!data.empty()) {
      const std::size_t newline = data.find('\n');
      const std::string_view piece = data.substr(0, newline);
      bool cut = false;
      if (!skipping_) {
        const std::size_t room = max_line_ - std::min(max_line_, partial_.size());
        cut = piece.size() > room;
        partial_.append(piece.substr(0, room));
      }
      if (cut) ++stats_.long_lines;
      if (newline == std::string_view::npos) {
        if (cut) {
          // Too long: hand out the first max_line bytes now, drop the rest of the line.
          emit(partial_, on_line);
          ++lines;
          partial_.clear();
          skipping_ = true;
        }
        break;
      }
      if (!skipping_) {
        emit(partial_, on_line);
        ++lines;
      }
      partial_.clear();
      skipping_ = false;
      data.remove_prefix(newline + 1);
    }
  }
  return lines;
}

std::size_t follower::poll(const line_function& on_line) {
  if (fd_ < 0 && !open_path(0, false)) return 0;
  std::size_t lines = 0;
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && static_cast<std::uint64_t>(st.st_size) < offset_) {
    // copytruncate: the file was emptied under us; what is there now is new.
    ++stats_.truncations;
    ::lseek(fd_, 0, SEEK_SET);
    offset_ = 0;
    partial_.clear();
    skipping_ = false;
  }
  lines += drain(on_line);

  struct stat now {};
  if (::stat(path_.c_str(), &now) != 0) return lines;  // renamed away, new file not there yet
  if (static_cast<std::uint64_t>(now.st_ino) == inode_ &&
      static_cast<std::uint64_t>(now.st_dev) == device_) {
    return lines;
  }
  // Rotated by rename: finish the old file (lines written before the switch), including a last
  // line that will never get its newline, then start the new file from its beginning.
  lines += drain(on_line);
  if (!partial_.empty() && !skipping_) {
    emit(partial_, on_line);
    ++lines;
  }
  partial_.clear();
  ++stats_.rotations;
  if (open_path(0, false)) lines += drain(on_line);
  return lines;
}

}  // namespace rcptguard::ingest
