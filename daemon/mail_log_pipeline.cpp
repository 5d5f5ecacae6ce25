#include "daemon/mail_log_pipeline.hpp"

namespace rcptguard::daemon {

mail_log_reader::mail_log_reader(const ingest::timestamp_options& timestamps,
                                 const ingest::joiner_options& joining)
    : parser_(timestamps), joiner_(joining) {}

void mail_log_reader::add_line(std::string_view line,
                               std::vector<ingest::message_event>& deliveries) {
  ingest::syslog_line envelope;
  ingest::mail_line mail;
  if (parser_.parse(line, envelope, mail) != ingest::line_result::mail) return;
  joiner_.add(envelope.time, envelope.host, mail, deliveries);
}

decision::verdict count_delivery(decision::engine& engine, const ingest::message_event& delivery,
                                 time_point at, delivery_counts& counts) {
  decision::observed_delivery observed;
  observed.recipient = delivery.recipient;
  observed.sender = delivery.sender;
  observed.client_address = delivery.client_address;
  observed.size = delivery.size;
  observed.authenticated = delivery.authenticated;
  decision::verdict answer = engine.observe_delivery(observed, at);
  ++counts.deliveries;
  if (answer.level != decision::verdict_level::dunno) ++counts.verdicts;
  return answer;
}

}  // namespace rcptguard::daemon
