// Postfix message scanning (see postfix_parser.hpp). Dispatch is on the daemon name first, so
// the many lines of daemons we do not use (dnsblog, anvil, tlsproxy) cost one comparison.
#include "ingest/postfix_parser.hpp"

#include "ingest/fields.hpp"

namespace rcptguard::ingest {

namespace {

using fields::consume;

delivery_status status_of(std::string_view word) {
  if (word == "sent") return delivery_status::sent;
  if (word == "deferred") return delivery_status::deferred;
  if (word == "bounced") return delivery_status::bounced;
  return delivery_status::other;
}

bool upper(char c) {
  return c >= 'A' && c <= 'Z';
}

// "<action>: <STAGE> from <client>: <reply>; from=<s> to=<r> proto=... helo=<h>"
bool parse_action(std::string_view rest, mail_line& out) {
  const std::size_t colon = rest.find(": ");
  if (colon == std::string_view::npos || colon == 0 || colon > 16) return false;
  const std::string_view action = rest.substr(0, colon);
  for (const char c : action) {
    if (!((c >= 'a' && c <= 'z') || c == '-' || c == '_')) return false;
  }
  std::string_view tail = rest.substr(colon + 2);
  const std::size_t space = tail.find(' ');
  if (space == std::string_view::npos) return false;
  out.type = line_type::reject;
  out.action = action;
  out.stage = tail.substr(0, space);
  tail.remove_prefix(space + 1);
  if (consume(tail, "from ")) {
    const std::size_t end = tail.find(": ");
    fields::split_client(tail.substr(0, end), out.client_name, out.client_address);
  }
  out.sender = fields::strip_angles(fields::value(tail, "from=", true));
  out.recipients = fields::value(tail, "to=", true);
  return true;
}

void parse_queued(std::string_view service, std::string_view rest, mail_line& out) {
  if (rest.starts_with("to=")) {
    out.type = line_type::delivery;
    out.recipients = fields::value(rest, "to=", false);
    out.orig_to = fields::strip_angles(fields::value(rest, "orig_to=", false));
    out.relay = fields::value(rest, "relay=", false);
    out.status = status_of(fields::value(rest, "status=", true));
    return;
  }
  if (rest.starts_with("from=")) {
    // qmgr's "from=<x>, status=expired, returned to sender" is not an arrival.
    std::string_view size;
    if (!fields::find_value(rest, "size=", false, size)) return;
    out.type = line_type::sender;
    out.sender = fields::strip_angles(fields::value(rest, "from=", false));
    out.size = fields::number(size);
    out.nrcpt = static_cast<std::uint32_t>(fields::number(fields::value(rest, "nrcpt=", true)));
    return;
  }
  if (rest.starts_with("client=")) {
    out.type = line_type::client;
    fields::split_client(fields::value(rest, "client=", false), out.client_name,
                         out.client_address);
    out.sasl_username = fields::value(rest, "sasl_username=", false);
    return;
  }
  if (rest.starts_with("message-id=")) {
    out.type = line_type::message_id;
    out.message_id = fields::strip_angles(rest.substr(11));
    return;
  }
  if (rest == "removed") {
    out.type = line_type::removed;
    return;
  }
  if (service == "smtpd" || service == "cleanup") parse_action(rest, out);
}

}  // namespace

bool split_postfix_program(std::string_view program, std::string_view& instance,
                           std::string_view& service) {
  if (!program.starts_with("postfix")) return false;
  const std::size_t slash = program.rfind('/');
  if (slash == std::string_view::npos || slash + 1 == program.size()) return false;
  instance = program.substr(0, slash);
  service = program.substr(slash + 1);
  return true;
}

void parse_postfix(std::string_view instance, std::string_view service, std::string_view message,
                   mail_line& out) {
  out = mail_line{};
  out.origin = mta::postfix;
  out.instance = instance;
  out.service = service;

  if (service == "postscreen") {
    if (consume(message, "NOQUEUE: ")) {
      parse_action(message, out);
    } else if (message.starts_with("CONNECT from ")) {
      out.type = line_type::connect;
      fields::split_client(message.substr(13), out.client_name, out.client_address);
    } else if (!message.empty() && upper(message[0])) {
      out.type = line_type::postscreen;
      fields::split_client(message, out.client_name, out.client_address);
    }
    return;
  }

  const std::size_t colon = message.find(": ");
  if (colon != std::string_view::npos && colon <= 20) {
    const std::string_view token = message.substr(0, colon);
    if (token == "NOQUEUE") {
      parse_action(message.substr(colon + 2), out);
      return;
    }
    if (fields::postfix_queue_id(token)) {
      out.queue_id = token;
      parse_queued(service, message.substr(colon + 2), out);
      return;
    }
  }
  if (service == "smtpd") {
    if (consume(message, "connect from ")) {
      out.type = line_type::connect;
    } else if (consume(message, "disconnect from ")) {
      out.type = line_type::disconnect;
    } else {
      return;
    }
    fields::split_client(message.substr(0, message.find(' ')), out.client_name, out.client_address);
  }
}

}  // namespace rcptguard::ingest
