// Sendmail log messages by queue id: "from=, size=, nrcpts=, relay=" (arrival), "to=, mailer=,
// stat=" (delivery, several recipients per to=), "done;" and ruleset/unknown-user rejects.
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
