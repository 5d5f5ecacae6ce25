#include "server/policy_handler.hpp"

#include "common/text.hpp"
#include "common/time.hpp"

namespace rcptguard::server {

void policy_handler::handle(const protocol::policy_request& request, std::uint64_t connection_id,
                            std::string& reply) {
  const decision::verdict verdict = engine_.decide(request, connection_id, wall_clock_now());
  switch (verdict.level) {
    case decision::verdict_level::dunno:
      ++stats_.dunno;
      break;
    case decision::verdict_level::warn:
      ++stats_.warn;
      break;
    case decision::verdict_level::defer:
      // enforce_action = flag answers the defer level with a header, and the mail goes in.
      ++(verdict.action.verb == protocol::action_verb::prepend ? stats_.flag : stats_.defer);
      break;
  }
  const std::size_t reply_start = reply.size();
  protocol::format_reply(verdict.action, reply);
  if (log_->should_log(spdlog::level::debug)) {
    // The reply without "action=" and the closing empty line is what Postfix acts on.
    std::string_view action(reply);
    action = action.substr(reply_start + 7, action.size() - reply_start - 9);
    log_->debug(
        "REQUEST conn={} state={} client={} sender=<{}> recipient=<{}> instance={} action={}",
        connection_id, protocol::to_string(request.state),
        sanitize_for_log(request.client_address, 64), sanitize_for_log(request.sender),
        sanitize_for_log(request.recipient), sanitize_for_log(request.instance, 64), action);
  }
}

void policy_handler::connection_closed(std::uint64_t connection_id) {
  engine_.connection_closed(connection_id, wall_clock_now());
}

}  // namespace rcptguard::server
