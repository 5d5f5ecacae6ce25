// Line classification and counting (see line_parser.hpp).
#include "ingest/line_parser.hpp"

#include "ingest/postfix_parser.hpp"
#include "ingest/sendmail_parser.hpp"

namespace rcptguard::ingest {

void parse_counts::add(line_result r) {
  ++lines;
  switch (r) {
    case line_result::mail:
      ++mail;
      break;
    case line_result::mail_other:
      ++mail_other;
      break;
    case line_result::other_program:
      ++other_program;
      break;
    case line_result::blank:
      ++blank;
      break;
    case line_result::no_timestamp:
      ++no_timestamp;
      break;
    case line_result::malformed:
      ++malformed;
      break;
  }
}

line_result line_parser::parse(std::string_view line, syslog_line& envelope, mail_line& out) {
  line_result result = line_result::other_program;
  switch (parse_syslog(line, clock_, envelope)) {
    case header_status::blank:
      result = line_result::blank;
      break;
    case header_status::no_timestamp:
      result = line_result::no_timestamp;
      break;
    case header_status::malformed:
      result = line_result::malformed;
      break;
    case header_status::ok: {
      std::string_view instance;
      std::string_view service;
      if (split_postfix_program(envelope.program, instance, service)) {
        parse_postfix(instance, service, envelope.message, out);
      } else if (sendmail_program(envelope.program)) {
        parse_sendmail(envelope.program, envelope.message, out);
      } else {
        break;
      }
      result = out.type == line_type::other ? line_result::mail_other : line_result::mail;
      break;
    }
  }
  counts_.add(result);
  return result;
}

}  // namespace rcptguard::ingest
