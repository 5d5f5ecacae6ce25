// The part of the postfix_log and sendmail_log fuzz targets they share: the input is a mail log,
// cut into lines as ingest::line_reader does; every line goes through ingest::line_parser (the
// syslog envelope, then the Postfix or Sendmail parser) twice, with the system time zone and
// with a fixed offset, and the mail lines go on into a joiner with small caps so eviction,
// expiry and the per-message recipient cap all run. Checked: every view a parser returns points
// into its line, both parses classify a line alike, the counts add up and the joiner stays
// within its caps. May include: ingest/, common/, fuzz/check.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>
#include <vector>

#include "fuzz/check.hpp"
#include "ingest/joiner.hpp"
#include "ingest/line_parser.hpp"
#include "ingest/mail_line.hpp"
#include "ingest/syslog.hpp"
#include "ingest/timestamp.hpp"

namespace rcptguard::fuzz {

/// `m.instance` and `m.service` are only checked when the parser took them from `line` (not
/// when a target called parse_postfix or parse_sendmail with names of its own).
inline void check_mail_line(const ingest::mail_line& m, std::string_view line,
                            bool names_from_line = true) {
  if (names_from_line) FUZZ_CHECK(within(m.instance, line) && within(m.service, line));
  for (const std::string_view v :
       {m.queue_id, m.client_name, m.client_address, m.sasl_username,
        m.message_id, m.sender, m.recipients, m.orig_to, m.relay}) {
    FUZZ_CHECK(within(v, line));
  }
  // Sendmail's "<user>... User unknown" gets constant words (string literals, not the line's).
  FUZZ_CHECK(within(m.action, line) || m.action == "reject");
  FUZZ_CHECK(within(m.stage, line) || m.stage == "RCPT");
  ingest::for_each_address(m.recipients, [&](std::string_view address) {
    FUZZ_CHECK(!address.empty() && within(address, m.recipients));
  });
}

inline void check_envelope(const ingest::syslog_line& e, std::string_view line) {
  for (const std::string_view v : {e.host, e.program, e.pid, e.message}) {
    FUZZ_CHECK(within(v, line));
  }
}

inline ingest::joiner_options small_joiner() {
  ingest::joiner_options o;
  o.max_open_messages = 4;
  o.expiry = std::chrono::minutes{10};
  o.max_recipients_per_message = 3;
  return o;
}

/// Runs the log in `input`; `direct(line)` then parses each line's text with the MTA's own
/// message parser, for corpora of message texts without a syslog envelope.
template <typename Direct>
void run_mail_log(std::string_view input, Direct direct) {
  using namespace ingest;
  const time_point reference = from_unix_seconds(1'717'200'000);  // 2024-06-01
  line_parser zoned(timestamp_options{std::nullopt, reference, std::nullopt});
  line_parser fixed(timestamp_options{2023, reference, std::chrono::seconds{3600}});
  const joiner_options options = small_joiner();
  joiner join(options);
  std::vector<message_event> events;

  while (!input.empty()) {
    const std::size_t nl = input.find('\n');
    std::string_view line = input.substr(0, nl);
    input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    syslog_line envelope;
    mail_line mail;
    const line_result result = zoned.parse(line, envelope, mail);
    const bool mta_line = result == line_result::mail || result == line_result::mail_other;
    if (mta_line || result == line_result::other_program) check_envelope(envelope, line);
    if (mta_line) {
      check_mail_line(mail, line);
      FUZZ_CHECK((mail.type != line_type::other) == (result == line_result::mail));
    }
    syslog_line envelope2;
    mail_line mail2;
    FUZZ_CHECK(fixed.parse(line, envelope2, mail2) == result);
    if (mta_line) FUZZ_CHECK(mail2.type == mail.type && mail2.queue_id == mail.queue_id);

    if (result == line_result::mail) {
      const std::size_t before = events.size();
      const std::uint64_t emitted = join.stats().events;
      join.add(envelope.time, envelope.host, mail, events);
      FUZZ_CHECK(join.stats().events - emitted == events.size() - before);
      for (std::size_t i = before; i < events.size(); ++i) {
        FUZZ_CHECK(!events[i].recipient.empty());
        FUZZ_CHECK(events[i].status == delivery_status::sent ||
                   events[i].status == delivery_status::deferred ||
                   events[i].status == delivery_status::bounced);
      }
      FUZZ_CHECK(join.stats().open_messages <= options.max_open_messages);
    }
    direct(line);
  }
  const parse_counts& counts = zoned.counts();
  FUZZ_CHECK(counts.parsed() + counts.skipped() == counts.lines);
  FUZZ_CHECK(counts.lines == fixed.counts().lines && counts.mail == fixed.counts().mail);
  const joiner_stats s = join.stats();
  FUZZ_CHECK(s.events == events.size());
  FUZZ_CHECK(s.messages_opened >= s.messages_removed + s.messages_expired + s.messages_evicted);
  FUZZ_CHECK(s.messages_opened - s.messages_removed - s.messages_expired - s.messages_evicted ==
             s.open_messages);
}

}  // namespace rcptguard::fuzz
