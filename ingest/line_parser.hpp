// One log line in, one classified mail_line out: the syslog envelope, then the Postfix or
// Sendmail message parser chosen by the program name. Other programs and broken lines are
// classified and counted, never fatal.
#pragma once

#include <cstdint>
#include <string_view>

#include "ingest/mail_line.hpp"
#include "ingest/syslog.hpp"
#include "ingest/timestamp.hpp"

namespace rcptguard::ingest {

enum class line_result : std::uint8_t {
  mail,           ///< a Postfix/Sendmail line of a type we use (mail_line::type != other)
  mail_other,     ///< a Postfix/Sendmail line we do not use (TLS, anvil, dnsblog, ...)
  other_program,  ///< a well-formed line of another program (amavis, dovecot, cron)
  blank,
  no_timestamp,
  malformed,
};

/// Lines by what became of them; parsed() + skipped() == lines.
struct parse_counts {
  std::uint64_t lines = 0;
  std::uint64_t mail = 0;
  std::uint64_t mail_other = 0;
  std::uint64_t other_program = 0;
  std::uint64_t blank = 0;
  std::uint64_t no_timestamp = 0;
  std::uint64_t malformed = 0;

  std::uint64_t parsed() const { return mail + mail_other; }
  std::uint64_t skipped() const { return other_program + blank + no_timestamp + malformed; }
  void add(line_result r);
};

class line_parser {
 public:
  explicit line_parser(timestamp_options options) : clock_(options) {}

  /// Parses one line (without its newline). `envelope` and `out` view into `line`.
  line_result parse(std::string_view line, syslog_line& envelope, mail_line& out);

  const parse_counts& counts() const { return counts_; }

 private:
  timestamp_parser clock_;
  parse_counts counts_;
};

}  // namespace rcptguard::ingest
