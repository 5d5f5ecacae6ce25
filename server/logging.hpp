// Builds the daemon's logger from the log settings: stderr (default, for systemd/journald),
// syslog (facility mail, like Postfix) or a file. Untrusted values are always passed as
// arguments and sanitised by the caller; the format strings are ours.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "config/config.hpp"

namespace rcptguard::server {

/// Throws std::runtime_error when the target cannot be opened (e.g. the file's directory).
std::shared_ptr<spdlog::logger> make_logger(const log_settings& settings);

spdlog::level::level_enum to_spdlog(log_level level);

}  // namespace rcptguard::server
