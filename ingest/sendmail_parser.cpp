// Sendmail message scanning (see sendmail_parser.hpp).
#include "ingest/sendmail_parser.hpp"

#include "ingest/fields.hpp"

namespace rcptguard::ingest {

namespace {

// "relay=host [addr] (may be forged)", "relay=[addr]" or "relay=user@localhost".
void client_from_relay(std::string_view relay, mail_line& out) {
  if (!fields::split_client(relay, out.client_name, out.client_address)) out.client_name = relay;
}

delivery_status status_of(std::string_view stat) {
  if (stat.starts_with("Sent")) return delivery_status::sent;
  if (stat.starts_with("Deferred")) return delivery_status::deferred;
  // Anything else Sendmail puts in stat= is a permanent failure ("User unknown", "Service
  // unavailable"): the message is returned to the sender.
  return stat.empty() ? delivery_status::other : delivery_status::bounced;
}

}  // namespace

bool sendmail_program(std::string_view program) {
  return program == "sendmail" || program.starts_with("sm-");
}

void parse_sendmail(std::string_view program, std::string_view message, mail_line& out) {
  out = mail_line{};
  out.origin = mta::sendmail;
  out.instance = program;

  std::string_view rest = message;
  const std::size_t colon = message.find(": ");
  if (colon != std::string_view::npos && fields::sendmail_queue_id(message.substr(0, colon))) {
    out.queue_id = message.substr(0, colon);
    rest = message.substr(colon + 2);
  }

  if (rest.starts_with("ruleset=")) {
    std::string_view reply;
    if (!fields::find_value(rest, "reject=", false, reply)) return;
    out.type = line_type::reject;
    out.action = "reject";
    out.stage = fields::value(rest, "ruleset=", false);
    client_from_relay(fields::value(rest, "relay=", false), out);
    if (out.stage == "check_rcpt") out.recipients = fields::value(rest, "arg1=", false);
    if (out.stage == "check_mail") {
      out.sender = fields::strip_angles(fields::value(rest, "arg1=", false));
    }
    return;
  }
  if (out.queue_id.empty()) return;

  if (rest.starts_with("from=")) {
    out.type = line_type::sender;
    out.sender = fields::strip_angles(fields::value(rest, "from=", false));
    out.size = fields::number(fields::value(rest, "size=", false));
    out.nrcpt = static_cast<std::uint32_t>(fields::number(fields::value(rest, "nrcpts=", false)));
    out.message_id = fields::strip_angles(fields::value(rest, "msgid=", false));
    client_from_relay(fields::value(rest, "relay=", false), out);
    return;
  }
  if (rest.starts_with("to=")) {
    out.type = line_type::delivery;
    out.recipients = fields::value(rest, "to=", false);
    out.service = fields::value(rest, "mailer=", false);
    out.relay = fields::value(rest, "relay=", false);
    // stat= is last and free text: "Sent (ok:  Message 40279894 accepted)".
    const std::size_t stat = rest.find("stat=");
    out.status =
        status_of(stat == std::string_view::npos ? std::string_view{} : rest.substr(stat + 5));
    return;
  }
  // "<user@host>... User unknown": an RCPT refused at SMTP time.
  if (rest.starts_with("<")) {
    const std::size_t dots = rest.find(">... ");
    if (dots == std::string_view::npos) return;
    out.type = line_type::reject;
    out.action = "reject";
    out.stage = "RCPT";
    out.recipients = rest.substr(0, dots + 1);
  }
}

}  // namespace rcptguard::ingest
