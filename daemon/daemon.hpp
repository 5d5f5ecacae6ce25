// The daemon's life cycle, in Postfix's order: privileged set-up (bind sockets, open the log),
// drop privileges, unprivileged set-up (open the store, restore state), then serve until
// SIGTERM/SIGINT; SIGHUP re-reads the configuration and swaps what can change at run time.
#pragma once

#include "config/config.hpp"

namespace rcptguard::daemon {

/// Exit status of a shutdown that lost data: the database stayed unwritable for the writer's
/// stop_timeout, and what it still held was never stored ("STORE LOST" in the log). Not 1, so
/// an operator or a supervisor can tell it from a daemon that never started.
inline constexpr int exit_data_lost = 3;

/// Runs the daemon in the foreground with an already validated configuration, loaded from
/// `source`, which every SIGHUP loads again. Returns the process exit code: 0 after a clean
/// shutdown, 1 when start-up failed, exit_data_lost when the shutdown could not store everything.
int run_daemon(const config_source& source, config initial);

}  // namespace rcptguard::daemon
