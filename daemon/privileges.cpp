#include "daemon/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace rcptguard::daemon {

void drop_privileges(const std::string& user) {
  if (user.empty()) return;
  const struct passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr) throw std::runtime_error("server.user: unknown user '" + user + "'");
  if (pw->pw_uid == 0) throw std::runtime_error("server.user: '" + user + "' is root");
  if (::geteuid() != 0) {
    if (::geteuid() == pw->pw_uid) return;
    throw std::runtime_error("server.user is '" + user +
                             "' but the daemon was not started as root");
  }
  if (::initgroups(pw->pw_name, pw->pw_gid) != 0 || ::setgid(pw->pw_gid) != 0 ||
      ::setuid(pw->pw_uid) != 0) {
    throw std::runtime_error("cannot switch to user '" + user + "': " + std::strerror(errno));
  }
  // Postfix's set_ugid() idiom: if root could be regained, the drop did not happen.
  if (::setuid(0) == 0) throw std::runtime_error("privilege drop to '" + user + "' is reversible");
}

}  // namespace rcptguard::daemon
