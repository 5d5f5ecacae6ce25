// One parsed Postfix or Sendmail log line: what the queue-id joiner needs, as views into the
// line (valid until the next line is read). Both parsers fill the same struct, so the joiner and
// the feed into the engine do not care which MTA wrote the log.
#pragma once

#include <cstdint>
#include <string_view>

namespace rcptguard::ingest {

enum class mta : std::uint8_t { postfix, sendmail };

enum class line_type : std::uint8_t {
  other,       ///< a line of a mail program that carries nothing we count
  connect,     ///< smtpd "connect from", postscreen "CONNECT from"
  disconnect,  ///< smtpd "disconnect from"
  client,      ///< smtpd "QID: client=" (Postfix): where a queued message came from
  message_id,  ///< cleanup "QID: message-id="
  sender,    ///< qmgr "QID: from=, size=, nrcpt=" or Sendmail "QID: from=, size=, nrcpts=, relay="
  delivery,  ///< a delivery attempt: "QID: to=, ..., status=" / "stat="
  removed,   ///< qmgr "QID: removed"
  reject,    ///< smtpd/postscreen "reject:"/"warn:"/... lines, Sendmail "ruleset=... reject="
  postscreen,  ///< other postscreen verdict lines (PASS, DNSBL, PREGREET, HANGUP, ...)
};

enum class delivery_status : std::uint8_t { none, sent, deferred, bounced, other };

/// "sent", "deferred", "bounced"; "" for none, "other" for the rest.
constexpr std::string_view status_name(delivery_status s) {
  switch (s) {
    case delivery_status::none:
      return "";
    case delivery_status::sent:
      return "sent";
    case delivery_status::deferred:
      return "deferred";
    case delivery_status::bounced:
      return "bounced";
    case delivery_status::other:
      return "other";
  }
  return "other";
}

struct mail_line {
  line_type type = line_type::other;
  mta origin = mta::postfix;
  /// Postfix: the syslog name without the daemon ("postfix", "postfix/submission",
  /// "postfix-out"); Sendmail: the program ("sendmail", "sm-mta").
  std::string_view instance;
  /// Postfix: the daemon ("smtpd", "local", "smtp"); Sendmail: the mailer= of a delivery.
  std::string_view service;
  std::string_view queue_id;  ///< empty for NOQUEUE and connection lines
  std::string_view client_name;
  std::string_view client_address;
  std::string_view sasl_username;
  std::string_view message_id;
  std::string_view sender;      ///< without the angle brackets; empty for <>
  std::string_view recipients;  ///< to=: one address (Postfix) or a comma list (Sendmail)
  std::string_view orig_to;
  std::string_view relay;
  std::string_view action;  ///< reject lines: "reject", "warn", "milter-reject", "hold", ...
  std::string_view stage;   ///< reject lines: "RCPT", "DATA", "EHLO", ...
  std::uint64_t size = 0;
  std::uint32_t nrcpt = 0;
  delivery_status status = delivery_status::none;
};

/// Calls `each(address)` for every address of a to= value: "<a>,<b>", "a", "<a>".
template <typename F>
void for_each_address(std::string_view list, F&& each) {
  while (!list.empty()) {
    std::size_t end = 0;
    if (list.front() == '<') {
      end = list.find('>');
      end = end == std::string_view::npos ? list.size() : end + 1;
    } else {
      end = list.find(',');
      if (end == std::string_view::npos) end = list.size();
    }
    std::string_view one = list.substr(0, end);
    if (one.size() >= 2 && one.front() == '<' && one.back() == '>') {
      one = one.substr(1, one.size() - 2);
    }
    if (!one.empty()) each(one);
    list.remove_prefix(end);
    while (!list.empty() && (list.front() == ',' || list.front() == ' ')) list.remove_prefix(1);
  }
}

}  // namespace rcptguard::ingest
