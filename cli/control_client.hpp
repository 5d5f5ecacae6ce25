// The commands' side of the daemon's control socket (daemon/control_service.hpp): find it from
// the same settings the daemon reads (-c/-o, control.socket), send one JSON request line, read
// one JSON reply line, and turn what can go wrong into a sentence an operator can act on.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/json.hpp"
#include "common/time.hpp"
#include "config/config.hpp"

namespace rcptguard::cli {

/// Where the control socket is and who may use it, for requests and error messages.
struct control_target {
  std::string path;   ///< control.socket, made absolute against the current directory
  std::string group;  ///< the group whose members may use it, as the daemon computes it
};

/// The target `settings` name; throws std::runtime_error when control.socket is empty.
control_target control_target_from(const config& settings);

/// Sends `request` as one line and returns the daemon's reply object. Throws std::runtime_error
/// with the operator's message: no daemon listening (ENOENT, ECONNREFUSED), permission denied
/// on the socket (EACCES) or by the daemon's peer check, no reply within `timeout`.
json send_control_request(const control_target& target, const json& request,
                          std::chrono::seconds timeout = std::chrono::seconds{15});

/// --until TIME: a duration from `now` ("2h", "7d"; see parse_duration) or a local time
/// "2026-10-01T14:00[:SS]" ("Z" at the end for UTC; a space may replace the "T"). nullopt with
/// `why` for anything else, or a time not after `now`.
std::optional<time_point> parse_until(std::string_view text, time_point now, std::string& why);

}  // namespace rcptguard::cli
