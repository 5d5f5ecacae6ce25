// Fuzz target: the Postfix mail-log parser (ingest/postfix_parser.hpp) behind the syslog
// envelope, and the queue-id joiner over its lines (fuzz/mail_log.hpp). Each line is also parsed
// as a bare Postfix message text (as the grok corpus has them) by each daemon the parser tells
// apart. May include: ingest/, common/, fuzz/.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/check.hpp"
#include "fuzz/mail_log.hpp"
#include "ingest/mail_line.hpp"
#include "ingest/postfix_parser.hpp"

namespace {

using namespace rcptguard;

void parse_as_message(std::string_view line) {
  // The daemons parse_postfix dispatches on, and one it has no rule for.
  constexpr std::array<std::string_view, 5> services{"smtpd", "postscreen", "cleanup", "qmgr",
                                                     "local"};
  for (const std::string_view service : services) {
    ingest::mail_line m;
    ingest::parse_postfix("postfix/submission", service, line, m);
    fuzz::check_mail_line(m, line, false);
    FUZZ_CHECK(m.origin == ingest::mta::postfix && m.service == service);
  }
  // The first word as a syslog program name.
  const std::string_view program = line.substr(0, line.find_first_of(" [:"));
  std::string_view instance;
  std::string_view service;
  if (ingest::split_postfix_program(program, instance, service)) {
    FUZZ_CHECK(!service.empty() && fuzz::within(instance, program) &&
               fuzz::within(service, program));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  fuzz::run_mail_log(input, parse_as_message);
  return 0;
}
