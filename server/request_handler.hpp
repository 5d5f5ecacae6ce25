// What a session hands a complete request to. The daemon implements it around the decision
// engine; tests implement it to script faults. Sessions never see the engine itself.
#pragma once

#include <cstdint>
#include <string>

#include "protocol/request.hpp"

namespace rcptguard::server {

class request_handler {
 public:
  request_handler() = default;
  request_handler(const request_handler&) = delete;
  request_handler& operator=(const request_handler&) = delete;
  virtual ~request_handler() = default;

  /// Appends the reply bytes for `request` to `reply`. Throws on an internal fault; the session
  /// then applies the configured on_internal_error policy.
  virtual void handle(const protocol::policy_request& request, std::uint64_t connection_id,
                      std::string& reply) = 0;

  /// The connection ended, cleanly or not.
  virtual void connection_closed(std::uint64_t connection_id) = 0;
};

}  // namespace rcptguard::server
