// The daemon's life cycle, in Postfix's order: privileged set-up (bind sockets, open the log),
// drop privileges, unprivileged set-up (open the store, restore state), then serve until
// SIGTERM/SIGINT; SIGHUP re-reads the configuration and swaps what can change at run time.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace rcptguard::server {

struct daemon_options {
  std::filesystem::path config_file;   ///< empty: built-in defaults
  std::vector<std::string> overrides;  ///< re-applied on every reload, like the file itself
};

/// Loads the settings file (built-in defaults when `config_file` is empty) plus overrides, the
/// same way at start-up, for check-config and at every reload.
load_result load_settings(const daemon_options& options);

/// Runs the daemon in the foreground with an already validated configuration. Returns the
/// process exit code: 0 after a clean shutdown, 1 when start-up failed.
int run_daemon(const daemon_options& options, config initial);

}  // namespace rcptguard::server
