// mbox framing: splits a byte range of a mailbox file into messages, one at a time, with
// constant memory per message (bounded by scan_limits::max_message_bytes).
//
// Rules, as Postfix local(8) and Sendmail's mail.local write the format:
// - A message starts with a `From ` line ("From sender  Fri Nov 27 01:06:57 2026") at the start
//   of the range or after an empty line. The line must look like a separator (it carries a
//   time, or is Thunderbird's "From - ..."), so prose such as "From Russia with love" after a
//   blank line does not split a message.
// - Body lines that began with "From " were written as ">From "; reading undoes that (mboxo:
//   ">From " only; mboxrd: one '>' off any ">>...From ").
// - A Content-Length header (Solaris / Sendmail style) is honoured one way only: once the body
//   has that many bytes, a separator needs no empty line before it. It never hides a separator
//   that follows an empty line, because in a Postfix spool the header comes from the sender and
//   a large count would fold a flood of following messages into one.
// - A message is complete when the next separator follows it, or at the end of the range when
//   the caller knows no writer was active (safe_open's quiescent probe). An incomplete last
//   message is not returned; complete_offset() stays before it, so the next scan starts there.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "scanner/limits.hpp"

namespace rcptguard::scanner {

enum class from_quoting : std::uint8_t {
  mboxo,   ///< ">From " -> "From " (Postfix local(8), mail.local)
  mboxrd,  ///< one '>' removed from ">>*From "
};

struct mbox_message {
  std::uint64_t offset = 0;  ///< of the From_ line (of the first byte when there is none)
  std::uint64_t length = 0;  ///< in the file, From_ line and trailing empty line included
  std::string from_line;     ///< the separator without its line end; empty when there was none
  std::string content;       ///< unescaped message without the From_ line; empty when oversized
  bool oversized = false;    ///< longer than max_message_bytes: framed, but content not kept
};

/// True for a line (without its line end) that may separate messages; see the file comment.
bool is_from_line(std::string_view line);

class mbox_reader {
 public:
  /// Reads [start, end) of `fd` with pread. `start` must be 0 or a complete_offset() of an
  /// earlier reader over the same file. `end_is_complete`: nobody was writing when `end` (the
  /// file size) was read, so the message running to `end` is complete.
  mbox_reader(int fd, std::uint64_t start, std::uint64_t end, bool end_is_complete,
              const scan_limits& limits, from_quoting quoting = from_quoting::mboxo);

  /// The next complete message, or false at the end (or on a read error: see error()).
  bool next(mbox_message& out);

  /// File bytes read so far.
  std::uint64_t bytes_read() const { return bytes_read_; }
  /// End of the last complete message returned (initially `start`).
  std::uint64_t complete_offset() const { return complete_offset_; }
  /// errno of a failed read, 0 if none.
  int error() const { return error_; }

 private:
  struct line {
    std::string_view text;  ///< with its '\n' when it has one
    std::uint64_t offset = 0;
    bool starts_line = true;  ///< false for the continuation of an over-long line
  };
  bool next_line(line& out);
  bool fill();
  void append_content(mbox_message& message, std::string_view text, bool starts_line);
  void begin_message(mbox_message& message, const line& first);
  void note_header(std::string_view text);

  int fd_;
  std::uint64_t end_;
  bool end_is_complete_;
  scan_limits limits_;
  from_quoting quoting_;

  std::vector<char> buffer_;
  std::size_t begin_ = 0;       ///< first unconsumed byte in buffer_
  std::size_t filled_ = 0;      ///< bytes valid in buffer_
  std::uint64_t file_pos_ = 0;  ///< file offset of buffer_[0]
  std::uint64_t next_read_ = 0;
  bool continuing_line_ = false;

  std::uint64_t bytes_read_ = 0;
  std::uint64_t complete_offset_ = 0;
  int error_ = 0;

  // The separator already consumed that starts the next message.
  bool have_pending_ = false;
  line pending_;
  std::string pending_text_;

  // Per message.
  bool in_header_ = true;
  std::uint64_t content_length_ = 0;
  bool has_content_length_ = false;
  std::uint64_t body_start_ = 0;
  bool prev_empty_ = true;
};

}  // namespace rcptguard::scanner
