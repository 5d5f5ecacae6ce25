// The commands' side of the control socket (see control_client.hpp).
#include "cli/control_client.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>

#include "common/text.hpp"
#include "config/duration.hpp"

namespace rcptguard::cli {

namespace {

// A status reply lists every open episode and allow entry: generous, but bounded.
constexpr std::size_t max_reply = std::size_t{64} << 20;

std::string name_of_group(gid_t gid) {
  struct group entry {};
  struct group* found = nullptr;
  std::array<char, 16384> buffer{};
  if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return std::to_string(gid);
  }
  return found->gr_name;
}

// The daemon's rule (control.group, else the daemon's group), as far as a command can see it.
std::string control_group(const config& settings, const std::string& path) {
  if (!settings.control.group.empty()) return settings.control.group;
  if (!settings.server.user.empty()) {
    struct passwd entry {};
    struct passwd* found = nullptr;
    std::array<char, 16384> buffer{};
    if (::getpwnam_r(settings.server.user.c_str(), &entry, buffer.data(), buffer.size(), &found) ==
            0 &&
        found != nullptr) {
      return name_of_group(found->pw_gid);
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return name_of_group(st.st_gid);
  return "the daemon's group";
}

class socket_fd {
 public:
  socket_fd() : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
  socket_fd(const socket_fd&) = delete;
  socket_fd& operator=(const socket_fd&) = delete;
  ~socket_fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::runtime_error permission_denied(const control_target& target, std::string_view detail) {
  return std::runtime_error("permission denied on control socket " + printable(target.path) +
                            ": run as root or as a member of group " + printable(target.group) +
                            std::string(detail));
}

bool digits(std::string_view text, std::size_t at, std::size_t n, int& out) {
  if (at + n > text.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    out = out * 10 + (text[i] - '0');
  }
  return true;
}

}  // namespace

control_target control_target_from(const config& settings) {
  if (settings.control.socket.empty()) {
    throw std::runtime_error("the operator controls are off (control.socket is empty)");
  }
  control_target target;
  std::error_code ec;
  target.path = std::filesystem::absolute(settings.control.socket, ec).lexically_normal().string();
  if (ec) target.path = settings.control.socket;
  target.group = control_group(settings, target.path);
  return target;
}

json send_control_request(const control_target& target, const json& request,
                          std::chrono::seconds timeout) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (target.path.size() >= sizeof address.sun_path) {
    throw std::runtime_error("control socket " + printable(target.path) + ": path too long");
  }
  std::memcpy(address.sun_path, target.path.c_str(), target.path.size() + 1);
  const socket_fd fd;
  if (fd.get() < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  timeval limit{};
  limit.tv_sec = static_cast<time_t>(timeout.count());
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    if (error == EACCES || error == EPERM) throw permission_denied(target, "");
    if (error == ENOENT || error == ECONNREFUSED || error == ENOTDIR) {
      throw std::runtime_error("no daemon listening on " + printable(target.path) +
                               " (is rcptguard serve running? control.socket)");
    }
    throw std::runtime_error("cannot connect to control socket " + printable(target.path) + ": " +
                             std::strerror(error));
  }

  const std::string line = dump_json(request) + "\n";
  for (std::size_t sent = 0; sent < line.size();) {
    const ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    // The daemon refuses a caller it does not serve without reading the request: its reply may
    // be waiting already, and is read below.
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) break;
    if (n <= 0) {
      throw std::runtime_error("control socket " + printable(target.path) +
                               ": sending the request failed: " + std::strerror(errno));
    }
    sent += static_cast<std::size_t>(n);
  }

  std::string reply;
  std::array<char, 65536> buffer{};
  while (reply.find('\n') == std::string::npos) {
    const ssize_t n = ::recv(fd.get(), buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      throw std::runtime_error("no reply from the daemon on " + printable(target.path) +
                               " within " + std::to_string(timeout.count()) + " s");
    }
    if (n < 0) {
      throw std::runtime_error("control socket " + printable(target.path) + ": " +
                               std::strerror(errno));
    }
    if (n == 0) {
      throw std::runtime_error(
          "the daemon closed the control connection on " + printable(target.path) +
          " without a reply (too many control commands at once? see its CONTROL log lines)");
    }
    reply.append(buffer.data(), static_cast<std::size_t>(n));
    if (reply.size() > max_reply) {
      throw std::runtime_error("the daemon's reply is larger than " + std::to_string(max_reply) +
                               " bytes");
    }
  }
  reply.resize(reply.find('\n'));
  json parsed = json::parse(reply, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("ok") ||
      !parsed["ok"].is_boolean()) {
    throw std::runtime_error("the daemon's reply is not what this rcptguard understands: " +
                             printable(reply));
  }
  if (!parsed["ok"].get<bool>() && parsed.contains("error") && parsed["error"].is_string()) {
    const std::string& error = parsed["error"].get_ref<const std::string&>();
    constexpr std::string_view denied = "permission denied: ";
    if (error.starts_with(denied)) {
      throw permission_denied(target, " (" + printable(error.substr(denied.size())) + ")");
    }
  }
  return parsed;
}

std::optional<time_point> parse_until(std::string_view text, time_point now, std::string& why) {
  why.clear();
  std::optional<time_point> until;
  if (const auto d = parse_duration(text)) {
    until = now + std::chrono::duration_cast<std::chrono::microseconds>(*d);
  } else {
    // YYYY-MM-DDTHH:MM[:SS][Z]
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    const bool utc = text.ends_with('Z') || text.ends_with('z');
    const std::string_view body = utc ? text.substr(0, text.size() - 1) : text;
    const bool shape = (body.size() == 16 || body.size() == 19) && digits(body, 0, 4, year) &&
                       body[4] == '-' && digits(body, 5, 2, month) && body[7] == '-' &&
                       digits(body, 8, 2, day) && (body[10] == 'T' || body[10] == ' ') &&
                       digits(body, 11, 2, hour) && body[13] == ':' &&
                       digits(body, 14, 2, minute) &&
                       (body.size() == 16 || (body[16] == ':' && digits(body, 17, 2, second)));
    if (!shape) {
      why =
          "expected a duration such as 2h or 7d, or a time such as 2026-10-01T14:00 (local) "
          "or 2026-10-01T12:00Z (UTC)";
      return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    tm.tm_isdst = -1;
    const std::tm asked = tm;
    const std::time_t t = utc ? ::timegm(&tm) : ::mktime(&tm);
    // mktime/timegm normalise 2026-02-30 into March; a date that moved did not exist. (A local
    // time skipped by a DST change moves its hour too.)
    if (t == static_cast<std::time_t>(-1) || tm.tm_mday != asked.tm_mday ||
        tm.tm_mon != asked.tm_mon || tm.tm_year != asked.tm_year || tm.tm_min != asked.tm_min ||
        tm.tm_sec != asked.tm_sec) {
      why = "no such time: " + printable(text);
      return std::nullopt;
    }
    until = from_unix_seconds(static_cast<std::int64_t>(t));
  }
  if (*until <= now) {
    why = printable(text) + " is not in the future";
    return std::nullopt;
  }
  return until;
}

}  // namespace rcptguard::cli
