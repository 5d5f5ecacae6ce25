// Following a live log like `tail -F`: poll() reads what was appended since the last call.
// Survives rotation by rename (the path names a new inode: the old file is read to its end,
// then the new one from its start) and by copytruncate (the file shrank below our offset: read
// again from 0). A last line without its newline is held until it is completed (or until the
// file is rotated away). position() is the offset after the last complete line handed out, which
// the caller stores so a restart resumes exactly there. No sleeping and no clock inside: the
// caller polls at its own pace, so tests step it directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "ingest/reader.hpp"

namespace rcptguard::ingest {

/// Where a follower is: the file by identity (a rotated file keeps its inode under a new
/// name) and the byte offset after the last complete line.
struct follow_position {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t offset = 0;

  bool operator==(const follow_position&) const = default;
};

struct follower_stats {
  std::uint64_t rotations = 0;    ///< the path named a new file
  std::uint64_t truncations = 0;  ///< the file shrank (copytruncate)
  std::uint64_t long_lines = 0;   ///< cut at max_line
  std::uint64_t lines = 0;
};

class follower {
 public:
  using line_function = std::function<void(std::string_view)>;

  explicit follower(std::string path, std::size_t max_line = default_max_line);
  follower(const follower&) = delete;
  follower& operator=(const follower&) = delete;
  ~follower();

  /// Where to begin: at `saved` when it names the same file and the file is not shorter than
  /// it; from the start when the file is another one (rotated while we were stopped) or when
  /// `from_start`; otherwise at the current end, like tail -F. A missing file is waited for.
  void start(const std::optional<follow_position>& saved, bool from_start);

  /// Hands every complete line available now to `on_line`; returns how many.
  std::size_t poll(const line_function& on_line);

  follow_position position() const;
  const follower_stats& stats() const { return stats_; }
  const std::string& path() const { return path_; }

 private:
  bool open_path(std::uint64_t start_offset, bool at_end);
  std::size_t drain(const line_function& on_line);
  void emit(std::string_view line, const line_function& on_line);
  void close_file();

  std::string path_;
  std::size_t max_line_;
  int fd_ = -1;
  std::uint64_t device_ = 0;
  std::uint64_t inode_ = 0;
  std::uint64_t offset_ = 0;  ///< bytes read from the file
  std::string partial_;       ///< read but not yet ended by a newline
  bool skipping_ = false;     ///< inside the cut-off tail of a long line
  follower_stats stats_;
};

}  // namespace rcptguard::ingest
