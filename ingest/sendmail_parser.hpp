// Sendmail log messages by queue id: "from=, size=, nrcpts=, relay=" (arrival), "to=, mailer=,
// stat=" (delivery, several recipients per to=) and ruleset/unknown-user rejects. "done;" is not
// taken as the end of a message (deliveries of the same id may follow it, also out of order):
// Sendmail messages leave the joiner by expiry.
#pragma once

#include <string_view>

#include "ingest/mail_line.hpp"

namespace rcptguard::ingest {

/// sendmail, sm-mta, sm-msp-queue and the "sm-acceptingconnections" process title.
bool sendmail_program(std::string_view program);

/// Fills `out` from the message text of one Sendmail line; out.type stays line_type::other for
/// lines that carry nothing we use.
void parse_sendmail(std::string_view program, std::string_view message, mail_line& out);

}  // namespace rcptguard::ingest
