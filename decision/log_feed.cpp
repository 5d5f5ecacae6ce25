// Log events as synthetic policy requests (see log_feed.hpp).
#include "decision/log_feed.hpp"

namespace rcptguard::decision {

namespace {

// Marks the engine's records as log records for the length of one call, even if it throws.
class source_scope {
 public:
  explicit source_scope(engine& e) : engine_(e) { engine_.set_source(event_source::log); }
  source_scope(const source_scope&) = delete;
  source_scope& operator=(const source_scope&) = delete;
  ~source_scope() { engine_.set_source(event_source::policy); }

 private:
  engine& engine_;
};

// A SASL login name is only tested for presence by the engine; the log gives none we trust.
constexpr std::string_view authenticated_marker = "log";

}  // namespace

verdict log_feed::feed(const log_message& m) {
  const source_scope scope(engine_);
  request_.clear();
  request_.request = "smtpd_access_policy";
  request_.state = protocol::protocol_state::rcpt;
  request_.protocol_name = "ESMTP";
  // "log:" cannot collide with a Postfix instance ("2b9e.5f0e7c3a.b5b8f.0").
  request_.instance = "log:";
  request_.instance.append(m.queue_id);
  request_.queue_id.assign(m.queue_id);
  request_.sender.assign(m.sender);
  request_.recipient.assign(m.recipient);
  request_.client_address.assign(m.client_address);
  request_.size = m.size;
  if (m.authenticated) request_.sasl_username.assign(authenticated_marker);
  verdict answer = engine_.decide(request_, log_connection_id, m.at);

  request_.state = protocol::protocol_state::end_of_message;
  request_.recipient_count = 1;
  engine_.decide(request_, log_connection_id, m.at);

  ++messages_;
  if (answer.level == verdict_level::warn) ++warnings_;
  if (answer.level == verdict_level::defer) ++deferrals_;
  return answer;
}

void log_feed::tick(time_point now) {
  if (now < last_tick_ + std::chrono::minutes{1}) return;
  last_tick_ = now;
  const source_scope scope(engine_);
  engine_.tick(now);
}

}  // namespace rcptguard::decision
