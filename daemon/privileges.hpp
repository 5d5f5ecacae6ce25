// Dropping root after the privileged set-up (binding sockets, opening the log), as Postfix's
// master does: supplementary groups first, then the group, then the user, and a check that the
// change cannot be undone.
#pragma once

#include <string>

namespace rcptguard::daemon {

/// Switches the process to `user` and its primary group. Throws std::runtime_error with the
/// reason; a no-op when `user` is empty.
void drop_privileges(const std::string& user);

}  // namespace rcptguard::daemon
