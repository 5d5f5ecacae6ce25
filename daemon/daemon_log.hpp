// The daemon's own log, from the [log] settings (not the mail logs it follows, nor the alert
// file): stderr (default, for systemd/journald), syslog (facility mail, like Postfix) or a file.
// Untrusted values are always passed as arguments and sanitised by the caller; the format
// strings are ours.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "config/config.hpp"
#include "store/writer.hpp"

namespace rcptguard::daemon {

/// Throws std::runtime_error when the target cannot be opened (e.g. the file's directory).
std::shared_ptr<spdlog::logger> make_logger(const log_settings& settings);

/// The settings' log level, and the store's (its writer reports through a callback), in spdlog's.
spdlog::level::level_enum to_spdlog(log_level level);
spdlog::level::level_enum to_spdlog(store::log_level level);

}  // namespace rcptguard::daemon
