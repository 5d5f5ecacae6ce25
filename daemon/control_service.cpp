// The operator control socket (see control_service.hpp).
#include "daemon/control_service.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "common/json.hpp"
#include "common/text.hpp"
#include "server/listener.hpp"

namespace rcptguard::daemon {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {

// Most supplementary groups read from the peer credentials (NGROUPS_MAX on Linux).
constexpr std::size_t max_peer_groups = 65536;

std::string user_name(uid_t uid) {
  struct passwd entry {};
  struct passwd* found = nullptr;
  std::array<char, 16384> buffer{};
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return {};
  }
  return found->pw_name;
}

std::string name_of_group(gid_t gid) {
  struct group entry {};
  struct group* found = nullptr;
  std::array<char, 16384> buffer{};
  if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
    return std::to_string(gid);
  }
  return found->gr_name;
}

// The supplementary groups of `user` from the group database: only where the kernel does not
// report the peer's groups (SO_PEERGROUPS, Linux 4.13).
std::vector<gid_t> groups_of(const std::string& user, gid_t primary) {
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 2 && !user.empty(); ++attempt) {
    int count = static_cast<int>(groups.size());
    if (::getgrouplist(user.c_str(), primary, groups.data(), &count) >= 0) {
      groups.resize(static_cast<std::size_t>(count));
      return groups;
    }
    groups.resize(std::min<std::size_t>(static_cast<std::size_t>(count), max_peer_groups));
  }
  return {};
}

// SO_PEERGROUPS: the groups the peer process had when it connected. False where unsupported.
bool peer_groups(int fd, std::vector<gid_t>& groups) {
  groups.resize(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto length = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &length) == 0) {
      groups.resize(length / sizeof(gid_t));
      return true;
    }
    if (errno != ERANGE || length / sizeof(gid_t) > max_peer_groups) break;
    groups.resize(length / sizeof(gid_t));
  }
  groups.clear();
  return false;
}

std::string error_reply(std::string_view error) {
  json reply;
  reply["ok"] = false;
  reply["error"] = error;
  return dump_json(reply);
}

}  // namespace

std::string control_caller::describe() const {
  // No uid: not a peer of the socket (a release applied from another node of the cluster).
  if (uid == static_cast<uid_t>(-1)) return user.empty() ? "unknown" : printable(user);
  const std::string id = "uid " + std::to_string(uid);
  return user.empty() ? id : printable(user) + " (" + id + ")";
}

// One control connection: peer credentials, the name look-up, one request line, one reply.
class control_service::connection : public std::enable_shared_from_this<connection> {
 public:
  connection(control_service& service, local::socket socket)
      : service_(service), socket_(std::move(socket)), timer_(service.io_) {}

  void start() {
    timer_.expires_after(control_limits::timeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->closed_) return;
      self->service_.log_->warn("CONTROL TIMEOUT {}: no complete request and reply within {} s",
                                self->caller_.describe(), control_limits::timeout.count());
      self->close();
    });
    const int fd = socket_.native_handle();
    struct ucred cred {};
    auto length = static_cast<socklen_t>(sizeof cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
      service_.log_->warn("CONTROL REFUSED: no peer credentials ({})", std::strerror(errno));
      close();
      return;
    }
    caller_.uid = cred.uid;
    caller_.gid = cred.gid;
    caller_.pid = cred.pid;
    const bool groups_known = peer_groups(fd, caller_.groups);
    // NSS may ask a directory server: the look-up runs on the helper thread, and its result comes
    // back to the network thread.
    asio::post(service_.lookups_, [self = shared_from_this(), caller = caller_, groups_known,
                                   &io = service_.io_]() mutable {
      caller.user = user_name(caller.uid);
      if (!groups_known) caller.groups = groups_of(caller.user, caller.gid);
      asio::post(io, [self = std::move(self), caller = std::move(caller)]() mutable {
        self->looked_up(std::move(caller));
      });
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(local::socket::shutdown_both, ignored);
    socket_.close(ignored);
    service_.closed(this);
  }

 private:
  void looked_up(control_caller caller) {
    if (closed_) return;
    caller_ = std::move(caller);
    std::string why;
    if (!service_.allowed(caller_, why)) {
      service_.report_refusal(caller_, why);
      reply(error_reply("permission denied: " + why));
      return;
    }
    asio::async_read_until(socket_, asio::dynamic_buffer(buffer_, control_limits::max_request_line),
                           '\n',
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    if (closed_) return;
    if (ec == asio::error::not_found) {
      service_.log_->warn("CONTROL REJECTED {}: request line longer than {} bytes",
                          caller_.describe(), control_limits::max_request_line);
      reply(error_reply("request line longer than " +
                        std::to_string(control_limits::max_request_line) + " bytes"));
      return;
    }
    // A caller that ends its line with the end of its stream instead of a newline is served too.
    if (ec && !(ec == asio::error::eof && !buffer_.empty())) {
      close();
      return;
    }
    const std::string_view line =
        ec ? std::string_view(buffer_) : std::string_view(buffer_).substr(0, n - 1);
    std::string answer;
    try {
      answer = service_.handler_(line, caller_);
    } catch (const std::exception& e) {
      service_.log_->error("INTERNAL ERROR control request of {}: {}", caller_.describe(),
                           sanitize_for_log(e.what(), 200));
      answer = error_reply("internal error; see the daemon's log");
    }
    reply(std::move(answer));
  }

  void reply(std::string line) {
    reply_ = std::move(line);
    reply_.push_back('\n');
    asio::async_write(socket_, asio::buffer(reply_),
                      [self = shared_from_this()](const boost::system::error_code&, std::size_t) {
                        self->close();
                      });
  }

  control_service& service_;
  local::socket socket_;
  asio::steady_timer timer_;
  control_caller caller_;
  std::string buffer_;
  std::string reply_;
  bool closed_ = false;
};

control_service::control_service(asio::io_context& io, std::shared_ptr<spdlog::logger> log,
                                 handler_fn handler, refused_fn on_refused)
    : io_(io),
      log_(std::move(log)),
      handler_(std::move(handler)),
      on_refused_(std::move(on_refused)),
      listener_(io) {}

control_service::~control_service() {
  // Look-ups not yet started are dropped; one in progress finishes (it only reads NSS).
  lookups_.stop();
  lookups_.join();
  boost::system::error_code ignored;
  listener_.acceptor().close(ignored);
  // Ours to remove if it is still a socket; after the privilege drop the directory may not let
  // us, and the next start replaces the stale socket instead.
  struct stat st {};
  if (!path_.empty() && ::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    ::unlink(path_.c_str());
  }
}

void control_service::bind(const control_settings& settings, const std::string& server_user) {
  std::error_code fs_error;
  path_ = std::filesystem::absolute(settings.socket, fs_error).lexically_normal().string();
  if (fs_error) path_ = settings.socket;
  const std::string where = "control.socket " + printable(path_);
  if (path_.size() >= sizeof(sockaddr_un::sun_path)) {
    throw std::runtime_error(where + ": path too long for a unix socket");
  }

  gid_t daemon_gid = ::getegid();
  daemon_uid_ = ::geteuid();
  daemon_user_ = server_user;
  if (!server_user.empty()) {
    struct passwd entry {};
    struct passwd* found = nullptr;
    std::array<char, 16384> buffer{};
    if (::getpwnam_r(server_user.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
        found == nullptr) {
      throw std::runtime_error("server.user: unknown user '" + printable(server_user) + "'");
    }
    daemon_uid_ = found->pw_uid;
    daemon_gid = found->pw_gid;
  } else {
    daemon_user_ = user_name(daemon_uid_);
  }
  if (settings.group.empty()) {
    group_ = daemon_gid;
  } else {
    struct group entry {};
    struct group* found = nullptr;
    std::array<char, 16384> buffer{};
    if (::getgrnam_r(settings.group.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
        found == nullptr) {
      throw std::runtime_error("control.group: unknown group '" + printable(settings.group) + "'");
    }
    group_ = found->gr_gid;
  }
  group_name_ = name_of_group(group_);

  server::remove_stale_socket(path_);
  boost::system::error_code ec;
  auto& acceptor = listener_.acceptor();
  acceptor.open(local::endpoint(path_).protocol(), ec);
  if (!ec) acceptor.bind(local::endpoint(path_), ec);
  if (!ec) acceptor.listen(static_cast<int>(control_limits::max_connections), ec);
  if (ec) throw std::runtime_error(where + ": cannot listen: " + ec.message());
  // Mode and group are set, not inherited from the umask: with the peer check below they are
  // the access control.
  if (::chmod(path_.c_str(), static_cast<mode_t>(settings.socket_mode)) != 0) {
    throw std::runtime_error(where + ": chmod: " + std::strerror(errno));
  }
  if (::chown(path_.c_str(), static_cast<uid_t>(-1), group_) != 0) {
    throw std::runtime_error(where + ": chown to group " + group_name_ + ": " +
                             std::strerror(errno));
  }
  log_->info(
      "CONTROL LISTEN unix:{} mode {:04o} group {}: root, the daemon's user ({}) and members of "
      "group {} may use it",
      printable(path_), settings.socket_mode, printable(group_name_),
      daemon_user_.empty() ? "uid " + std::to_string(daemon_uid_) : printable(daemon_user_),
      printable(group_name_));
}

bool control_service::allowed(const control_caller& caller, std::string& why) const {
  if (caller.uid == 0 || caller.uid == daemon_uid_ || caller.gid == group_ ||
      std::find(caller.groups.begin(), caller.groups.end(), group_) != caller.groups.end()) {
    return true;
  }
  why = caller.describe() + " is not root, the daemon's user (" +
        (daemon_user_.empty() ? "uid " + std::to_string(daemon_uid_) : printable(daemon_user_)) +
        ") or a member of group " + printable(group_name_) + " (control.group)";
  return false;
}

void control_service::start_accepting() {
  listener_.start([this](local::socket socket) { admit(std::move(socket)); },
                  [this](const boost::system::error_code& ec) {
                    // Out of descriptors, most likely: the loop tries again in a moment.
                    log_->warn("CONTROL ACCEPT FAILED: {}; retrying in {} s", ec.message(),
                               decltype(listener_)::retry_delay.count());
                  });
}

void control_service::shutdown() {
  listener_.stop();
  // close() removes the connection from the set; iterate over a copy.
  const std::vector<connection*> live(connections_.begin(), connections_.end());
  for (connection* c : live) c->close();
}

void control_service::admit(local::socket socket) {
  if (connections_.size() >= control_limits::max_connections) {
    ++busy_closed_;
    log_->warn("CONTROL BUSY: {} control connections open; closed a new one ({} so far)",
               connections_.size(), busy_closed_);
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  auto c = std::make_shared<connection>(*this, std::move(socket));
  connections_.insert(c.get());
  c->start();
}

void control_service::report_refusal(const control_caller& caller, const std::string& why) {
  const auto now = std::chrono::steady_clock::now();
  if (now - refusal_minute_ >= std::chrono::minutes(1)) {
    refusal_minute_ = now;
    refusals_reported_ = 0;
  }
  if (refusals_reported_ >= control_limits::refusals_reported_per_minute) {
    ++refusals_unreported_;
    return;
  }
  ++refusals_reported_;
  log_->warn("CONTROL REFUSED {} pid {}: {}{}", caller.describe(), caller.pid, why,
             refusals_unreported_ == 0
                 ? std::string{}
                 : fmt::format(" ({} more refused before, not reported)", refusals_unreported_));
  refusals_unreported_ = 0;
  if (on_refused_) on_refused_(caller, why);
}

}  // namespace rcptguard::daemon
