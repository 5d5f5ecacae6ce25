// Log events into the engine: each message a mail log shows delivered to a recipient becomes
// the two requests the policy path would have produced for it (RCPT, then END-OF-MESSAGE with
// that one recipient), at the log's own timestamp, on a connection id reserved for the log.
// So replayed and followed logs train the same windows and baselines and open the same
// episodes, and every record they cause is marked event_source::log.
//
// Double counting: the feed counts whatever it is given. Which messages that is - only those of
// hosts and Postfix instances the policy hook does not cover - is decided before it (the
// ingest joiner's hosts/instances selection), because only the log tells where a message came in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/time.hpp"
#include "decision/engine.hpp"
#include "protocol/request.hpp"

namespace rcptguard::decision {

/// Never used by a policy connection (the daemon numbers those from 1 up).
inline constexpr std::uint64_t log_connection_id = ~std::uint64_t{0} - 1;

/// One recipient of one message, as the mail log showed it arrive.
struct log_message {
  time_point at;
  std::string_view recipient;
  std::string_view sender;  ///< empty for the null sender
  std::string_view client_address;
  std::string_view queue_id;  ///< keeps the synthetic transaction of each message apart
  std::uint64_t size = 0;
  bool authenticated = false;  ///< the client logged in (SASL): it is one of our users
};

class log_feed {
 public:
  explicit log_feed(engine& target) : engine_(target) {}

  /// Counts one message for one recipient at m.at; returns the verdict the policy path would
  /// have answered at its RCPT.
  verdict feed(const log_message& m);

  /// Engine housekeeping (episode cool-down, expiry) driven by log time, for a stand-alone
  /// replay: at most once per minute of log time, which is finer than any cool-down. A daemon
  /// that ticks the engine on its own clock does not call this.
  void tick(time_point now);

  std::uint64_t messages() const { return messages_; }
  std::uint64_t warnings() const { return warnings_; }
  std::uint64_t deferrals() const { return deferrals_; }

 private:
  engine& engine_;
  protocol::policy_request request_;  ///< reused: the steady state does not allocate
  time_point last_tick_{};
  std::uint64_t messages_ = 0;
  std::uint64_t warnings_ = 0;
  std::uint64_t deferrals_ = 0;
};

}  // namespace rcptguard::decision
