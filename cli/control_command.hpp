// The operator controls: `rcptguard allow`, `unallow`, `reset`, `release` and `status` act on the
// running daemon through its control socket (cli/control_client.hpp). One file for the five:
// they share their options and their one client. Exit codes: 0 done, 1 refused or failed (no
// daemon, permission denied, nothing to release), 2 usage error.
#pragma once

namespace rcptguard::cli {

/// rcptguard allow ADDR [--sender] [--until TIME] --reason TEXT
int command_allow(int argc, char** argv);
/// rcptguard unallow ADDR [--sender] --reason TEXT
int command_unallow(int argc, char** argv);
/// rcptguard reset ADDR --reason TEXT
int command_reset(int argc, char** argv);
/// rcptguard release ADDR --reason TEXT
int command_release(int argc, char** argv);
/// rcptguard status [--format text|json]
int command_status(int argc, char** argv);

}  // namespace rcptguard::cli
