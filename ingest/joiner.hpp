// Joins the lines of one message by (host, queue id): client and SASL login from smtpd, sender
// and size from qmgr (or Sendmail's from=), recipients and status from the delivery agents,
// and emits one message_event per recipient delivered to a mailbox on this server.
//
// What counts as inbound to a recipient: a delivery by one of `delivery_agents` (default the
// final-delivery agents local, virtual, lmtp and pipe for Postfix; local, lmtp, cyrus, cyrusv2,
// procmail for Sendmail's mailer=). smtp deliveries are relays (to a content filter, whose
// re-injection is delivered locally and counted then, or to another server) and are not counted
// unless "smtp"/"esmtp" is added, as on a gateway in front of the mailboxes. Each
// (message, recipient) counts once, with the status of its first delivery line: sent, bounced
// (accepted, then refused by the mailbox: a flood that fills a mailbox still arrived) or
// deferred (a later retry of the same recipient is not counted again). The recipient is
// Postfix's orig_to when present (what the client sent in RCPT TO, as the policy hook sees it):
// an alias that expands to several mailboxes counts once.
//
// Bounded state: at most max_open_messages open queue ids (the least recently queued are
// dropped first) and a message with no line for `expiry` of log time is dropped, so a message
// whose lines are incomplete (never delivered, or rejected after queueing) does not stay.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/time.hpp"
#include "ingest/mail_line.hpp"

namespace rcptguard::ingest {

struct message_event {
  time_point time;  ///< of the delivery line
  std::string recipient;
  std::string sender;  ///< empty for the null sender <> (and when the arrival was not seen)
  std::string client_address;
  std::string queue_id;
  std::string source_host;  ///< syslog host of the line
  std::string instance;     ///< Postfix syslog name of the receiving smtpd, or the program
  std::uint64_t size = 0;
  delivery_status status = delivery_status::none;
  bool authenticated = false;  ///< the client logged in with SASL (Postfix only)
  mta origin = mta::postfix;
};

struct joiner_options {
  std::size_t max_open_messages = 100'000;
  std::chrono::seconds expiry{std::chrono::hours{2}};
  /// Postfix daemons and Sendmail mailers whose deliveries are inbound to the recipient.
  std::vector<std::string> delivery_agents{"local", "virtual", "lmtp",    "pipe",
                                           "cyrus", "cyrusv2", "procmail"};
  /// Only messages logged by these syslog hosts; empty: any.
  std::vector<std::string> hosts;
  /// Only messages received by these Postfix syslog names ("postfix", "postfix/submission",
  /// "postfix-out") or Sendmail programs; empty: any. This is how log events are kept apart
  /// from the policy hook: list the instances the hook does not cover.
  std::vector<std::string> instances;
  /// Recipients remembered per message for the once-per-recipient rule.
  std::size_t max_recipients_per_message = 1000;
};

struct joiner_stats {
  std::uint64_t messages_opened = 0;
  std::uint64_t messages_removed = 0;   ///< completed by qmgr "removed" / Sendmail "done"
  std::uint64_t messages_expired = 0;   ///< no line for `expiry`
  std::uint64_t messages_evicted = 0;   ///< at max_open_messages
  std::uint64_t orphan_deliveries = 0;  ///< delivery of a message whose arrival was not seen
  std::uint64_t events = 0;             ///< message_events emitted
  std::uint64_t relayed = 0;            ///< deliveries by agents that are not inbound (smtp, ...)
  std::uint64_t repeated = 0;  ///< same message and recipient again (retry, alias expansion)
  std::uint64_t filtered = 0;  ///< deliveries of hosts/instances not selected
  std::uint64_t rejects = 0;   ///< reject/warn lines seen (not counted as mail)
  std::size_t open_messages = 0;
};

class joiner {
 public:
  explicit joiner(joiner_options options);

  /// Takes one parsed line of `host` at `time`; appends the events it completes to `out`.
  void add(time_point time, std::string_view host, const mail_line& line,
           std::vector<message_event>& out);

  /// Drops messages with no line since `now - expiry`. add() calls it as log time advances.
  void expire(time_point now);

  joiner_stats stats() const;

 private:
  struct message_state {
    std::uint64_t serial = 0;
    time_point last_seen;
    std::string sender;
    std::string client_address;
    std::string instance;
    std::uint64_t size = 0;
    bool authenticated = false;
    bool arrival_seen = false;
    std::vector<std::string> counted;  ///< recipients already emitted
  };
  struct queued {
    time_point at;
    std::uint64_t serial;
    std::string key;
  };

  void take(time_point time, std::string_view host, const mail_line& line,
            std::vector<message_event>& out);
  message_state& open(time_point time, const mail_line& line);
  message_state* find();
  void erase(std::string_view key);
  void deliver(time_point time, std::string_view host, const mail_line& line,
               std::vector<message_event>& out);
  bool selected(std::string_view host, std::string_view instance) const;
  bool inbound_agent(std::string_view agent) const;

  joiner_options options_;
  std::unordered_map<std::string, message_state> messages_;
  std::deque<queued> order_;  ///< by queueing time, with stale entries skipped lazily
  std::uint64_t next_serial_ = 1;
  time_point newest_;
  std::string key_;  ///< host + ' ' + queue id of the current line, reused
  joiner_stats stats_;
};

}  // namespace rcptguard::ingest
