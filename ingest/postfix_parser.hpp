// Postfix log messages: smtpd connect/disconnect/client=, cleanup message-id=, qmgr from=/
// removed, delivery agents' to=/status=, NOQUEUE (or queue-id) reject/warn/... lines and
// postscreen verdicts. Multi-instance and master.cf service names ("postfix-out/smtp",
// "postfix/submission/smtpd") are split into instance and daemon.
#pragma once

#include <string_view>

#include "ingest/mail_line.hpp"

namespace rcptguard::ingest {

/// Whether `program` is a Postfix daemon ("postfix*/.../daemon"); sets the instance (the
/// syslog name without the daemon) and the daemon name.
bool split_postfix_program(std::string_view program, std::string_view& instance,
                           std::string_view& service);

/// Fills `out` from the message text of one Postfix daemon's line; out.type stays
/// line_type::other for lines that carry nothing we use.
void parse_postfix(std::string_view instance, std::string_view service, std::string_view message,
                   mail_line& out);

}  // namespace rcptguard::ingest
