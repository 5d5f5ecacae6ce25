// mbox framing over pread: a line splitter with a bounded buffer and the separator rules of
// mbox_reader.hpp.
#include "scanner/mbox_reader.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rcptguard::scanner {
namespace {

constexpr std::size_t read_chunk = 256 * 1024;
// A From_ line longer than this is prose, not a separator.
constexpr std::size_t max_from_line = 1000;
constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

std::string_view without_eol(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return text;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const char c = text[i];
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != prefix[i]) return false;
  }
  return true;
}

}  // namespace

bool is_from_line(std::string_view line) {
  if (line.size() > max_from_line || line.substr(0, 5) != "From ") return false;
  const std::string_view rest = line.substr(5);
  // Thunderbird writes "From - <date>" and sometimes just "From - ".
  if (!rest.empty() && rest.front() == '-') return true;
  // Everyone else writes an asctime()-like date after the sender: it has an hh:mm.
  for (std::size_t i = 0; i + 4 < rest.size(); ++i) {
    if (is_digit(rest[i]) && is_digit(rest[i + 1]) && rest[i + 2] == ':' && is_digit(rest[i + 3]) &&
        is_digit(rest[i + 4])) {
      return true;
    }
  }
  return false;
}

mbox_reader::mbox_reader(int fd, std::uint64_t start, std::uint64_t end, bool end_is_complete,
                         const scan_limits& limits, from_quoting quoting)
    : fd_(fd),
      end_(std::max(start, end)),
      end_is_complete_(end_is_complete),
      limits_(limits),
      quoting_(quoting),
      buffer_(std::max(read_chunk, 2 * limits.max_line_bytes)),
      file_pos_(start),
      next_read_(start),
      complete_offset_(start) {}

bool mbox_reader::fill() {
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, filled_ - begin_);
    file_pos_ += begin_;
    filled_ -= begin_;
    begin_ = 0;
  }
  const std::size_t room = buffer_.size() - filled_;
  const std::uint64_t left = end_ - next_read_;
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(room, left));
  if (want == 0) return false;
  ssize_t got = 0;
  do {
    got = ::pread(fd_, buffer_.data() + filled_, want, static_cast<off_t>(next_read_));
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    error_ = errno;
    return false;
  }
  if (got == 0) {
    // The file shrank under us (rewritten or truncated): what was there is not a complete
    // message; the next scan's checks decide what to do.
    end_ = next_read_;
    end_is_complete_ = false;
    return false;
  }
  filled_ += static_cast<std::size_t>(got);
  next_read_ += static_cast<std::uint64_t>(got);
  bytes_read_ += static_cast<std::uint64_t>(got);
  return true;
}

bool mbox_reader::next_line(line& out) {
  for (;;) {
    const char* data = buffer_.data() + begin_;
    const std::size_t available = filled_ - begin_;
    const void* newline = std::memchr(data, '\n', available);
    std::size_t length = 0;
    bool piece = false;
    if (newline != nullptr) {
      length = static_cast<std::size_t>(static_cast<const char*>(newline) - data) + 1;
    } else if (available >= limits_.max_line_bytes) {
      length = limits_.max_line_bytes;  // an over-long line goes out in pieces
      piece = true;
    } else if (next_read_ < end_ && error_ == 0 && fill()) {
      continue;
    } else if (available > 0 && error_ == 0) {
      length = available;  // last line without a line end
    } else {
      return false;
    }
    out.text = std::string_view(data, length);
    out.offset = file_pos_ + begin_;
    out.starts_line = !continuing_line_;
    continuing_line_ = piece;
    begin_ += length;
    return true;
  }
}

void mbox_reader::append_content(mbox_message& message, std::string_view text, bool starts_line) {
  if (starts_line && !text.empty() && text.front() == '>') {
    const std::size_t quotes = text.find_first_not_of('>');
    const bool escaped = quoting_ == from_quoting::mboxo ? text.substr(1, 5) == "From "
                                                         : quotes != std::string_view::npos &&
                                                               text.substr(quotes, 5) == "From ";
    if (escaped) text.remove_prefix(1);
  }
  if (message.oversized) return;
  if (message.content.size() + text.size() > limits_.max_message_bytes) {
    message.oversized = true;
    message.content.clear();
    message.content.shrink_to_fit();
    return;
  }
  message.content.append(text);
}

void mbox_reader::note_header(std::string_view text) {
  if (!starts_with_ci(text, "content-length:")) return;
  std::string_view value = without_eol(text.substr(15));
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  std::uint64_t n = 0;
  std::size_t digits = 0;
  for (; digits < value.size() && digits < 19 && is_digit(value[digits]); ++digits) {
    n = n * 10 + static_cast<std::uint64_t>(value[digits] - '0');
  }
  if (digits == 0) return;
  content_length_ = n;
  has_content_length_ = true;
}

void mbox_reader::begin_message(mbox_message& message, const line& first) {
  message.offset = first.offset;
  in_header_ = true;
  has_content_length_ = false;
  content_length_ = 0;
  body_start_ = 0;
  prev_empty_ = false;
  std::string_view text = first.text;
  if (first.offset == 0 && text.substr(0, utf8_bom.size()) == utf8_bom) {
    text.remove_prefix(utf8_bom.size());
  }
  if (first.starts_line && is_from_line(without_eol(text))) {
    message.from_line.assign(without_eol(text));
    return;
  }
  // A file (or range) that does not start with a separator: its first bytes are a message.
  append_content(message, text, first.starts_line);
  if (first.starts_line) note_header(text);
}

bool mbox_reader::next(mbox_message& out) {
  out.offset = 0;
  out.length = 0;
  out.from_line.clear();
  out.content.clear();
  out.oversized = false;
  bool started = false;
  if (have_pending_) {
    pending_.text = pending_text_;
    begin_message(out, pending_);
    have_pending_ = false;
    started = true;
  }
  std::size_t last_empty_length = 0;
  line current;
  while (next_line(current)) {
    if (!started) {
      begin_message(out, current);
      started = true;
      continue;
    }
    // Past the counted body a separator needs no empty line before it (writers that count
    // do not add one, and Netscape's counts run short). The count never hides a separator
    // that follows an empty line: in a Postfix spool the header is the sender's, and a huge
    // count would fold the following messages into one.
    const bool past_counted_body =
        has_content_length_ && !in_header_ && current.offset >= body_start_ + content_length_;
    // Only a line read whole can separate: one still being written (no line end yet, a writer
    // active) may grow past max_from_line, and where a scan stopped must not move a boundary.
    const bool whole_line = current.text.back() == '\n' ||
                            (end_is_complete_ && current.offset + current.text.size() == end_);
    if (current.starts_line && whole_line && (prev_empty_ || past_counted_body) &&
        is_from_line(without_eol(current.text))) {
      if (prev_empty_ && !out.oversized && out.content.size() >= last_empty_length) {
        out.content.resize(out.content.size() - last_empty_length);  // local(8)'s blank line
      }
      out.length = current.offset - out.offset;
      pending_ = current;
      pending_text_.assign(current.text);
      have_pending_ = true;
      complete_offset_ = current.offset;
      return true;
    }
    append_content(out, current.text, current.starts_line);
    const bool empty =
        current.starts_line && without_eol(current.text).empty() && current.text.back() == '\n';
    if (in_header_ && current.starts_line) {
      if (empty) {
        in_header_ = false;
        body_start_ = current.offset + current.text.size();
      } else {
        note_header(current.text);
      }
    }
    prev_empty_ = empty;
    last_empty_length = empty ? current.text.size() : 0;
  }
  if (!started || error_ != 0 || !end_is_complete_) return false;
  if (prev_empty_ && !out.oversized && out.content.size() >= last_empty_length) {
    out.content.resize(out.content.size() - last_empty_length);
  }
  out.length = end_ - out.offset;
  complete_offset_ = end_;
  return true;
}

}  // namespace rcptguard::scanner
