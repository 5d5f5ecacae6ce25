// The syslog envelope of a log line: time, host, program[pid] and the message text after it,
// for classic BSD syslog, rsyslog/Postfix ISO 8601 and RFC 5424 lines.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/time.hpp"
#include "ingest/timestamp.hpp"

namespace rcptguard::ingest {

struct syslog_line {
  time_point time;
  std::string_view host;
  std::string_view program;  ///< "postfix/submission/smtpd", "sendmail", "amavis"
  std::string_view pid;      ///< empty when absent
  std::string_view message;  ///< after "program[pid]: "
};

enum class header_status : std::uint8_t {
  ok,
  blank,         ///< empty or whitespace only
  no_timestamp,  ///< no timestamp at the start (annotations, truncated lines)
  malformed,     ///< a timestamp, but no host or program after it
};

/// Splits `line` (without its newline) into its envelope. Tolerates a "<PRI>" prefix, a
/// missing ':' after "[pid]" and RFC 5424 structured data; the views point into `line`.
header_status parse_syslog(std::string_view line, timestamp_parser& clock, syslog_line& out);

}  // namespace rcptguard::ingest
