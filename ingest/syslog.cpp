// Envelope scanning for syslog lines (see syslog.hpp).
#include "ingest/syslog.hpp"

namespace rcptguard::ingest {

namespace {

bool digit(char c) {
  return c >= '0' && c <= '9';
}

// The space-delimited token at `pos`; `pos` ends after the one space that follows it.
std::string_view token(std::string_view line, std::size_t& pos) {
  const std::size_t start = pos;
  while (pos < line.size() && line[pos] != ' ') ++pos;
  const std::string_view t = line.substr(start, pos - start);
  if (pos < line.size()) ++pos;
  return t;
}

// RFC 5424 STRUCTURED-DATA: "-" or one or more "[id param="value" ...]" (values may quote ']').
bool skip_structured_data(std::string_view line, std::size_t& pos) {
  if (pos < line.size() && line[pos] == '-') {
    ++pos;
    return true;
  }
  bool any = false;
  while (pos < line.size() && line[pos] == '[') {
    any = true;
    bool quoted = false;
    ++pos;
    for (; pos < line.size(); ++pos) {
      const char c = line[pos];
      if (quoted && c == '\\') {
        ++pos;
      } else if (c == '"') {
        quoted = !quoted;
      } else if (c == ']' && !quoted) {
        break;
      }
    }
    if (pos >= line.size()) return false;
    ++pos;
  }
  return any;
}

header_status parse_5424(std::string_view line, std::size_t pos, timestamp_parser& clock,
                         syslog_line& out) {
  const std::string_view stamp = token(line, pos);
  if (stamp == "-" || !clock.parse_iso(stamp, out.time)) return header_status::no_timestamp;
  out.host = token(line, pos);
  out.program = token(line, pos);
  out.pid = token(line, pos);
  token(line, pos);  // MSGID
  if (out.host.empty() || out.program.empty() || !skip_structured_data(line, pos)) {
    return header_status::malformed;
  }
  if (out.pid == "-") out.pid = {};
  if (out.program == "-") out.program = {};
  if (pos < line.size() && line[pos] == ' ') ++pos;
  std::string_view message = pos < line.size() ? line.substr(pos) : std::string_view{};
  if (message.starts_with("\xEF\xBB\xBF")) message.remove_prefix(3);
  out.message = message;
  return header_status::ok;
}

}  // namespace

header_status parse_syslog(std::string_view line, timestamp_parser& clock, syslog_line& out) {
  std::size_t pos = 0;
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t' || line[pos] == '\r')) ++pos;
  if (pos == line.size()) return header_status::blank;
  while (!line.empty() && line.back() == '\r') line.remove_suffix(1);

  // "<PRI>" as sent on the wire; "<PRI>1 " is RFC 5424.
  if (line[pos] == '<') {
    std::size_t end = pos + 1;
    while (end < line.size() && digit(line[end]) && end - pos <= 3) ++end;
    if (end < line.size() && line[end] == '>' && end > pos + 1) {
      pos = end + 1;
      if (line.size() > pos + 1 && line[pos] == '1' && line[pos + 1] == ' ') {
        return parse_5424(line, pos + 2, clock, out);
      }
    }
  }

  const std::size_t used = clock.parse(line.substr(pos), out.time);
  if (used == 0) return header_status::no_timestamp;
  pos += used;
  if (pos >= line.size() || line[pos] != ' ') return header_status::malformed;
  ++pos;
  out.host = token(line, pos);
  // Some syslog templates print "<facility.priority>" before the host.
  if (out.host.size() > 2 && out.host.front() == '<' && out.host.back() == '>') {
    out.host = token(line, pos);
  }
  if (out.host.empty() || pos >= line.size()) return header_status::malformed;

  // "program[pid]: ", "program: ", or the broken "program[pid] " without the colon.
  const std::size_t start = pos;
  while (pos < line.size() && line[pos] != '[' && line[pos] != ':' && line[pos] != ' ') ++pos;
  out.program = line.substr(start, pos - start);
  out.pid = {};
  if (out.program.empty() || pos >= line.size()) return header_status::malformed;
  if (line[pos] == '[') {
    const std::size_t pid_start = ++pos;
    while (pos < line.size() && line[pos] != ']') ++pos;
    if (pos >= line.size()) return header_status::malformed;
    out.pid = line.substr(pid_start, pos - pid_start);
    ++pos;
  }
  if (pos < line.size() && line[pos] == ':') {
    ++pos;
  } else if (out.pid.empty()) {
    return header_status::malformed;  // "host word word": not a tagged line
  }
  if (pos < line.size() && line[pos] == ' ') ++pos;
  out.message = line.substr(pos);
  return header_status::ok;
}

}  // namespace rcptguard::ingest
