// Fuzz target: the Sendmail mail-log parser (ingest/sendmail_parser.hpp) behind the syslog
// envelope, and the queue-id joiner over its lines (fuzz/mail_log.hpp). Each line is also parsed
// as a bare Sendmail message text. May include: ingest/, common/, fuzz/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/check.hpp"
#include "fuzz/mail_log.hpp"
#include "ingest/fields.hpp"
#include "ingest/mail_line.hpp"
#include "ingest/sendmail_parser.hpp"

namespace {

using namespace rcptguard;

void parse_as_message(std::string_view line) {
  ingest::mail_line m;
  ingest::parse_sendmail("sm-mta", line, m);
  fuzz::check_mail_line(m, line, false);
  FUZZ_CHECK(m.origin == ingest::mta::sendmail && m.instance == "sm-mta");
  FUZZ_CHECK(fuzz::within(m.service, line));
  if (!m.queue_id.empty()) FUZZ_CHECK(ingest::fields::sendmail_queue_id(m.queue_id));
  // The helpers on their own, over the whole line.
  std::string_view name;
  std::string_view address;
  if (ingest::fields::split_client(line, name, address)) {
    FUZZ_CHECK(fuzz::within(name, line) && fuzz::within(address, line));
  }
  std::string_view value;
  if (ingest::fields::find_value(line, "to=", false, value)) FUZZ_CHECK(fuzz::within(value, line));
  static_cast<void>(ingest::fields::number(line));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  fuzz::run_mail_log(input, parse_as_message);
  return 0;
}
