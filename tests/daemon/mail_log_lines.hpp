// Mail-log lines as Postfix writes them, for the tests of followed logs (in-process and in the
// running daemon).
#pragma once

#include <cstdio>
#include <ctime>
#include <string>

#include "common/time.hpp"

namespace rcptguard::daemon {

/// `t` as rsyslog's high-precision timestamp (RFC 3339, UTC).
inline std::string iso(time_point t) {
  const std::time_t tt = to_unix_seconds(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000000+00:00", &tm);
  return buf;
}

/// One message as Postfix logs it with maillog_file / rsyslog high precision on `host`: smtpd,
/// cleanup, qmgr, local delivery, removal. `serial` makes the queue id.
inline std::string postfix_message(unsigned serial, time_point at, const std::string& recipient,
                                   const std::string& sender, const std::string& client,
                                   const std::string& host = "mx") {
  char qid[16];
  std::snprintf(qid, sizeof qid, "%08X", 0xB0000000U + serial);
  const std::string ts = iso(at) + " " + host + " ";
  std::string out;
  out += ts + "postfix/smtpd[100]: " + qid + ": client=c.example[" + client + "]\n";
  out += ts + "postfix/cleanup[101]: " + qid + ": message-id=<" + qid + "@x>\n";
  out += ts + "postfix/qmgr[102]: " + qid + ": from=<" + sender +
         ">, size=3000, nrcpt=1 (queue active)\n";
  out += ts + "postfix/local[103]: " + qid + ": to=<" + recipient +
         ">, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to "
         "mailbox)\n";
  out += ts + "postfix/qmgr[102]: " + qid + ": removed\n";
  return out;
}

}  // namespace rcptguard::daemon
